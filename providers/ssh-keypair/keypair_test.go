package sshkeypair_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

func TestSchema(t *testing.T) {
	h := newHarness(t)
	if h.Schema.Name != "ssh-keypair" || h.Schema.Version != "0.1.0" {
		t.Fatalf("schema = %s %s, want ssh-keypair 0.1.0", h.Schema.Name, h.Schema.Version)
	}
	s := h.Schema.Types["keypair"]
	if s == nil {
		t.Fatalf("no type keypair in %v", h.Schema.Types)
	}
	inputs := []struct {
		name, typ, def string // def "" means no default
		forceNew       bool
	}{
		{"algorithm", "string", `"ed25519"`, true},
		{"bits", "number", "", true},
		{"comment", "string", `""`, false},
	}
	for _, want := range inputs {
		a, ok := s.Input(want.name)
		if !ok {
			t.Errorf("no input %s", want.name)
			continue
		}
		if a.Type != want.typ || string(a.Default) != want.def || a.ForceNew != want.forceNew || a.Required || a.Sensitive {
			t.Errorf("input %s = %+v; want type %s, default %s, forceNew %v, optional, not sensitive", want.name, a, want.typ, want.def, want.forceNew)
		}
	}
	if len(s.Inputs) != len(inputs) {
		t.Errorf("inputs = %d, want %d", len(s.Inputs), len(inputs))
	}
	for name, sensitive := range map[string]bool{"publicKey": false, "privateKey": true, "fingerprint": false} {
		a, ok := s.Output(name)
		if !ok || a.Type != "string" || a.Sensitive != sensitive {
			t.Errorf("output %s = %+v (found %v); want a string, sensitive %v", name, a, ok, sensitive)
		}
	}
}

// TestKeysWithOpenSSH checks each algorithm and size against OpenSSH's own
// ssh-keygen.
func TestKeysWithOpenSSH(t *testing.T) {
	keygen := needTool(t, "ssh-keygen")
	tests := []struct {
		name    string
		inputs  map[string]any
		prefix  string // key type in the public key line
		keyType string // as ssh-keygen -l names it
		bits    int
	}{
		{"ed25519 default", map[string]any{"comment": "deployer@example"}, "ssh-ed25519", "ED25519", 256},
		{"ed25519 no comment", map[string]any{"algorithm": "ed25519"}, "ssh-ed25519", "ED25519", 256},
		{"ecdsa default", map[string]any{"algorithm": "ecdsa", "comment": "e256"}, "ecdsa-sha2-nistp256", "ECDSA", 256},
		{"ecdsa 256", map[string]any{"algorithm": "ecdsa", "bits": 256, "comment": "e256"}, "ecdsa-sha2-nistp256", "ECDSA", 256},
		{"ecdsa 384", map[string]any{"algorithm": "ecdsa", "bits": 384, "comment": "e384"}, "ecdsa-sha2-nistp384", "ECDSA", 384},
		{"ecdsa 521", map[string]any{"algorithm": "ecdsa", "bits": 521, "comment": "e521"}, "ecdsa-sha2-nistp521", "ECDSA", 521},
		{"rsa 2048", map[string]any{"algorithm": "rsa", "bits": 2048, "comment": "two words"}, "ssh-rsa", "RSA", 2048},
		{"rsa 3072", map[string]any{"algorithm": "rsa", "bits": 3072, "comment": "r3072"}, "ssh-rsa", "RSA", 3072},
		{"rsa default 4096", map[string]any{"algorithm": "rsa", "comment": "r4096"}, "ssh-rsa", "RSA", 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			s, ev := h.Create(typ, tt.inputs)
			out := stateOutputs(t, s)
			comment, _ := tt.inputs["comment"].(string)

			// The outputs' own shape.
			wantLine := keyPart(out.PublicKey)
			if comment != "" {
				wantLine += " " + comment
			}
			if !strings.HasPrefix(out.PublicKey, tt.prefix+" AAAA") || out.PublicKey != wantLine || strings.HasSuffix(out.PublicKey, "\n") {
				t.Errorf("publicKey = %q; want %q key, then the comment %q, no newline", out.PublicKey, tt.prefix, comment)
			}
			if !strings.HasPrefix(out.PrivateKey, "-----BEGIN OPENSSH PRIVATE KEY-----\n") || !strings.HasSuffix(out.PrivateKey, "-----END OPENSSH PRIVATE KEY-----\n") {
				t.Errorf("privateKey is not an OpenSSH private key file")
			}
			if got := fingerprintOf(t, out.PublicKey); out.Fingerprint != got {
				t.Errorf("fingerprint = %s, want %s", out.Fingerprint, got)
			}
			if !slices.ContainsFunc(s.Outputs.Sensitive, func(p resource.Path) bool { return p.String() == "privateKey" }) {
				t.Errorf("outputs' sensitive paths = %v, want privateKey among them", pathStrings(s.Outputs.Sensitive))
			}
			assertNoSecret(t, out.PrivateKey, "create events", eventTexts(ev)...)

			// ssh-keygen reads the private key and derives the same public key.
			key := writeKey(t, out.PrivateKey)
			derived := strings.TrimSuffix(run(t, keygen, "-y", "-f", key), "\n")
			if keyPart(derived) != keyPart(out.PublicKey) {
				t.Errorf("ssh-keygen -y = %q, want key %q", derived, keyPart(out.PublicKey))
			}
			if derived != out.PublicKey {
				// ssh-keygen -y prints the private key's comment: it
				// must be the one given.
				t.Errorf("ssh-keygen -y = %q, want exactly publicKey %q", derived, out.PublicKey)
			}

			// ssh-keygen -l of the private key and of the public key line.
			pub := key + ".pubkey"
			writeFile(t, pub, out.PublicKey+"\n")
			for _, f := range []string{key, pub} {
				bits, fp, gotComment, kind := parseKeygenL(t, run(t, keygen, "-l", "-f", f))
				if fp != out.Fingerprint || bits != tt.bits || kind != tt.keyType {
					t.Errorf("ssh-keygen -lf %s: %d %s (%s); want %d %s (%s)", f, bits, fp, kind, tt.bits, out.Fingerprint, tt.keyType)
				}
				wantComment := comment
				if wantComment == "" && f == pub {
					// As for a key ssh-keygen made: an empty comment
					// in a private key prints as nothing, a public key
					// line without one as "no comment".
					wantComment = "no comment"
				}
				if gotComment != wantComment {
					t.Errorf("ssh-keygen -lf %s: comment %q, want %q", f, gotComment, wantComment)
				}
			}

			// Read keeps it as it is.
			r := h.Read(typ, s)
			if !r.Exists || string(r.Outputs.JSON) != string(s.Outputs.JSON) {
				t.Errorf("Read: exists %v, outputs changed %v; want the recorded key", r.Exists, string(r.Outputs.JSON) != string(s.Outputs.JSON))
			}
		})
	}
}

