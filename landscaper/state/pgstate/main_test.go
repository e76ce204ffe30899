package pgstate

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/internal/testbin"

	"github.com/jackc/pgx/v5"

	"github.com/landscaper-nix/landscaper/landscaper/state"
)

// The tests run against a real PostgreSQL server that TestMain starts (as
// the postgres OS user when run as root) in a temporary directory, on a
// free loopback port, and stops at the end.

// holdLockEnv makes the test binary, instead of running tests, take the
// lock of the state at the URL it names, print "locked" and sleep until
// killed.
const holdLockEnv = "LANDSCAPER_PGSTATE_TEST_HOLD_LOCK"

const (
	testRole     = "landscaper"
	testPassword = "s3cret-pw"
	otherRole    = "other"
)

var server struct {
	socketDir string
	port      int
	dbs       atomic.Int64
}

func TestMain(m *testing.M) {
	if u := os.Getenv(holdLockEnv); u != "" {
		holdLock(u)
		return
	}
	stop, err := startServer()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start a PostgreSQL server for the tests: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	testbin.Cleanup()
	os.Exit(code)
}

func holdLock(u string) {
	ctx := context.Background()
	b, err := New(ctx, u)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	info := state.LockInfo{PID: os.Getpid(), Host: "helper-host", Command: "lock-holder-helper", Since: time.Now()}
	if _, err := b.Lock(ctx, info, 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("locked")
	time.Sleep(time.Hour)
	os.Exit(3)
}

// pgBinDir finds Debian's PostgreSQL binaries, the newest version first.
func pgBinDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return "", fmt.Errorf("no PostgreSQL server found (/usr/lib/postgresql/*/bin/initdb is missing): install Debian's postgresql package, e.g. by running scripts/install-deps.sh as root")
	}
	sort.Slice(matches, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(matches[j]))))
		return vi > vj
	})
	return filepath.Dir(matches[0]), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startServer() (stop func(), err error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	base, err := os.MkdirTemp("", "pgstate-test-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { os.RemoveAll(base) }
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	// The server refuses to run as root: run it as the postgres user.
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root but there is no postgres user (install Debian's postgresql package, e.g. with scripts/install-deps.sh): %w", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
		if err := os.Chmod(base, 0o755); err != nil {
			return nil, err
		}
		if err := os.Chown(base, uid, gid); err != nil {
			return nil, err
		}
	}
	asPostgres := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = base
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
		return cmd
	}
	data := filepath.Join(base, "data")
	sock := filepath.Join(base, "sock")
	pwfile := filepath.Join(base, "pw")
	if err := os.WriteFile(pwfile, []byte("postgres-pw\n"), 0o600); err != nil {
		return nil, err
	}
	if cred != nil {
		os.Chown(pwfile, int(cred.Uid), int(cred.Gid))
	}
	// Trust on the socket (for the test's own setup), passwords over TCP.
	initdb := asPostgres("initdb", "-D", data, "-U", "postgres", "--pwfile", pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if err := os.Mkdir(sock, 0o755); err != nil {
		return nil, err
	}
	if cred != nil {
		os.Chown(sock, int(cred.Uid), int(cred.Gid))
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(base, "postgres.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	srv := asPostgres("postgres", "-D", data, "-k", sock, "-p", strconv.Itoa(port), "-h", "127.0.0.1",
		"-c", "fsync=off", "-c", "max_connections=200")
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { srv.Wait(); close(exited) }()
	stop = func() {
		// SIGINT: fast shutdown.
		srv.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			srv.Process.Kill()
			<-exited
		}
		logf.Close()
		cleanup()
	}
	server.socketDir, server.port = sock, port
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var conn *pgx.Conn
	for {
		conn, err = pgx.Connect(ctx, adminURL("postgres"))
		if err == nil {
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			stop()
			return nil, fmt.Errorf("postgres exited: %s", log)
		case <-ctx.Done():
			log, _ := os.ReadFile(logPath)
			stop()
			return nil, fmt.Errorf("postgres did not accept connections: %v\n%s", err, log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer conn.Close(context.Background())
	for _, stmt := range []string{
		fmt.Sprintf(`CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'`, testRole, testPassword),
		fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD 'other-pw'`, otherRole),
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			stop()
			return nil, fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return stop, nil
}

// adminURL connects as the superuser over the socket.
func adminURL(db string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d", db, url.QueryEscape(server.socketDir), server.port)
}

// newDatabase creates a fresh database owned by the test role and returns
// its URL (over TCP, with a password).
func newDatabase(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("db%d", server.dbs.Add(1))
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, adminURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s OWNER %s`, name, testRole)); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", testRole, testPassword, server.port, name)
}

// newBackend returns a connected Backend, closed at the end of the test.
func newBackend(t *testing.T, u string) *Backend {
	t.Helper()
	b, err := New(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// startHolder runs the test binary as a child that takes the lock at u and
// keeps it until killed.
func startHolder(t *testing.T, u string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdLockEnv+"="+u)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("lock holder: %q, %v", line, err)
	}
	return cmd
}
