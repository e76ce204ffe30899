package ui_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/engine"
	"github.com/landscaper-nix/landscaper/landscaper/ui"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

func TestWarningEvents(t *testing.T) {
	ev := engine.Event{Time: time.Unix(0, 0), Kind: engine.EventWarning, Member: "web", Type: "mine.thing", Action: resource.ActionCreate, Message: "inputs.size: deprecated: use bytes"}
	tests := []struct {
		name string
		show func(*bytes.Buffer)
		want string
	}{
		{name: "plain", show: func(b *bytes.Buffer) { ui.NewPlain(b).Event(ev) }, want: "web: Warning: inputs.size: deprecated: use bytes"},
		{name: "terminal", show: func(b *bytes.Buffer) { t := ui.NewTerminal(b, ui.Style{}); t.Event(ev); t.Close() }, want: "web: Warning: inputs.size: deprecated: use bytes"},
		{name: "json", show: func(b *bytes.Buffer) { ui.NewJSON(b).Event(ev) }, want: `"kind":"warning"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tt.show(&b)
			if !strings.Contains(b.String(), tt.want) {
				t.Errorf("output %q does not contain %q", b.String(), tt.want)
			}
			if tt.name == "json" && !json.Valid(bytes.TrimSpace(b.Bytes())) {
				t.Errorf("not one JSON value: %q", b.String())
			}
		})
	}
}
