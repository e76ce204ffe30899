package crashtest

import (
	"fmt"
	"testing"
)

// TestInputsKnownOnlyAtApply: members whose inputs use outputs known only
// after apply are planned again while the apply runs, concurrently with
// the other members. The engine is built with the race detector when the
// tests run with it (go test -race), and no data race may be reported;
// without -race this test only checks that the apply converges.
func TestInputsKnownOnlyAtApply(t *testing.T) {
	t.Parallel()
	bin := bins(t)
	dir := t.TempDir()
	var ms []member
	for i := 0; i < 30; i++ {
		src := fmt.Sprintf("src%02d", i)
		ms = append(ms,
			item(src, "out/"+src, "ok"),
			member{fmt.Sprintf("use%02d", i), fmt.Sprintf(`{ type = providers.local.file; inputs = { name = "out/use%02d"; contents = "uses ${members.%s.outputs.id}\n"; }; }`, i, src)},
			file(fmt.Sprintf("plain%02d", i), fmt.Sprintf("out/plain%02d", i), "plain\n"),
		)
	}
	deployment(t, dir, "", ms...)
	// landscaper reports races through checkRaces.
	mustSucceed(t, bin, dir, "apply", "--auto-approve")
	planClean(t, bin, dir)
	if st := mustReadState(t, dir); len(st.Resources) != len(ms) || len(st.Pending) != 0 {
		t.Errorf("state records %d resources with %v pending; want %d and nothing pending", len(st.Resources), keys(st.Pending), len(ms))
	}
}
