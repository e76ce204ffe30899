package cli

import (
	"flag"
	"fmt"
	"strings"
)

// commandNames lists the commands run knows, for suggestions.
func commandNames() []string {
	return []string{"plan", "apply", "destroy", "validate", "output", "graph", "show", "state", "providers", "provider", "serve", "agent", "version", "help"}
}

// didYouMean returns ` (did you mean "X"?)` for the known name closest to
// word, when one is at most two edits away, else "".
func didYouMean(word string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := editDistance(word, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" || best == word {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b (insertions,
// deletions and substitutions of bytes; a swap of two neighbours counts
// as one).
func editDistance(a, b string) int {
	prevprev := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prevprev[j-2]+1)
			}
		}
		prevprev, prev, cur = prev, cur, prevprev
	}
	return prev[len(b)]
}

// withFlagSuggestion adds to the flag package's "flag provided but not
// defined" the closest flag fs defines, if one is near.
func withFlagSuggestion(fs *flag.FlagSet, err error) error {
	const undefined = "flag provided but not defined: -"
	name, ok := strings.CutPrefix(err.Error(), undefined)
	if !ok {
		return err
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	hint := didYouMean(name, names)
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w%s", err, strings.Replace(hint, `"`, `"--`, 1))
}
