package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// spec describes one command for its usage text and the check of its
// positional arguments.
type spec struct {
	// name is the command as typed after "landscaper" ("state show").
	name string
	// args is the synopsis of the positional arguments ("MEMBER",
	// "[MEMBER[.ATTR]]"); empty for none.
	args string
	// about says what the command does; it may span lines.
	about string
	// short is the one line a group's usage shows for a subcommand.
	short string
	// min and max bound the number of positional arguments; max < 0
	// means no upper bound.
	min, max int
}

// flags returns the command's flag set. Nothing is printed by the flag
// package itself: parse prints the usage where it belongs.
func (s spec) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("landscaper "+s.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// usage writes the command's usage: the synopsis, what it does and its
// flags.
func (s spec) usage(w io.Writer, fs *flag.FlagSet) {
	synopsis := "landscaper " + s.name
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		synopsis += " [flags]"
	}
	if s.args != "" {
		synopsis += " " + s.args
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", synopsis, strings.TrimSpace(s.about))
	if hasFlags {
		fmt.Fprint(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// parse parses flags, which may come before or after the positional
// arguments ("--" ends the flags), and checks the number of positional
// arguments. -h and --help print the usage on stdout and return
// flag.ErrHelp (exit 0); a usage error prints the usage on stderr and is
// an exit 2 error naming what is wrong.
func (s spec) parse(fs *flag.FlagSet, args []string, env Env) ([]string, error) {
	positional, err := parseFlags(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		s.usage(env.Stdout, fs)
		return nil, err
	}
	if err == nil {
		err = s.checkArgs(positional)
	} else if strings.HasSuffix(err.Error(), "not defined: -chdir") {
		// Terraform users write "plan -chdir=DIR" after reading that
		// Terraform's must come first; say so instead of "not defined".
		err = fmt.Errorf("--chdir is a global option and comes before the command: landscaper --chdir DIR %s", s.name)
	}
	if err != nil {
		s.usage(env.Stderr, fs)
		fmt.Fprintln(env.Stderr)
		return nil, &exitError{code: 2, err: err}
	}
	return positional, nil
}

// checkArgs checks the number of positional arguments.
func (s spec) checkArgs(positional []string) error {
	switch {
	case s.max >= 0 && len(positional) > s.max:
		extra := quoteAll(positional[s.max:])
		if s.max == 0 {
			return fmt.Errorf("%s takes no arguments, got %s", s.name, extra)
		}
		return fmt.Errorf("%s takes at most %d argument%s (%s), got the extra %s", s.name, s.max, plural(s.max), s.args, extra)
	case len(positional) < s.min:
		return fmt.Errorf("%s needs %s", s.name, s.args)
	}
	return nil
}

// parseFlags parses flags that may come before or after positional
// arguments; after "--" everything is a positional argument.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, withFlagSuggestion(fs, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// quoteAll shows arguments for an error message, each quoted.
func quoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, " ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// noColorFlag registers --no-color, which turns colours off like NO_COLOR.
func noColorFlag(fs *flag.FlagSet, env *Env) {
	fs.BoolVar(&env.NoColor, "no-color", env.NoColor, "print without colours (as NO_COLOR=1 does)")
}

func detailsFlag(fs *flag.FlagSet, env *Env) {
	fs.BoolVar(&env.Details, "details", env.Details, "show every line providers tell of a change (a NixOS system's package changes), not only its summary")
}

// group is a command with subcommands ("state", "provider").
type group struct {
	name  string
	about string
	subs  []spec
}

// usage writes the group's usage: its subcommands.
func (g group) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: landscaper %s <subcommand> [flags] [arguments]\n\n%s\n\nSubcommands:\n", g.name, strings.TrimSpace(g.about))
	for _, s := range g.subs {
		sub := strings.TrimPrefix(s.name, g.name+" ")
		if s.args != "" {
			sub += " " + s.args
		}
		if len(sub) > 20 {
			fmt.Fprintf(w, "  %s\n  %-20s %s\n", sub, "", s.short)
			continue
		}
		fmt.Fprintf(w, "  %-20s %s\n", sub, s.short)
	}
	fmt.Fprintf(w, "\nRun \"landscaper %s <subcommand> --help\" for a subcommand's flags.\n", g.name)
}

// dispatch picks the subcommand: help for the group goes to stdout (exit
// 0); a missing or unknown subcommand is a usage error (exit 2).
func (g group) dispatch(args []string, env Env) (spec, []string, error) {
	if len(args) == 0 {
		g.usage(env.Stderr)
		return spec{}, nil, &exitError{code: 2, err: fmt.Errorf("%s needs a subcommand", g.name)}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		g.usage(env.Stdout)
		return spec{}, nil, flag.ErrHelp
	}
	for _, s := range g.subs {
		if s.name == g.name+" "+args[0] {
			return s, args[1:], nil
		}
	}
	g.usage(env.Stderr)
	names := make([]string, len(g.subs))
	for i, s := range g.subs {
		names[i] = strings.TrimPrefix(s.name, g.name+" ")
	}
	return spec{}, nil, &exitError{code: 2, err: fmt.Errorf("unknown %s subcommand %q%s", g.name, args[0], didYouMean(args[0], names))}
}
