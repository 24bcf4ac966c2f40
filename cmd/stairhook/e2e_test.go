package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
)

// TestBinaryServeSendSIGTERM builds the real binary and walks the fresh
// user's path: serve with no config and no secret (it prints one), send a
// test notification with the printed secret, find the dry-run files once
// the queue has worked the event, then SIGTERM and a clean exit 0.
func TestBinaryServeSendSIGTERM(t *testing.T) {
	bin := binary(t)
	work := t.TempDir()
	baseEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work}
	serve := startBinaryServe(t, bin, work, baseEnv, freeAddr(t))
	addr, stdout, stderr := serve.addr, serve.stdout, serve.stderr

	var secret string
	for deadline := time.Now().Add(5 * time.Second); secret == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := exportLine.FindStringSubmatch(stdout.String()); m != nil {
			secret = m[1]
		}
	}
	require.NotEmpty(t, secret, "serve prints the generated secret: %s", stdout.String())
	assert.Contains(t, stdout.String(), "database: sqlite:./stairhook.db (role all)\n")

	send := exec.Command(bin, "send", "--url", "http://"+addr+"/webhooks/staircase", "--secret-env", "STAIRHOOK_SECRET", "--type", "churn_risk", "--test")
	send.Env = append(baseEnv, "STAIRHOOK_SECRET="+secret)
	sendOut, err := send.CombinedOutput()
	require.NoError(t, err, "send: %s", sendOut)
	assert.Contains(t, string(sendOut), "attempt 1: 202 Accepted")
	assert.Contains(t, string(sendOut), `"status":"queued"`)
	id := regexp.MustCompile(`accepted (evt_\w+) in 1 attempt\(s\): queued`).FindStringSubmatch(string(sendOut))
	require.NotNil(t, id, "%s", sendOut)

	outbox := filepath.Join(work, "stairhook-outbox")
	var files []string
	require.True(t, eventually(func() bool { files = outboxFiles(t, outbox); return len(files) == 2 }),
		"one Jira request and one email: %v", files)
	for _, f := range files {
		assert.Contains(t, f, id[1])
		b, err := os.ReadFile(filepath.Join(outbox, f))
		require.NoError(t, err)
		assert.Contains(t, string(b), "TEST", "%s carries the test marker", f)
	}

	requireCleanSIGTERM(t, serve)
	assert.Contains(t, stdout.String(), "stairhook serve: stopped")
	assert.Equal(t, 1, strings.Count(stdout.String()+stderr.String(), secret), "the secret is printed once, never logged")
	st, err := os.Stat(filepath.Join(work, "stairhook.db"))
	require.NoError(t, err, "the default database, in the working directory")
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

// TestBinarySIGTERMKeepsQueued: what serve accepted and had not delivered
// when SIGTERM came stays in the database, and the next serve on the same
// database delivers it.
func TestBinarySIGTERMKeepsQueued(t *testing.T) {
	bin := binary(t)
	work := t.TempDir()
	f := newFixture(t)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work, "STAIRHOOK_SECRET=" + f.text}
	// An accept-only instance: the events are certainly still queued at
	// SIGTERM.
	serve := startBinaryServe(t, bin, work, env, freeAddr(t), "--role", "accept")
	ids := []string{"evt_kept_1", "evt_kept_2"}
	for _, id := range ids {
		send := exec.Command(bin, "send", "--url", "http://"+serve.addr+"/webhooks/staircase", "--body", bodyFile(t, id))
		send.Env = env
		out, err := send.CombinedOutput()
		require.NoError(t, err, "send: %s", out)
		assert.Contains(t, string(out), "attempt 1: 202 Accepted")
	}
	requireCleanSIGTERM(t, serve)
	outbox := filepath.Join(work, "stairhook-outbox")
	assert.Empty(t, outboxFiles(t, outbox), "nothing worked the queue")

	serve = startBinaryServe(t, bin, work, env, freeAddr(t))
	require.True(t, eventually(func() bool { return len(outboxFiles(t, outbox)) == 2*len(ids) }),
		"a Jira request and an email per event: %v", outboxFiles(t, outbox))
	for _, id := range ids {
		assert.True(t, hasOutboxFile(t, outbox, "jira", id), id)
		assert.True(t, hasOutboxFile(t, outbox, "email", id), id)
	}
	requireCleanSIGTERM(t, serve)
}

