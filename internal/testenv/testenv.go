// Package testenv finds and starts the real components that end-to-end tests
// need (redis-server, mailpit, aws-lambda-rie, the ADF schema), on loopback
// only. A missing component skips the test, unless STAIRHOOK_E2E is set, as
// .ci/run does, where it fails the test instead.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// E2E reports whether STAIRHOOK_E2E asks for every real component: any
// value but empty, "0" or "false".
func E2E() bool {
	switch os.Getenv("STAIRHOOK_E2E") {
	case "", "0", "false":
		return false
	}
	return true
}

// Missing skips the test, or fails it under STAIRHOOK_E2E, naming what is
// missing and how .ci/run installs it.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	if E2E() {
		t.Fatalf("%s not found (STAIRHOOK_E2E is set); install it with: %s", what, install)
	}
	t.Skipf("%s not found; install it with: %s (set STAIRHOOK_E2E=1 to make this a failure)", what, install)
}

// LookBinary finds name on PATH, then in $GOBIN, in the bin folder of each
// $GOPATH entry and in $HOME/go/bin (where `go install` puts commands),
// without running the go command.
func LookBinary(name string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	for _, dir := range filepath.SplitList(os.Getenv("GOPATH")) {
		if dir != "" {
			dirs = append(dirs, filepath.Join(dir, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, dir := range dirs {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
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

// Process is a child started by StartProcess or StartServer, waited for by
// its own goroutine, so a test can see it exit, and how, without calling
// Wait itself.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the child has exited
	err  error         // Wait's result, set before done is closed
}

// StartProcess runs cmd and registers a cleanup that kills it by process
// id (SIGKILL: some emulators ignore SIGTERM) and waits for it. A failure
// to start is returned rather than failing the test.
func StartProcess(t testing.TB, cmd *exec.Cmd) (*Process, error) {
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.kill)
	return p, nil
}

// Exited is closed once the child has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Err is how the child ended, Wait's result (nil for exit status 0); it is
// set once Exited is closed.
func (p *Process) Err() error { return p.err }

// Pid is the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the child by its process id.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// kill sends SIGKILL by process id and waits until the child has exited.
func (p *Process) kill() {
	_ = p.cmd.Process.Kill() // ErrProcessDone if it exited already
	<-p.done
}

// tailBuffer keeps the last max bytes written to it, for a child's log in a
// failure message.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if over := len(w.b) - w.max; over > 0 {
		w.b = append(w.b[:0], w.b[over:]...)
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}
