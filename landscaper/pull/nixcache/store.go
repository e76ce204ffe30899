package nixcache

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path"
	"sort"
	"strings"
)

// PathInfo is what a binary cache tells of one store path.
type PathInfo struct {
	// Path is the full store path.
	Path string
	// NarHash is the NAR's SHA-256 in Nix's form, "sha256:<nix32>".
	NarHash string
	NarSize int64
	// References are full store paths, sorted.
	References []string
	// Deriver is the full path of the derivation, or "".
	Deriver string
}

// HashPart is the hash part of a store path's name: what a narinfo is
// named by.
func HashPart(storePath string) string {
	h, _, _ := strings.Cut(path.Base(storePath), "-")
	return h
}

// Fingerprint is the text a narinfo signature signs:
// 1;<path>;<narHash>;<narSize>;<comma-separated sorted references>.
func (p PathInfo) Fingerprint() string {
	refs := append([]string(nil), p.References...)
	sort.Strings(refs)
	return fmt.Sprintf("1;%s;%s;%d;%s", p.Path, p.NarHash, p.NarSize, strings.Join(refs, ","))
}

// Narinfo is the path's .narinfo document for an uncompressed NAR at
// narURL (relative to the cache), signed with key.
func (p PathInfo) Narinfo(narURL string, key SecretKey) string {
	var b strings.Builder
	fmt.Fprintf(&b, "StorePath: %s\nURL: %s\nCompression: none\n", p.Path, narURL)
	fmt.Fprintf(&b, "FileHash: %s\nFileSize: %d\n", p.NarHash, p.NarSize)
	fmt.Fprintf(&b, "NarHash: %s\nNarSize: %d\n", p.NarHash, p.NarSize)
	refs := make([]string, len(p.References))
	for i, r := range p.References {
		refs[i] = path.Base(r)
	}
	sort.Strings(refs)
	fmt.Fprintf(&b, "References: %s\n", strings.Join(refs, " "))
	if p.Deriver != "" {
		fmt.Fprintf(&b, "Deriver: %s\n", path.Base(p.Deriver))
	}
	fmt.Fprintf(&b, "Sig: %s\n", key.Sign(p.Fingerprint()))
	return b.String()
}

// CacheInfo is the nix-cache-info document of a cache of /nix/store.
const CacheInfo = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n"

// nixCommand is the experimental feature flag every `nix` call takes:
// Debian's Nix 2.8 does not enable it by default.
var nixCommand = []string{"--extra-experimental-features", "nix-command"}

// Closure reads the closure of storePath from the local store: every path
// it needs, with its metadata (`nix path-info --json --recursive`).
func Closure(ctx context.Context, storePath string) ([]PathInfo, error) {
	args := append(append([]string{}, nixCommand...), "path-info", "--json", "--recursive", "--", storePath)
	cmd := exec.CommandContext(ctx, "nix", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("read the closure of %s (nix path-info): %w: %s", storePath, err, strings.TrimSpace(stderr.String()))
	}
	var raw []struct {
		Path       string   `json:"path"`
		NarHash    string   `json:"narHash"`
		NarSize    int64    `json:"narSize"`
		References []string `json:"references"`
		Deriver    string   `json:"deriver"`
		Valid      *bool    `json:"valid"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("read the closure of %s: decode nix path-info: %w", storePath, err)
	}
	infos := make([]PathInfo, 0, len(raw))
	for _, r := range raw {
		if r.Valid != nil && !*r.Valid {
			return nil, fmt.Errorf("read the closure of %s: %s is not in the local store", storePath, r.Path)
		}
		h, err := nix32Hash(r.NarHash)
		if err != nil {
			return nil, fmt.Errorf("read the closure of %s: %s: %w", storePath, r.Path, err)
		}
		refs := append([]string(nil), r.References...)
		sort.Strings(refs)
		infos = append(infos, PathInfo{Path: r.Path, NarHash: h, NarSize: r.NarSize, References: refs, Deriver: r.Deriver})
	}
	return infos, nil
}

// nix32Hash turns a SHA-256 in SRI form ("sha256-<base64>", as Nix 2.8's
// path-info prints it) or in Nix's own form ("sha256:<nix32>") into Nix's
// own form, which narinfo files and their signatures use.
func nix32Hash(h string) (string, error) {
	if strings.HasPrefix(h, "sha256:") {
		return h, nil
	}
	b64, ok := strings.CutPrefix(h, "sha256-")
	if !ok {
		return "", fmt.Errorf("NAR hash %q: want sha256-<base64> or sha256:<nix32>", h)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 32 {
		return "", fmt.Errorf("NAR hash %q: not 32 bytes of base64", h)
	}
	return "sha256:" + Nix32(raw), nil
}

// nix32Alphabet is Nix's base-32 alphabet (no e, o, u, t).
const nix32Alphabet = "0123456789abcdfghijklmnpqrsvwxyz"

// Nix32 encodes b in Nix's base 32, as store path hashes and narinfo
// hashes are written: the last 5-bit group first.
func Nix32(b []byte) string {
	n := (len(b)*8-1)/5 + 1
	out := make([]byte, n)
	for k := n - 1; k >= 0; k-- {
		bit := k * 5
		i, j := bit/8, uint(bit%8)
		c := b[i] >> j
		if i+1 < len(b) {
			c |= b[i+1] << (8 - j)
		}
		out[n-1-k] = nix32Alphabet[c&0x1f]
	}
	return string(out)
}

// DumpPath writes the NAR of a local store path to w (`nix-store --dump`).
func DumpPath(ctx context.Context, storePath string, w io.Writer) error {
	cmd := exec.CommandContext(ctx, "nix-store", "--dump", storePath)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("dump %s (nix-store --dump): %w: %s", storePath, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