// parseKeygenL reads "256 SHA256:xxx comment words (ED25519)".
func parseKeygenL(t *testing.T, line string) (bits int, fingerprint, comment, kind string) {
	t.Helper()
	line = strings.TrimSpace(line)
	f := strings.Fields(line)
	if len(f) < 3 || !strings.HasPrefix(f[len(f)-1], "(") || !strings.HasSuffix(f[len(f)-1], ")") {
		t.Fatalf("ssh-keygen -l printed %q", line)
	}
	bits, err := strconv.Atoi(f[0])
	if err != nil {
		t.Fatalf("ssh-keygen -l printed %q: %v", line, err)
	}
	kind = strings.Trim(f[len(f)-1], "()")
	comment = strings.Join(f[2:len(f)-1], " ")
	return bits, f[1], comment, kind
}

func TestEachCreateMakesANewKey(t *testing.T) {
	h := newHarness(t)
	a, _ := h.Create(typ, map[string]any{})
	b, _ := h.Create(typ, map[string]any{})
	if stateOutputs(t, a).Fingerprint == stateOutputs(t, b).Fingerprint {
		t.Fatal("two creates made the same key")
	}
}

func TestCommentUpdate(t *testing.T) {
	keygen := needTool(t, "ssh-keygen")
	tests := []struct {
		name   string
		inputs map[string]any
	}{
		{"ed25519", map[string]any{"algorithm": "ed25519"}},
		{"ecdsa 384", map[string]any{"algorithm": "ecdsa", "bits": 384}},
		{"rsa 2048", map[string]any{"algorithm": "rsa", "bits": 2048}},
	}
	with := func(in map[string]any, comment string) map[string]any {
		m := map[string]any{"comment": comment}
		for k, v := range in {
			m[k] = v
		}
		return m
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			s, ev := h.Create(typ, with(tt.inputs, "old"))
			before := stateOutputs(t, s)

			for i, comment := range []string{"new comment", ""} {
				desired := with(tt.inputs, comment)
				p := h.Plan(typ, s, desired)
				if p.Diagnostics.HasError() {
					t.Fatalf("plan: %v", p.Diagnostics.Err())
				}
				if p.Action != resource.ActionUpdate || strings.Join(pathStrings(p.Changed), ",") != "comment" || len(p.RequiresReplace) != 0 {
					t.Fatalf("plan of comment %q = %v changing %v replacing %v; want an update of comment", comment, p.Action, pathStrings(p.Changed), pathStrings(p.RequiresReplace))
				}
				wantLine := keyPart(before.PublicKey)
				if comment != "" {
					wantLine += " " + comment
				}
				planned := plannedOutputs(t, p)
				if planned["fingerprint"] != before.Fingerprint || planned["publicKey"] != wantLine {
					t.Errorf("planned fingerprint %v, publicKey %v; want %s and %q", planned["fingerprint"], planned["publicKey"], before.Fingerprint, wantLine)
				}
				if _, ok := planned["privateKey"]; ok || !slices.Contains(p.UnknownOutputs, "privateKey") {
					t.Errorf("planned outputs hold privateKey %v, unknown = %v; want privateKey unknown until apply", ok, p.UnknownOutputs)
				}

				s2, ev2 := h.Update(typ, s, desired)
				after := stateOutputs(t, s2)
				if after.PublicKey != wantLine {
					t.Errorf("update %d: publicKey = %q, want %q", i, after.PublicKey, wantLine)
				}
				if after.Fingerprint != before.Fingerprint {
					t.Errorf("update %d: fingerprint %s, want the old %s", i, after.Fingerprint, before.Fingerprint)
				}
				if after.PrivateKey == stateOutputs(t, s).PrivateKey {
					t.Errorf("update %d: private key not rewritten", i)
				}
				// Same key material, new comment in the private key.
				if !samePublicKey(t, after.PrivateKey, before.PublicKey) {
					t.Errorf("update %d: the private key is a different key", i)
				}
				derived := strings.TrimSuffix(run(t, keygen, "-y", "-f", writeKey(t, after.PrivateKey)), "\n")
				if derived != wantLine {
					t.Errorf("update %d: ssh-keygen -y of the new private key = %q, want %q", i, derived, wantLine)
				}
				assertNoSecret(t, after.PrivateKey, "update events", eventTexts(ev, ev2)...)
				assertNoSecret(t, before.PrivateKey, "update events", eventTexts(ev, ev2)...)

				if p := h.Plan(typ, s2, desired); p.Action != resource.ActionNoop {
					t.Errorf("plan after update = %v, want no-op", p.Action)
				}
				s = s2
			}
		})
	}
}

