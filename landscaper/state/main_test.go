package state

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// holdLockEnv makes the test binary, instead of running tests, take the
// lock on the state file it names, print "locked" and sleep until killed.
const holdLockEnv = "LANDSCAPER_STATE_TEST_HOLD_LOCK"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdLockEnv); path != "" {
		holdLock(path)
		return
	}
	os.Exit(m.Run())
}

func holdLock(path string) {
	host, _ := os.Hostname()
	info := LockInfo{PID: os.Getpid(), Host: host, Command: "lock-holder-helper", Since: time.Now()}
	if _, err := NewFile(path).Lock(context.Background(), info, 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("locked")
	time.Sleep(time.Hour)
	os.Exit(3)
}
