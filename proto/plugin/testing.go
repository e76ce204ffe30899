package plugin

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/landscaper-nix/landscaper/proto/internal/resourcev1"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// InProcess serves impl over a real gRPC connection (a Unix socket) inside
// the test process, with the same message limits as a launched plugin, and
// returns the engine's side of it, so a test exercises the same wire path
// as a launched plugin without building a binary.
func InProcess(t testing.TB, impl resource.Provider) resource.Provider {
	t.Helper()
	// Not t.TempDir(): a socket's path must be short.
	dir, err := os.MkdirTemp("", "landscaper-plugin-")
	if err != nil {
		t.Fatalf("in-process provider: %v", err)
	}
	sock := filepath.Join(dir, "provider.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("in-process provider: listen: %v", err)
	}
	server := grpc.NewServer(serverOptions()...)
	resourcev1.RegisterProviderServiceServer(server, &grpcServer{impl: impl, logger: hclog.NewNullLogger()})
	go func() { _ = server.Serve(ln) }()
	conn, err := grpc.NewClient("unix://"+sock, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, dialOptions()...)...)
	if err != nil {
		server.Stop()
		_ = os.RemoveAll(dir)
		t.Fatalf("in-process provider: connect: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		server.Stop()
		_ = os.RemoveAll(dir)
	})
	return newGRPCClient(conn)
}