// requireCleanSIGTERM sends SIGTERM to serve and requires exit status 0.
func requireCleanSIGTERM(t *testing.T, serve *binaryServe) {
	t.Helper()
	require.NoError(t, serve.Signal(syscall.SIGTERM))
	select {
	case <-serve.Exited():
		err := serve.Err()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("serve exited with %d after SIGTERM: %s", exit.ExitCode(), serve.stderr)
		}
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	assert.Contains(t, serve.stdout.String(), "stairhook serve: stopped")
}

// built is the stairhook binary, built once for every test that runs it;
// TestMain removes its folder.
var built struct {
	once      sync.Once
	dir, path string
	err       error
}

// binary builds the stairhook binary, or skips with -short.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	built.once.Do(func() {
		// go test puts its own GOROOT/bin first on PATH.
		goTool, err := exec.LookPath("go")
		if err == nil {
			built.dir, err = os.MkdirTemp("", "stairhook-bin-")
		}
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(built.dir, "stairhook")
		if out, err := exec.Command(goTool, "build", "-o", built.path, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build: %w: %s", err, out)
		}
	})
	require.NoError(t, built.err)
	return built.path
}

// freeAddr returns a source of free loopback addresses.
func freeAddr(t *testing.T) func() string {
	return func() string { return testenv.Addr(testenv.FreePort(t)) }
}

// binaryServe is a `stairhook serve` child process.
type binaryServe struct {
	*testenv.Process
	addr           string
	stdout, stderr *testenv.Buffer
}

// startBinaryServe runs `bin serve` with args in dir on an address from
// next and waits until it listens. An address from freeAddr is only free until
// someone binds it, so when serve finds its address taken it is started
// again on the next, up to three times. The process is killed by its id
// when the test ends if it is still running.
func startBinaryServe(t *testing.T, bin, dir string, env []string, next func() string, args ...string) *binaryServe {
	t.Helper()
	var errs []error
	for range 3 {
		p := &binaryServe{addr: next(), stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}}
		cmd := exec.Command(bin, append([]string{"serve", "--addr", p.addr, "--admin-addr", "127.0.0.1:0"}, args...)...)
		cmd.Dir = dir // the default outbox ./stairhook-outbox and database ./stairhook.db land here
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
		var err error
		p.Process, err = testenv.StartProcess(t, cmd)
		require.NoError(t, err)
		// Only "listening on" says that serve itself holds the address.
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(p.stdout.String(), "listening on") {
			select {
			case <-p.Exited():
				errs = append(errs, fmt.Errorf("serve on %s exited at start: %v: %s", p.addr, p.Err(), p.stderr))
				if !strings.Contains(p.stderr.String(), "address already in use") {
					t.Fatalf("serve did not start: %v", errors.Join(errs...))
				}
			case <-time.After(20 * time.Millisecond):
				require.True(t, time.Now().Before(deadline), "serve did not listen on %s: %s", p.addr, p.stderr)
				continue
			}
			break
		}
		select {
		case <-p.Exited():
		default:
			return p
		}
	}
	t.Fatalf("serve did not start: %v", errors.Join(errs...))
	return nil
}

// takenFirst returns a source of addresses whose first is held by a
// listener of the test, then free ones, and the list of those it gave.
func takenFirst(t *testing.T) (next func() string, tried *[]string) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { held.Close() })
	tried = new([]string)
	return func() string {
		addr := held.Addr().String()
		if len(*tried) > 0 {
			addr = testenv.Addr(testenv.FreePort(t))
		}
		*tried = append(*tried, addr)
		return addr
	}, tried
}

// TestBinaryServeAddressTaken: the binary started on an address someone
// holds runs again on a fresh one.
func TestBinaryServeAddressTaken(t *testing.T) {
	bin := binary(t)
	next, tried := takenFirst(t)
	work := t.TempDir()
	serve := startBinaryServe(t, bin, work, []string{"HOME=" + work}, next)
	require.Len(t, *tried, 2, "a second address after the first was taken")
	assert.Equal(t, (*tried)[1], serve.addr)
	assert.Contains(t, serve.stdout.String(), "listening on "+serve.addr)
}
