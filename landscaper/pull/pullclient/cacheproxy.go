package pullclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/pull/pullapi"
)

// CacheProxy lets the host's Nix reach its binary cache on the server.
// Nix's HTTP substituter cannot sign requests, so the proxy listens on
// the loopback address, under a random path, and forwards each of Nix's
// requests for the cache, signed with the host key; nothing else goes
// through it. Only the requests of a binary cache's three kinds pass.
type CacheProxy struct {
	url string
	ln  net.Listener
	srv *http.Server
}

var cacheName = regexp.MustCompile(`^(nix-cache-info|[0-9a-df-np-sv-z]{32}\.narinfo|nar/[0-9a-df-np-sv-z]{32}\.nar)$`)

// StartCacheProxy starts the proxy on 127.0.0.1; Close stops it.
func (c *Client) StartCacheProxy() (*CacheProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		ln.Close()
		return nil, err
	}
	token := hex.EncodeToString(b)
	p := &CacheProxy{url: "http://" + ln.Addr().String() + "/" + token, ln: ln}
	upstream := pullapi.CachePath(c.ID()) + "/"
	p.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/"+token+"/")
		if !ok || !cacheName.MatchString(name) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		resp, _, err := c.Do(r.Context(), nil, r.Method, upstream+name, nil)
		var se *StatusError
		if errors.As(err, &se) {
			http.Error(w, se.Body, se.Status)
			return
		}
		if err != nil {
			http.Error(w, "pull server unreachable", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for _, h := range []string{"Content-Type", "Content-Length"} {
			if v := resp.Header.Get(h); v != "" {
				w.Header().Set(h, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is the substituter URL to give Nix. It holds the proxy's random
// path: pass it in NIX_CONFIG (readable by root only), not on a command
// line every user can read.
func (p *CacheProxy) URL() string { return p.url }

// Close stops the proxy.
func (p *CacheProxy) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.srv.Shutdown(ctx)
}
