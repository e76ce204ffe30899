package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/internal/atomicfile"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullapi"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullsecret"
)

// cycle brings the host to the desired generation of answer, if it is
// not there yet and the generation was not tried before, and reports.
// It returns whether the host runs the desired generation at its end.
func (a *Agent) cycle(ctx context.Context, answer pullapi.DesiredAnswer) (bool, error) {
	a.sendPending(ctx)
	d := answer.Desired
	if d == nil {
		a.log.Info("the server has no generation for this host yet", "host", a.ID())
		return true, nil
	}
	st, err := a.loadState()
	if err != nil {
		return false, err
	}
	pre, err := probeHost(ctx, d.Toplevel)
	if err != nil {
		return false, err
	}
	runs := pre.current == d.Toplevel && pre.profile == d.Toplevel
	if st.Generation == d.Generation {
		if st.Result == pulldir.ResultActivated && runs {
			a.log.Info("the host runs its desired generation", "generation", d.Generation, "toplevel", d.Toplevel)
			return true, nil
		}
		if st.Result != pulldir.ResultActivated {
			a.log.Info("this generation was tried and not kept; waiting for a new one", "generation", d.Generation, "result", st.Result)
			return false, nil
		}
		a.log.Warn("the host no longer runs its desired generation; activating it again", "generation", d.Generation, "current", pre.current, "profile", pre.profile)
	}
	a.log.Info("applying a new generation", "generation", d.Generation, "toplevel", d.Toplevel, "current", pre.current)
	o := a.apply(ctx, answer, pre)
	post, _ := probeHost(ctx, "")
	rep := pulldir.Report{
		Generation: d.Generation, Toplevel: d.Toplevel,
		Current: post.current, Profile: post.profile, Booted: post.booted,
		Result: o.result, Reason: o.reason, Log: o.log,
		Time: time.Now().UTC().Format(time.RFC3339Nano),
	}
	if !o.retry {
		if err := a.saveState(state{Generation: d.Generation, Toplevel: d.Toplevel, Result: o.result}); err != nil {
			a.log.Error("cannot save the agent's state", "error", err)
		}
	}
	level := "activated"
	if o.result != pulldir.ResultActivated {
		level = "not activated"
	}
	a.log.Info("cycle done: "+level, "generation", d.Generation, "result", o.result, "reason", o.reason, "current", post.current)
	a.report(ctx, rep)
	return o.result == pulldir.ResultActivated, nil
}

// outcome is how an attempt ended; retry means nothing changed and the
// same generation may be tried again (its closure could not be fetched,
// another activation held the lock).
type outcome struct {
	result, reason, log string
	retry               bool
}

// apply fetches, writes the secrets, activates and makes the boot
// default, as nixos.system does.
func (a *Agent) apply(ctx context.Context, answer pullapi.DesiredAnswer, pre probe) outcome {
	d := answer.Desired
	if !pre.present {
		if err := a.realise(ctx, d.Toplevel, answer.CachePublicKey); err != nil {
			return outcome{result: pulldir.ResultFetchFailed, reason: err.Error(), retry: true}
		}
	}
	if err := a.writeSecrets(d.Secrets); err != nil {
		return outcome{result: pulldir.ResultFetchFailed, reason: err.Error(), retry: true}
	}
	return a.activate(ctx, d, pre)
}

// realise fetches the closure of toplevel from the server's binary cache
// into the host's store, through the signing loopback proxy, trusting
// only the cache's key.
func (a *Agent) realise(ctx context.Context, toplevel, cacheKey string) error {
	if cacheKey == "" {
		return fmt.Errorf("fetch %s: the server named no cache key", toplevel)
	}
	proxy, err := a.client.StartCacheProxy()
	if err != nil {
		return fmt.Errorf("fetch %s: start the cache proxy: %w", toplevel, err)
	}
	defer proxy.Close()
	cmd := exec.CommandContext(ctx, "nix-store", "--realise", toplevel)
	// In the environment, not on the command line: the proxy's path is
	// not for every local user to read.
	conf := strings.Join([]string{
		os.Getenv("NIX_CONFIG"),
		"substituters = " + proxy.URL(),
		"trusted-public-keys = " + cacheKey,
		"require-sigs = true",
		"narinfo-cache-negative-ttl = 0",
		"builders =",
	}, "\n")
	cmd.Env = append(os.Environ(), "NIX_CONFIG="+conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	a.log.Info("fetching the closure from the server's cache", "toplevel", toplevel)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("fetch %s from the server's cache (nix-store --realise): %w: %s", toplevel, err, tail(out.String()))
	}
	return nil
}

// writeSecrets opens every secret, then writes each with its mode. A
// secret that cannot be opened stops it before any is written.
func (a *Agent) writeSecrets(secrets []pulldir.Secret) error {
	type file struct {
		path string
		mode os.FileMode
		data []byte
	}
	files := make([]file, 0, len(secrets))
	for _, s := range secrets {
		if err := pullsecret.CheckPath(s.Path); err != nil {
			return fmt.Errorf("secret %s: %w", s.Path, err)
		}
		mode, err := parseMode(s.Mode)
		if err != nil {
			return fmt.Errorf("secret %s: %w", s.Path, err)
		}
		data, err := a.openSecret(s.Age)
		if err != nil {
			return fmt.Errorf("secret %s: %w", s.Path, err)
		}
		files = append(files, file{s.Path, mode, data})
	}
	for _, f := range files {
		if err := os.MkdirAll(dirOf(f.path), 0o755); err != nil {
			return fmt.Errorf("secret %s: %w", f.path, err)
		}
		if err := atomicfile.Write(f.path, f.data, f.mode); err != nil {
			return fmt.Errorf("secret %s: %w", f.path, err)
		}
		a.log.Info("wrote a secret", "path", f.path, "mode", fmt.Sprintf("%04o", f.mode))
	}
	return nil
}

// openSecret opens a sealed secret with the host key, or the role's token.
func (a *Agent) openSecret(sealed string) ([]byte, error) {
	if a.roleIdentity != nil {
		return pullsecret.Open(a.identity, sealed, a.roleIdentity)
	}
	return pullsecret.Open(a.identity, sealed)
}