// samePublicKey reports whether privateKey's public half is the key of the
// authorized_keys line.
func samePublicKey(t *testing.T, privateKey, line string) bool {
	t.Helper()
	signer, err := ssh.ParsePrivateKey([]byte(privateKey))
	if err != nil {
		t.Fatalf("parse private key: %v", err)
	}
	return keyPart(strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))) == keyPart(line)
}

func TestPlan(t *testing.T) {
	h := newHarness(t)
	base := map[string]any{"algorithm": "ecdsa", "comment": "c"}
	prior, _ := h.Create(typ, base)
	priorOut := stateOutputs(t, prior)
	interrupted := &resource.State{Inputs: prior.Inputs}
	rsaPrior, _ := h.Create(typ, map[string]any{"algorithm": "rsa", "bits": 2048})
	edPrior, _ := h.Create(typ, map[string]any{})

	all := []string{"fingerprint", "privateKey", "publicKey"}
	tests := []struct {
		name    string
		prior   *resource.State
		desired map[string]any
		unknown []resource.Path
		action  resource.Action
		changed []string
		replace []string
		known   []string // outputs planned with their prior values
	}{
		{"create", nil, base, nil, resource.ActionCreate, nil, nil, nil},
		{"no-op", prior, base, nil, resource.ActionNoop, nil, nil, all},
		{"no-op default algorithm", edPrior, map[string]any{"algorithm": "ed25519", "comment": ""}, nil, resource.ActionNoop, nil, nil, all},
		{"comment", prior, map[string]any{"algorithm": "ecdsa", "comment": "d"}, nil, resource.ActionUpdate, []string{"comment"}, nil, []string{"fingerprint"}},
		{"unknown comment", prior, map[string]any{"algorithm": "ecdsa"}, []resource.Path{resource.AttrPath("comment")}, resource.ActionUpdate, []string{"comment"}, nil, []string{"fingerprint"}},
		{"algorithm", prior, map[string]any{"algorithm": "rsa", "comment": "c"}, nil, resource.ActionReplace, []string{"algorithm"}, []string{"algorithm"}, nil},
		{"bits", prior, map[string]any{"algorithm": "ecdsa", "bits": 384, "comment": "c"}, nil, resource.ActionReplace, []string{"bits"}, []string{"bits"}, nil},
		{"bits and comment", prior, map[string]any{"algorithm": "ecdsa", "bits": 521, "comment": "x"}, nil, resource.ActionReplace, []string{"bits", "comment"}, []string{"bits"}, nil},
		{"unknown bits", prior, map[string]any{"algorithm": "ecdsa", "comment": "c"}, []resource.Path{resource.AttrPath("bits")}, resource.ActionReplace, []string{"bits"}, []string{"bits"}, nil},
		{"default size spelled out", prior, map[string]any{"algorithm": "ecdsa", "bits": 256, "comment": "c"}, nil, resource.ActionUpdate, []string{"bits"}, nil, all},
		{"rsa size changed", rsaPrior, map[string]any{"algorithm": "rsa"}, nil, resource.ActionReplace, []string{"bits"}, []string{"bits"}, nil},
		{"interrupted create", interrupted, base, nil, resource.ActionCreate, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := h.Plan(typ, tt.prior, tt.desired, tt.unknown...)
			if p.Diagnostics.HasError() {
				t.Fatalf("plan: %v", p.Diagnostics.Err())
			}
			if p.Action != tt.action {
				t.Errorf("action = %v, want %v", p.Action, tt.action)
			}
			if got := pathStrings(p.Changed); strings.Join(got, ",") != strings.Join(tt.changed, ",") {
				t.Errorf("changed = %v, want %v", got, tt.changed)
			}
			if got := pathStrings(p.RequiresReplace); strings.Join(got, ",") != strings.Join(tt.replace, ",") {
				t.Errorf("requires replace = %v, want %v", got, tt.replace)
			}
			planned := plannedOutputs(t, p)
			var prior outputs
			if tt.prior != nil && len(tt.prior.Outputs.JSON) > 0 {
				prior = stateOutputs(t, tt.prior)
			}
			for _, name := range all {
				v, ok := planned[name]
				wantKnown := slices.Contains(tt.known, name)
				unknown := slices.Contains(p.UnknownOutputs, name)
				if name == "publicKey" && tt.name == "comment" {
					wantKnown = true // with the new comment; TestCommentUpdate checks it
					if ok && v != keyPart(priorOut.PublicKey)+" d" {
						t.Errorf("planned publicKey = %v", v)
					}
					continue
				}
				if wantKnown != ok || wantKnown == unknown {
					t.Errorf("output %s: planned %v, unknown %v; want known %v", name, ok, unknown, wantKnown)
					continue
				}
				if ok {
					b, _ := json.Marshal(prior)
					var m map[string]any
					_ = json.Unmarshal(b, &m)
					if v != m[name] {
						t.Errorf("planned %s differs from the prior output", name)
					}
				}
			}
		})
	}
}

