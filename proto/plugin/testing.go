package plugin

import (
	"testing"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// InProcess serves impl over a real gRPC connection inside the test process
// and returns the engine's side of it, so a test exercises the same wire
// path as a launched plugin without building a binary.
func InProcess(t testing.TB, impl resource.Provider) resource.Provider {
	t.Helper()
	client, server := goplugin.TestPluginGRPCConn(t, false, pluginSets(impl, nil)[ProtocolVersion])
	t.Cleanup(func() {
		// Stop the server before the client's Close asks it to shut down:
		// both stopping it at once races inside go-plugin.
		server.Stop()
		client.Close()
	})
	raw, err := client.Dispense(pluginName)
	if err != nil {
		t.Fatalf("dispense in-process provider: %v", err)
	}
	return raw.(resource.Provider)
}
