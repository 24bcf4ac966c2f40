// Package testenv finds and starts the real components that end-to-end tests
// need (redis-server, mailpit, aws-lambda-rie, the ADF schema), on loopback
// only. A missing component skips the test, unless STAIRHOOK_E2E is set, as
// .ci/run does, where it fails the test instead.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// E2E reports whether STAIRHOOK_E2E asks for every real component.
func E2E() bool { return os.Getenv("STAIRHOOK_E2E") != "" }

// Missing skips the test, or fails it under STAIRHOOK_E2E, naming what is
// missing and how .ci/run installs it.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	if E2E() {
		t.Fatalf("%s not found (STAIRHOOK_E2E is set); install it with: %s", what, install)
	}
	t.Skipf("%s not found; install it with: %s (set STAIRHOOK_E2E=1 to make this a failure)", what, install)
}

// LookBinary finds name on PATH, then in $(go env GOPATH)/bin, without
// running the go command.
func LookBinary(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			gopath = filepath.Join(home, "go")
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
	}
	return "", false
}

// Binary returns the path of name, or skips (fails under STAIRHOOK_E2E).
func Binary(t testing.TB, name, install string) string {
	t.Helper()
	p, ok := LookBinary(name)
	if !ok {
		Missing(t, name, install)
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr returns "127.0.0.1:port".
func Addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// WaitTCP waits until addr accepts connections or the timeout passes.
func WaitTCP(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not accept connections within %v: %v", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Start runs cmd and registers a cleanup that kills it by process id
// (SIGKILL: some emulators ignore SIGTERM) and waits for it.
func Start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}