// TestSpelledOutSizeKeepsOutputs: an update that only spells out the
// default size keeps every output, the private key byte for byte.
func TestSpelledOutSizeKeepsOutputs(t *testing.T) {
	h := newHarness(t)
	s, _ := h.Create(typ, map[string]any{"algorithm": "ecdsa", "comment": "c"})
	desired := map[string]any{"algorithm": "ecdsa", "bits": 256, "comment": "c"}
	if p := h.Plan(typ, s, desired); p.Action != resource.ActionUpdate {
		t.Fatalf("plan = %v, want update", p.Action)
	}
	s2, _ := h.Update(typ, s, desired)
	if string(s2.Outputs.JSON) != string(s.Outputs.JSON) {
		t.Fatal("outputs changed")
	}
	if p := h.Plan(typ, s2, desired); p.Action != resource.ActionNoop {
		t.Fatalf("plan after update = %v, want no-op", p.Action)
	}
}

func TestValidate(t *testing.T) {
	h := newHarness(t)
	bits := resource.AttrPath("bits")
	algorithm := resource.AttrPath("algorithm")
	tests := []struct {
		name    string
		inputs  map[string]any
		unknown []resource.Path
		path    string // "" means valid
		want    string
	}{
		{"defaults", map[string]any{}, nil, "", ""},
		{"ed25519", map[string]any{"algorithm": "ed25519", "comment": "me@host"}, nil, "", ""},
		{"ecdsa 521", map[string]any{"algorithm": "ecdsa", "bits": 521}, nil, "", ""},
		{"rsa 2048", map[string]any{"algorithm": "rsa", "bits": 2048}, nil, "", ""},
		{"rsa 16384", map[string]any{"algorithm": "rsa", "bits": 16384}, nil, "", ""},
		{"rsa 1024", map[string]any{"algorithm": "rsa", "bits": 1024}, nil, "bits", "rsa needs at least 2048"},
		{"rsa 32768", map[string]any{"algorithm": "rsa", "bits": 32768}, nil, "bits", "at most 16384"},
		{"rsa fraction", map[string]any{"algorithm": "rsa", "bits": 2048.5}, nil, "bits", "whole number"},
		{"ecdsa 300", map[string]any{"algorithm": "ecdsa", "bits": 300}, nil, "bits", "256, 384 or 521"},
		{"ecdsa 2048", map[string]any{"algorithm": "ecdsa", "bits": 2048}, nil, "bits", "256, 384 or 521"},
		{"ed25519 with bits", map[string]any{"algorithm": "ed25519", "bits": 256}, nil, "bits", "leave bits unset"},
		{"default algorithm with bits", map[string]any{"bits": 4096}, nil, "bits", "ed25519"},
		{"unknown algorithm", map[string]any{"algorithm": "dsa"}, nil, "algorithm", `"ed25519", "ecdsa" or "rsa"`},
		{"algorithm case", map[string]any{"algorithm": "RSA"}, nil, "algorithm", "unknown key algorithm"},
		{"empty algorithm", map[string]any{"algorithm": ""}, nil, "algorithm", "unknown key algorithm"},
		{"comment with newline", map[string]any{"comment": "a\nb"}, nil, "comment", "line break"},
		{"bits a string", map[string]any{"algorithm": "rsa", "bits": "4096"}, nil, "bits", "wrong type"},
		{"unknown input", map[string]any{"type": "rsa"}, nil, "type", "unknown input"},
		{"size of an unknown algorithm not judged", map[string]any{"bits": 300}, []resource.Path{algorithm}, "", ""},
		{"unknown size not judged", map[string]any{"algorithm": "ed25519"}, []resource.Path{bits}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(how string, diags resource.Diagnostics) {
				t.Helper()
				if tt.path == "" {
					if diags.HasError() {
						t.Fatalf("%s: unexpected diagnostics: %v", how, diags.Err())
					}
					return
				}
				if !hasErrorAt(diags, tt.path, tt.want) {
					t.Fatalf("%s: diagnostics %v; want an error at %q containing %q", how, diags, tt.path, tt.want)
				}
			}
			check("Validate", validate(t, h, tt.inputs, tt.unknown...))
			p := h.Plan(typ, nil, tt.inputs, tt.unknown...)
			check("Plan", p.Diagnostics)
			if tt.path != "" && p.Action != resource.ActionUnspecified {
				t.Errorf("Plan with errors planned %v", p.Action)
			}
		})
	}
}

