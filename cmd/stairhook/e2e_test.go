package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
)

// TestBinaryServeSendSIGTERM builds the real binary and walks the fresh
// user's path: serve with no config and no secret (it prints one), send a
// test notification with the printed secret, find the dry-run files, then
// SIGTERM and a clean exit 0.
func TestBinaryServeSendSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	// go test puts its own GOROOT/bin first on PATH.
	goTool, err := exec.LookPath("go")
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "stairhook")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	work := t.TempDir()
	addr := testenv.Addr(testenv.FreePort(t))
	baseEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + work}
	serve := exec.Command(bin, "serve", "--addr", addr)
	serve.Dir = work // the default outbox ./stairhook-outbox lands here
	serve.Env = baseEnv
	var stdout, stderr testenv.Buffer
	serve.Stdout, serve.Stderr = &stdout, &stderr
	testenv.Start(t, serve)
	testenv.WaitTCP(t, addr, 10*time.Second)

	var secret string
	for deadline := time.Now().Add(5 * time.Second); secret == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := exportLine.FindStringSubmatch(stdout.String()); m != nil {
			secret = m[1]
		}
	}
	require.NotEmpty(t, secret, "serve prints the generated secret: %s", stdout.String())

	send := exec.Command(bin, "send", "--url", "http://"+addr+"/webhooks/staircase", "--secret-env", "STAIRHOOK_SECRET", "--type", "churn_risk", "--test")
	send.Env = append(baseEnv, "STAIRHOOK_SECRET="+secret)
	sendOut, err := send.CombinedOutput()
	require.NoError(t, err, "send: %s", sendOut)
	assert.Contains(t, string(sendOut), "attempt 1: 200 OK")
	id := regexp.MustCompile(`delivered (evt_\w+)`).FindStringSubmatch(string(sendOut))
	require.NotNil(t, id, "%s", sendOut)

	outbox := filepath.Join(work, "stairhook-outbox")
	files := outboxFiles(t, outbox)
	require.Len(t, files, 2, "one Jira request and one email: %v", files)
	for _, f := range files {
		assert.Contains(t, f, id[1])
		b, err := os.ReadFile(filepath.Join(outbox, f))
		require.NoError(t, err)
		assert.Contains(t, string(b), "TEST", "%s carries the test marker", f)
	}

	require.NoError(t, serve.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("serve exited with %d after SIGTERM: %s", exit.ExitCode(), stderr.String())
		}
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	assert.Contains(t, stdout.String(), "stairhook serve: stopped")
	assert.Equal(t, 1, strings.Count(stdout.String()+stderr.String(), secret), "the secret is printed once, never logged")
}
