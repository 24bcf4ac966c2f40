package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver"
)

// served is a "stairhook serve" running in-process.
type served struct {
	addr           string
	stdout, stderr *testenv.Buffer
	cancel         context.CancelFunc
	done           chan int
}

// errAddrInUse means serve stopped because its address was taken.
var errAddrInUse = errors.New("address in use")

// startServe runs serve in a goroutine on a free loopback port and waits
// until it listens. A free port is only free until someone binds it, so
// when serve finds its address taken it runs again on a fresh one, up to
// three times.
func startServe(t *testing.T, environ map[string]string, args ...string) *served {
	t.Helper()
	return startServeOn(t, freeAddr(t), environ, args...)
}

// startServeOn is startServe with the addresses to try taken from next.
func startServeOn(t *testing.T, next func() string, environ map[string]string, args ...string) *served {
	t.Helper()
	var errs []error
	for range 3 {
		s, err := tryServe(t, next(), environ, args)
		if err == nil {
			return s
		}
		errs = append(errs, err)
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	t.Fatalf("serve did not start: %v", errors.Join(errs...))
	return nil
}

// tryServe runs serve once on addr and waits until it listens.
func tryServe(t *testing.T, addr string, environ map[string]string, args []string) (*served, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{addr: addr, stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		s.done <- run(ctx, append([]string{"serve", "--addr", addr}, args...), strings.NewReader(""), s.stdout, s.stderr, func(k string) (string, bool) { v, ok := environ[k]; return v, ok })
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.stdout.String(), "listening on") {
		select {
		case code := <-s.done:
			cancel()
			err := fmt.Errorf("serve on %s exited with %d: %s%s", addr, code, s.stdout, s.stderr)
			if strings.Contains(s.stderr.String(), "address already in use") {
				err = fmt.Errorf("%w: %w", errAddrInUse, err)
			}
			return nil, err
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			return nil, fmt.Errorf("serve on %s did not start: %s", addr, s.stderr)
		}
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
		}
	})
	return s, nil
}

// stop cancels serve's context, as SIGTERM does, and returns its status.
func (s *served) stop(t *testing.T) int {
	t.Helper()
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code // for the cleanup
		return code
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
		return -1
	}
}

func outboxFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	return files
}

var exportLine = regexp.MustCompile(`(?m)^export STAIRHOOK_SECRET=(whsec_\S+)$`)

func TestServeDefaultWithGeneratedSecret(t *testing.T) {
	outbox := t.TempDir()
	s := startServe(t, nil, "--outbox", outbox)
	out := s.stdout.String()
	m := exportLine.FindStringSubmatch(out)
	require.NotNil(t, m, "the generated secret is printed: %s", out)
	secret := m[1]
	assert.Equal(t, 1, strings.Count(out, secret), "printed once")
	assert.Contains(t, out, "POST http://"+s.addr+"/webhooks/staircase")
	assert.Contains(t, out, "dry run")

	r := invoke(t, map[string]string{"STAIRHOOK_SECRET": secret}, "", "send", "--url", "http://"+s.addr+"/webhooks/staircase",
		"--secret-env", "STAIRHOOK_SECRET", "--type", "churn_risk", "--test")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "attempt 1: 200 OK")
	id := regexp.MustCompile(`delivered (evt_\w+)`).FindStringSubmatch(r.stdout)
	require.NotNil(t, id)
	files := outboxFiles(t, outbox)
	assert.Contains(t, strings.Join(files, "\n"), "jira/"+id[1])
	assert.Contains(t, strings.Join(files, "\n"), "email/"+id[1])

	assert.Equal(t, exitOK, s.stop(t))
	assert.Contains(t, s.stdout.String(), "stairhook serve: stopped")
	assert.NotContains(t, s.stderr.String(), strings.TrimPrefix(secret, "whsec_"), "logs never carry the secret")
}

func TestServeSecretFromEnvironmentIsNotPrinted(t *testing.T) {
	f := newFixture(t)
	s := startServe(t, map[string]string{"STAIRHOOK_SECRET": f.text}, "--outbox", t.TempDir())
	assert.Contains(t, s.stdout.String(), "secret: from $STAIRHOOK_SECRET")
	r := invoke(t, map[string]string{"STAIRHOOK_SECRET": f.text}, "", "send", "--url", "http://"+s.addr+"/webhooks/staircase")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	// A wrong secret is refused, and nothing leaks on that path either.
	g := newFixture(t)
	r = invoke(t, nil, "", "send", "--url", "http://"+s.addr+"/webhooks/staircase", "--secret", g.text)
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stdout, "401")
	assert.Equal(t, exitOK, s.stop(t))
	all := s.stdout.String() + s.stderr.String() + r.stdout + r.stderr
	assertNoSecret(t, all, f)
	assertNoSecret(t, all, g)
}