// TestInvalidCreate: the same checks guard Create, which makes no key.
func TestInvalidCreate(t *testing.T) {
	h := newHarness(t)
	r, err := h.Provider.Create(context.Background(), resource.CreateRequest{Type: typ, Name: "test",
		Inputs: resource.Values{JSON: h.JSON(map[string]any{"algorithm": "rsa", "bits": 1024})}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.HasState || !hasErrorAt(r.Diagnostics, "bits", "at least 2048") {
		t.Fatalf("Create of rsa 1024: state %v, diagnostics %v; want an error on bits and no state", r.HasState, r.Diagnostics)
	}
}

func TestReadAndDelete(t *testing.T) {
	h := newHarness(t)
	s, _ := h.Create(typ, map[string]any{"comment": "r"})
	out := stateOutputs(t, s)

	if r := h.Read(typ, s); !r.Exists || string(r.Outputs.JSON) != string(s.Outputs.JSON) {
		t.Fatalf("Read of a created key: exists %v; want it with the same outputs", r.Exists)
	}
	broken := func(privateKey string) *resource.State {
		o := out
		o.PrivateKey = privateKey
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return &resource.State{Inputs: s.Inputs, Outputs: resource.Values{JSON: b, Sensitive: s.Outputs.Sensitive}}
	}
	for name, st := range map[string]*resource.State{
		"interrupted create": {Inputs: s.Inputs},
		"no private key":     broken(""),
		"garbage":            broken("not a key"),
		"truncated":          broken(out.PrivateKey[:len(out.PrivateKey)/2]),
	} {
		r := h.Read(typ, st)
		if r.Exists || r.Diagnostics.HasError() {
			t.Errorf("Read with %s: exists %v, diagnostics %v; want gone", name, r.Exists, r.Diagnostics)
		}
		if p := h.Plan(typ, st, map[string]any{"comment": "r"}); name == "interrupted create" && p.Action != resource.ActionCreate {
			t.Errorf("plan after %s = %v, want create", name, p.Action)
		}
	}

	ev := h.Delete(typ, s)
	assertNoSecret(t, out.PrivateKey, "delete events", eventTexts(ev)...)
	h.Delete(typ, &resource.State{Inputs: s.Inputs}) // nothing recorded: still fine
}

// TestNoKeyMaterialInEventsOrDiagnostics runs every operation, failing ones
// included, and looks for the private key in everything that is shown.
func TestNoKeyMaterialInEventsOrDiagnostics(t *testing.T) {
	h := newHarness(t)
	in := map[string]any{"algorithm": "ecdsa", "bits": 384, "comment": "a"}
	s, ev1 := h.Create(typ, in)
	key := stateOutputs(t, s).PrivateKey
	s2, ev2 := h.Update(typ, s, map[string]any{"algorithm": "ecdsa", "bits": 384, "comment": "b"})
	key2 := stateOutputs(t, s2).PrivateKey
	ev3 := h.Delete(typ, s2)
	var texts []string
	texts = append(texts, eventTexts(ev1, ev2, ev3)...)

	// Plans with errors and without.
	for _, desired := range []map[string]any{in, {"algorithm": "ecdsa", "bits": 300}, {"algorithm": "x"}} {
		p := h.Plan(typ, s, desired)
		texts = append(texts, diagTexts(p.Diagnostics)...)
	}

	// An update whose recorded private key is damaged fails, and its error
	// must not quote what it could not read.
	o := stateOutputs(t, s)
	lines := strings.Split(strings.TrimSuffix(o.PrivateKey, "\n"), "\n")
	blanked := slices.Clone(lines)
	for i := 1; i < len(blanked)-1; i++ {
		blanked[i] = strings.Repeat("A", len(blanked[i]))
	}
	truncated := append(slices.Clone(lines[:len(lines)-3]), lines[len(lines)-1])
	for _, damagedKey := range []string{strings.Join(blanked, "\n") + "\n", strings.Join(truncated, "\n") + "\n"} {
		o.PrivateKey = damagedKey
		b, _ := json.Marshal(o)
		damaged := resource.State{Inputs: s.Inputs, Outputs: resource.Values{JSON: b}}
		ev := &eventsRecorder{}
		r, err := h.Provider.Update(context.Background(), resource.UpdateRequest{Type: typ, Name: "test", Prior: damaged,
			Inputs: resource.Values{JSON: h.JSON(map[string]any{"algorithm": "ecdsa", "bits": 384, "comment": "z"})}}, ev)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Diagnostics.HasError() {
			t.Fatal("update of a damaged key succeeded")
		}
		shown := append(diagTexts(r.Diagnostics), ev.lines...)
		assertNoSecret(t, damagedKey, "failed update", shown...)
		texts = append(texts, shown...)
	}
	assertNoSecret(t, key, "events and diagnostics", texts...)
	assertNoSecret(t, key2, "events and diagnostics", texts...)
}

// eventsRecorder is an EventSink that keeps every line.
type eventsRecorder struct{ lines []string }

func (e *eventsRecorder) Log(text string)              { e.lines = append(e.lines, text) }
func (e *eventsRecorder) Progress(m string, _ float64) { e.lines = append(e.lines, m) }
