package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/formats/bootentry"
	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/landscaper/bootserver"
	"github.com/landscaper-nix/landscaper/landscaper/pull/pullserver"
)

var serveSpec = spec{name: "serve", max: 0, about: `Serve the network boot entries of the pxe-nbp provider over TFTP and HTTP,
until SIGINT or SIGTERM; then drain the transfers in flight and exit 0.
With --pull-dir, the HTTP listener also serves the pull API (/pull/v1/) to
the hosts nixos.pull publishes systems for (docs/pull.md).`}

// runServe is "landscaper serve": the network boot server for the entries
// the pxe-nbp provider writes. It serves until SIGINT or SIGTERM, then
// drains and exits 0.
func runServe(ctx context.Context, args []string, env Env) error {
	fs := serveSpec.flags()
	cfg := bootserver.Config{}
	fs.StringVar(&cfg.BootDir, "boot-dir", bootentry.DefaultDir, "the `directory` of pxe-nbp boot entries")
	fs.StringVar(&cfg.TFTPAddr, "tftp-listen", ":69", "TFTP `address` to listen on (empty disables TFTP)")
	fs.StringVar(&cfg.HTTPAddr, "http-listen", ":8069", "HTTP `address` to listen on, also for /metrics (empty disables HTTP)")
	fs.StringVar(&cfg.HTTPURL, "http-url", "", "the base `URL` booting machines reach the HTTP listener at; when set, scripts fetch kernels and initrds over HTTP")
	fs.StringVar(&cfg.IPXEDir, "ipxe-dir", bootserver.DefaultIPXEDir, "the `directory` of the iPXE binaries to serve (undionly.kpxe, ipxe.efi, snponly.efi)")
	fs.IntVar(&cfg.MaxTransfers, "max-transfers", bootserver.DefaultMaxTransfers, "the most transfers served at once over both protocols; more are refused")
	fs.IntVar(&cfg.MaxTransfersPerAddress, "max-transfers-per-address", bootserver.DefaultMaxTransfersPerAddress, "the most TFTP transfers one client address may have at once (at most --max-transfers); more are refused")
	fs.DurationVar(&cfg.TransferTimeout, "transfer-timeout", bootserver.DefaultTransferTimeout, "the longest one transfer may take")
	pullDir := fs.String("pull-dir", "", "the `directory` of nixos.pull's hosts: serve them the pull API and their binary cache under /pull/v1/ (needs --http-listen)")
	noColorFlag(fs, &env)
	if _, err := serveSpec.parse(fs, args, env); err != nil {
		return err
	}
	if cfg.MaxTransfers < 1 {
		return &exitError{code: 2, err: fmt.Errorf("--max-transfers must be at least 1, got %d", cfg.MaxTransfers)}
	}
	if cfg.MaxTransfersPerAddress < 1 {
		return &exitError{code: 2, err: fmt.Errorf("--max-transfers-per-address must be at least 1, got %d", cfg.MaxTransfersPerAddress)}
	}
	if cfg.TransferTimeout <= 0 {
		return &exitError{code: 2, err: fmt.Errorf("--transfer-timeout must be positive, got %s", cfg.TransferTimeout)}
	}
	logger := slog.New(slog.NewTextHandler(env.Stderr, nil))
	cfg.Logger = logger
	if _, err := os.Stat(cfg.BootDir); err != nil {
		logger.Warn("boot directory not readable; every machine gets the no-entry script until it is", "boot_dir", cfg.BootDir, "error", err)
	}
	if _, err := os.Stat(cfg.IPXEDir); err != nil {
		logger.Warn("iPXE directory not readable; the iPXE binaries are not served (Debian: apt-get install ipxe)", "ipxe_dir", cfg.IPXEDir, "error", err)
	}
	if *pullDir != "" {
		if cfg.HTTPAddr == "" {
			return &exitError{code: 2, err: fmt.Errorf("--pull-dir needs the HTTP listener (--http-listen)")}
		}
		pull, err := pullserver.New(pullserver.Config{Dir: pulldir.Dir{Path: *pullDir}, Logger: logger})
		if err != nil {
			return err
		}
		cfg.Mounts = map[string]http.Handler{pullserver.Prefix: pull}
		cfg.ExtraMetrics = append(cfg.ExtraMetrics, pull.WriteMetrics)
		// Long-polls answer at once when the server stops, so the drain
		// does not wait for them.
		stop := context.AfterFunc(ctx, pull.Close)
		defer stop()
		logger.Info("pull API enabled", "pull_dir", *pullDir, "server_key", ssh.FingerprintSHA256(pull.PublicKey()), "cache_key", pull.CachePublicKey())
	}
	srv, err := bootserver.New(cfg)
	if err != nil {
		return err
	}
	return srv.Serve(ctx)
}
