package pgstate

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/state"
)

// state push and pull: a file state copied into PostgreSQL and back into a
// new file keeps its lineage and members.
func TestPushAndPull(t *testing.T) {
	ctx := context.Background()
	info := state.LockInfo{PID: 1, Host: "test", Command: "push", Since: time.Now()}
	dir := t.TempDir()
	local := state.NewFile(filepath.Join(dir, "state.json"))
	s, err := local.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Resources["a"] = &state.Resource{Type: "local.file", Provider: "local", Inputs: []byte(`{"name":"a"}`), Outputs: []byte(`{"sha256":"x"}`)}
	if err := local.Write(ctx, s); err != nil {
		t.Fatal(err)
	}
	remote := newBackend(t, newDatabase(t))
	if _, err := state.Copy(ctx, local, remote, info, 0); err != nil {
		t.Fatalf("push: %v", err)
	}
	back := state.NewFile(filepath.Join(dir, "pulled.json"))
	if _, err := state.Copy(ctx, remote, back, info, 0); err != nil {
		t.Fatalf("pull: %v", err)
	}
	got, err := state.NewFile(filepath.Join(dir, "pulled.json")).Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Lineage != s.Lineage || got.Resources["a"] == nil || string(got.Resources["a"].Outputs) != `{"sha256":"x"}` {
		t.Errorf("pulled state: lineage %s (want %s), resources %v", got.Lineage, s.Lineage, got.Resources)
	}
}
