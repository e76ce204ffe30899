package pullserver

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"github.com/landscaper-nix/landscaper/landscaper/pull/nixcache"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullauth"
)

// closureCache keeps the closures of desired systems by toplevel: a
// store path's closure never changes, so the cache is never stale.
type closureCache struct {
	mu sync.Mutex
	m  map[string]*closureEntry
}

type closureEntry struct {
	once  sync.Once
	paths map[string]nixcache.PathInfo // by hash part
	err   error
}

// get returns toplevel's closure by hash part, reading it once.
func (c *closureCache) get(ctx context.Context, toplevel string) (map[string]nixcache.PathInfo, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*closureEntry{}
	}
	e := c.m[toplevel]
	if e == nil {
		e = &closureEntry{}
		c.m[toplevel] = e
	}
	c.mu.Unlock()
	e.once.Do(func() {
		infos, err := nixcache.Closure(ctx, toplevel)
		if err != nil {
			e.err = err
			return
		}
		e.paths = make(map[string]nixcache.PathInfo, len(infos))
		for _, p := range infos {
			e.paths[nixcache.HashPart(p.Path)] = p
		}
	})
	if e.err != nil {
		// Not cached: the path may be built or copied in later.
		c.mu.Lock()
		if c.m[toplevel] == e {
			delete(c.m, toplevel)
		}
		c.mu.Unlock()
	}
	return e.paths, e.err
}

// serveCache answers the binary cache's requests for the host: only
// paths in the closure of its desired system exist for it.
func (s *Server) serveCache(w http.ResponseWriter, r *http.Request, req *request, caller pullauth.Caller, name string) {
	if name == "nix-cache-info" {
		w.Header().Set("Content-Type", "text/x-nix-cache-info")
		_, _ = w.Write([]byte(nixcache.CacheInfo))
		return
	}
	var hash string
	isNar := false
	switch {
	case strings.HasSuffix(name, ".narinfo") && !strings.Contains(name, "/"):
		hash = strings.TrimSuffix(name, ".narinfo")
	case strings.HasPrefix(name, "nar/") && strings.HasSuffix(name, ".nar"):
		hash, isNar = strings.TrimSuffix(strings.TrimPrefix(name, "nar/"), ".nar"), true
	default:
		req.outcome = refusedBadRequest
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	desired, ok, err := s.cfg.Dir.Desired(caller.ID)
	if err != nil {
		req.outcome = "error"
		s.log.Error("pull cache: read the desired generation", "host", caller.ID, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var info nixcache.PathInfo
	found := false
	if ok {
		paths, err := s.closures.get(r.Context(), desired.Toplevel)
		if err != nil {
			req.outcome = "error"
			s.log.Error("pull cache: read the closure", "host", caller.ID, "toplevel", desired.Toplevel, "error", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		info, found = paths[hash]
	}
	if !found {
		// Nix reads 404 as "not in this cache"; the host learns nothing
		// of other hosts' paths.
		req.outcome = refusedNotInClosure
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if !isNar {
		w.Header().Set("Content-Type", "text/x-nix-narinfo")
		_, _ = w.Write([]byte(info.Narinfo("nar/"+hash+".nar", s.cacheKey)))
		return
	}
	w.Header().Set("Content-Type", "application/x-nix-nar")
	w.Header().Set("Content-Length", itoa(info.NarSize))
	if r.Method == http.MethodHead {
		return
	}
	if err := nixcache.DumpPath(r.Context(), info.Path, w); err != nil {
		req.outcome = "error"
		s.log.Error("pull cache: send a NAR", "host", caller.ID, "path", info.Path, "error", err)
	}
}