const testConfig = `
outbox: %OUTBOX%
webhooks:
  - name: staircase
    secrets: [{label: current, secret: "${CLI_TEST_SECRET}"}]
    routes:
      - when: {types: [churn_risk]}
        jira: {project: CS, issue_type: Task}
`

func writeConfig(t *testing.T, outbox string) string {
	t.Helper()
	return writeFile(t, "stairhook.yaml", strings.ReplaceAll(testConfig, "%OUTBOX%", outbox))
}

func TestServeConfigErrors(t *testing.T) {
	f := newFixture(t)
	cfg := writeConfig(t, t.TempDir())
	r := invoke(t, map[string]string{"STAIRHOOK_SECRET": f.text}, "", "serve", "--config", cfg, "--addr", "127.0.0.1:0")
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "CLI_TEST_SECRET", "the missing variable is named")
	assertNoSecret(t, r.stdout+r.stderr, f)

	r = invoke(t, map[string]string{"STAIRHOOK_CONFIG": "/nonexistent/stairhook.yaml"}, "", "serve")
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "/nonexistent/stairhook.yaml")
}

// deadLetterFile writes records for webhook staircase to <outbox>/deadletter.jsonl.
func deadLetterFile(t *testing.T, outbox string, recs ...receiver.DeadLetter) string {
	t.Helper()
	var b strings.Builder
	for _, r := range recs {
		line, err := json.Marshal(r)
		require.NoError(t, err)
		b.Write(line)
		b.WriteByte('\n')
	}
	p := filepath.Join(outbox, receiver.DeadLetterFile)
	require.NoError(t, os.WriteFile(p, []byte(b.String()), 0o600))
	return p
}

func sampleEvent(t *testing.T, id string) json.RawMessage {
	t.Helper()
	b, err := sampleBody("churn_risk", id, "", false, time.Unix(testTS, 0))
	require.NoError(t, err)
	var c bytes.Buffer
	require.NoError(t, json.Compact(&c, b))
	return json.RawMessage(c.Bytes())
}

// TestDeadLetterReplayThroughServe replays dead letters, written as the
// server writes them, into a running serve: once per event id, signed
// with the config's secret, reaching the sinks.
func TestDeadLetterReplayThroughServe(t *testing.T) {
	f := newFixture(t)
	outbox := t.TempDir()
	cfg := writeConfig(t, outbox)
	environ := map[string]string{"CLI_TEST_SECRET": f.text}
	s := startServe(t, environ, "--config", cfg)

	when := time.Unix(testTS, 0).UTC()
	deadLetterFile(t, outbox,
		receiver.DeadLetter{Time: when, Webhook: "staircase", EventID: "evt_dl_1", Sink: "staircase.route1.jira", Error: "400 Bad Request: project CS\x1b[31m", Body: sampleEvent(t, "evt_dl_1")},
		receiver.DeadLetter{Time: when, Webhook: "staircase", EventID: "evt_dl_1", Sink: "staircase.route1.email", Error: "550 no such user", Body: sampleEvent(t, "evt_dl_1")},
		receiver.DeadLetter{Time: when, Webhook: "staircase", EventID: "evt_dl_2", Sink: "staircase.route1.jira", Error: "400", Body: sampleEvent(t, "evt_dl_2")},
	)

	r := invoke(t, environ, "", "deadletter", "list", "--config", cfg)
	require.Equal(t, exitOK, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 3)
	assert.Contains(t, lines[0], "2025-11-26T00:00:00Z  staircase  evt_dl_1  staircase.route1.jira  ")
	assert.NotContains(t, r.stdout, "\x1b", "terminal escapes from the error text are neutralised")

	base := "http://" + s.addr
	r = invoke(t, environ, "", "deadletter", "replay", "--config", cfg, "--url", base, "--dry-run")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, 2, strings.Count(r.stdout, "would POST"))
	assert.Empty(t, outboxFiles(t, filepath.Join(outbox, "jira")), "a dry run sends nothing")

	r = invoke(t, environ, "", "deadletter", "replay", "--config", cfg, "--url", base+"/")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "evt_dl_1 (webhook staircase, failed sinks staircase.route1.jira, staircase.route1.email): 200 OK")
	assert.Contains(t, r.stdout, "evt_dl_2 (webhook staircase, failed sinks staircase.route1.jira): 200 OK")
	assert.Contains(t, r.stdout, "replayed 2 of 2 event(s)")
	files := strings.Join(outboxFiles(t, outbox), "\n")
	assert.Contains(t, files, "jira/evt_dl_1")
	assert.Contains(t, files, "jira/evt_dl_2")

	assert.Equal(t, exitOK, s.stop(t))
	assertNoSecret(t, s.stdout.String()+s.stderr.String()+r.stdout+r.stderr, f)
}

