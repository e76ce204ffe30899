package ui

import (
	"fmt"
	"io"

	"github.com/landscaper-nix/landscaper/internal/termsafe"
	"github.com/landscaper-nix/landscaper/landscaper/engine"
)

// RenderRefreshOnly writes a refresh-only plan (plan or apply
// --refresh-only): what changed outside Landscaper, and that recording it
// changes nothing else. settled says whether interrupted operations were
// settled, which a refresh-only apply records too.
func RenderRefreshOnly(w io.Writer, plan *engine.Plan, settled bool, st Style) {
	if len(plan.Drift) == 0 {
		if settled {
			fmt.Fprintln(w, st.Green("No changes outside Landscaper.")+" Interrupted operations were settled; apply --refresh-only records that.")
			return
		}
		fmt.Fprintln(w, st.Green("No changes.")+" What exists matches the recorded state.")
		return
	}
	fmt.Fprintln(w, st.Bold("Changed outside of Landscaper since the last apply:"))
	for _, d := range plan.Drift {
		fmt.Fprintf(w, "  - %s\n", termsafe.Text(d))
	}
	fmt.Fprintln(w, "\nThis is a refresh-only plan: apply --refresh-only records these changes in the state (members that are gone are forgotten); nothing is created, updated or deleted.")
}

// RenderRefreshSummary writes what a refresh-only apply recorded.
func RenderRefreshSummary(w io.Writer, s *engine.RefreshSummary, st Style) {
	fmt.Fprintln(w, "\n"+st.Green(fmt.Sprintf("Apply complete! Recorded what exists: %d changed outside Landscaper, %d gone and forgotten, %d interrupted operations settled; nothing was created, updated or deleted.",
		len(s.Changed), len(s.Forgotten), len(s.Settled))))
}
