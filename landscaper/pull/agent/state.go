package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/landscaper-nix/landscaper/formats/pulldir"
	"github.com/landscaper-nix/landscaper/internal/atomicfile"
)

// state is what the agent remembers between cycles: the last generation
// it acted on and how that ended (a generation that failed is not tried
// again; the next one is).
type state struct {
	Generation int64  `json:"generation"`
	Toplevel   string `json:"toplevel"`
	Result     string `json:"result"`
}

func (a *Agent) statePath() string   { return filepath.Join(a.cfg.StateDir, "state.json") }
func (a *Agent) pendingPath() string { return filepath.Join(a.cfg.StateDir, "pending-report.json") }

func (a *Agent) loadState() (state, error) {
	var st state
	b, err := os.ReadFile(a.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read the agent's state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read the agent's state %s: %w", a.statePath(), err)
	}
	return st, nil
}

func (a *Agent) saveState(st state) error {
	b, _ := json.Marshal(st)
	return atomicfile.Write(a.statePath(), b, 0o600)
}

// report sends a report; one the server does not get now is kept and
// sent before anything else in the next cycles.
func (a *Agent) report(ctx context.Context, r pulldir.Report) {
	if err := a.client.Report(ctx, r); err != nil {
		a.log.Warn("cannot send the report; kept for the next cycle", "error", err)
		b, _ := json.Marshal(r)
		if err := atomicfile.Write(a.pendingPath(), b, 0o600); err != nil {
			a.log.Error("cannot keep the report", "error", err)
		}
		return
	}
	_ = os.Remove(a.pendingPath())
}

// sendPending sends the report kept from an earlier cycle, if any.
func (a *Agent) sendPending(ctx context.Context) {
	b, err := os.ReadFile(a.pendingPath())
	if err != nil {
		return
	}
	var r pulldir.Report
	if err := json.Unmarshal(b, &r); err != nil {
		_ = os.Remove(a.pendingPath())
		return
	}
	if err := a.client.Report(ctx, r); err == nil {
		a.log.Info("sent the report kept from an earlier cycle", "generation", r.Generation, "result", r.Result)
		_ = os.Remove(a.pendingPath())
	}
}
