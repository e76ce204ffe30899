package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/landscaper-nix/landscaper/landscaper/pull/agent"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullauth"
)

var agentSpec = spec{name: "agent", max: 0, about: `Run on a pulled host: fetch the host's desired generation from the pull server
(landscaper serve --pull-dir), fetch its closure from the server's binary
cache, write its secrets, activate it (switch-to-configuration test, health
checks, then boot; rolled back unless the host reaches the server again
within confirmTimeout) and report the result. Without --once it runs until
SIGINT or SIGTERM, long-polling for the next generation; a connection to
STATE-DIR/trigger.sock (landscaper agent --trigger) starts a cycle at once.
With --once it runs one cycle and exits 0 when the host runs its desired
generation, 1 otherwise. With --role and --enroll-token-file, a host the
server does not know enrolls in that role of nixos.pull-role and from then
on runs the role's generation.`}

// runAgent is "landscaper agent".
func runAgent(ctx context.Context, args []string, env Env) error {
	fs := agentSpec.flags()
	var cfg agent.Config
	serverKey := fs.String("server-key", "", "the pull server's public key: the `contents or path` of its PULL-DIR/server.pub; answers signed by any other key are refused")
	fs.StringVar(&cfg.Server, "server", "", "the pull server's base `URL` (http://landscaper:8069)")
	fs.StringVar(&cfg.HostKeyPath, "host-key", "/etc/ssh/ssh_host_ed25519_key", "the host's ed25519 SSH host key (`file`): it signs every request and opens the secrets")
	fs.StringVar(&cfg.StateDir, "state-dir", "/var/lib/landscaper-agent", "the agent's state `directory`")
	fs.DurationVar(&cfg.Interval, "interval", agent.DefaultInterval, "the longest wait between two cycles (each wait is a long-poll that ends at a new generation)")
	once := fs.Bool("once", false, "run one cycle and exit: 0 when the host runs its desired generation")
	fs.StringVar(&cfg.Role, "role", "", "enroll in this `role` of nixos.pull-role when the server does not know the host (needs --enroll-token-file)")
	tokenFile := fs.String("enroll-token-file", "", "the `file` holding the role's enrollment token (not readable by other users)")
	trigger := fs.Bool("trigger", false, "ask the agent running with --state-dir to start a cycle now, and exit")
	noColorFlag(fs, &env)
	if _, err := agentSpec.parse(fs, args, env); err != nil {
		return err
	}
	if *trigger {
		return agent.Trigger(ctx, cfg.StateDir)
	}
	if cfg.Server == "" || *serverKey == "" {
		return &exitError{code: 2, err: errors.New("agent needs --server and --server-key")}
	}
	key, err := pullauth.ParseServerKey(*serverKey)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--server-key: %w", err)}
	}
	cfg.ServerKey = key
	if (cfg.Role == "") != (*tokenFile == "") {
		return &exitError{code: 2, err: errors.New("--role and --enroll-token-file go together")}
	}
	if *tokenFile != "" {
		if cfg.EnrollToken, err = readTokenFile(*tokenFile); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--enroll-token-file: %w", err)}
		}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(env.Stderr, nil))
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	if !*once {
		cfg.Logger.Info("agent running", "host", a.ID(), "server", cfg.Server, "trigger", a.TriggerSocket())
		return a.Run(ctx)
	}
	ok, err := a.Once(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return &exitError{code: 1, err: errors.New("the host does not run its desired generation (see the log above)")}
	}
	return nil
}

// readTokenFile reads an enrollment token: the file's contents without
// surrounding white space. A file other users can read is refused.
func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if st.Mode().Perm()&0o004 != 0 {
		return "", fmt.Errorf("%s is readable by every user (mode %04o); make it 0600 or 0400", path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return token, nil
}