func TestDeadLetterFailures(t *testing.T) {
	f := newFixture(t)
	outbox := t.TempDir()
	cfg := writeConfig(t, outbox)
	environ := map[string]string{"CLI_TEST_SECRET": f.text}

	r := invoke(t, environ, "", "deadletter", "list", "--config", cfg)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "no dead letters in")

	r = invoke(t, environ, "", "deadletter", "list", "--file", filepath.Join(outbox, "missing.jsonl"))
	assert.Equal(t, exitFail, r.code)

	rcv := newEventReceiver(t, f, 200)
	deadLetterFile(t, outbox,
		receiver.DeadLetter{Webhook: "gone", EventID: "evt_x", Sink: "gone.route1.jira", Body: sampleEvent(t, "evt_x")},
	)
	r = invoke(t, environ, "", "deadletter", "replay", "--config", cfg, "--url", rcv.srv.URL)
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stdout, `skipped: no webhook "gone" in the config`)
	events, _ := rcv.seen()
	assert.Empty(t, events)

	require.NoError(t, os.WriteFile(filepath.Join(outbox, receiver.DeadLetterFile), []byte("not json\n"), 0o600))
	r = invoke(t, environ, "", "deadletter", "replay", "--config", cfg, "--url", rcv.srv.URL)
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "line 1")

	// The receiver rejects the replay: reported with its answer, exit 1.
	other := newEventReceiver(t, newFixture(t), 200)
	deadLetterFile(t, outbox, receiver.DeadLetter{Webhook: "staircase", EventID: "evt_y", Sink: "staircase.route1.jira", Body: sampleEvent(t, "evt_y")})
	r = invoke(t, environ, "", "deadletter", "replay", "--config", cfg, "--url", other.srv.URL)
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stdout, "401 Unauthorized")
	assert.Contains(t, r.stdout, "replayed 0 of 1")
	assertNoSecret(t, r.stdout+r.stderr, f)
}

// TestServeAddressTaken: serve started on an address someone holds runs
// again on a fresh one.
func TestServeAddressTaken(t *testing.T) {
	next, tried := takenFirst(t)
	s := startServeOn(t, next, nil, "--outbox", t.TempDir())
	require.Len(t, *tried, 2, "a second address after the first was taken")
	assert.Equal(t, (*tried)[1], s.addr)
	assert.Contains(t, s.stdout.String(), "listening on "+s.addr)
	assert.Equal(t, exitOK, s.stop(t))
}

// TestConfigEmptyVariable: a ${NAME} set to "" is a value, as in the Lambda
// bootstrap and receiver.LoadConfig (an empty REDIS_URL keeps the store in
// memory); only an unset variable is an error.
func TestConfigEmptyVariable(t *testing.T) {
	f := newFixture(t)
	outbox := t.TempDir()
	cfg := writeFile(t, "stairhook.yaml", strings.ReplaceAll(testConfig, "%OUTBOX%", outbox)+`store: {redis: "${CLI_TEST_REDIS}"}`+"\n")

	r := invoke(t, map[string]string{"CLI_TEST_SECRET": f.text, "CLI_TEST_REDIS": ""}, "", "deadletter", "list", "--config", cfg)
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "no dead letters in")

	r = invoke(t, map[string]string{"CLI_TEST_SECRET": f.text}, "", "deadletter", "list", "--config", cfg)
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "CLI_TEST_REDIS is not set")
}

// TestDeadLetterBadLine: a line that is not a record is reported and
// skipped; the records around it are still listed and replayed, and the
// command exits 1.
func TestDeadLetterBadLine(t *testing.T) {
	f := newFixture(t)
	outbox := t.TempDir()
	cfg := writeConfig(t, outbox)
	environ := map[string]string{"CLI_TEST_SECRET": f.text}
	p := deadLetterFile(t, outbox,
		receiver.DeadLetter{Webhook: "staircase", EventID: "evt_a", Sink: "staircase.route1.jira", Body: sampleEvent(t, "evt_a")},
		receiver.DeadLetter{Webhook: "staircase", EventID: "evt_b", Sink: "staircase.route1.jira", Body: sampleEvent(t, "evt_b")},
	)
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	first, rest, _ := bytes.Cut(data, []byte("\n"))
	damaged := append(append(append([]byte{}, first...), "\n{\"webhook\": truncated\n"...), rest...)
	require.NoError(t, os.WriteFile(p, damaged, 0o600))

	r := invoke(t, environ, "", "deadletter", "list", "--config", cfg)
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "line 2")
	assert.Contains(t, r.stdout, "evt_a")
	assert.Contains(t, r.stdout, "evt_b")

	rcv := newEventReceiver(t, f, 200)
	r = invoke(t, environ, "", "deadletter", "replay", "--config", cfg, "--url", rcv.srv.URL)
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "line 2")
	assert.Contains(t, r.stdout, "replayed 2 of 2 event(s)")
	events, _ := rcv.seen()
	assert.Len(t, events, 2)
}
