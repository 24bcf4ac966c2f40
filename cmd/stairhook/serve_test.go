package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
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

// tryServe runs serve once on addr and waits until it serves HTTP.
func tryServe(t *testing.T, addr string, environ map[string]string, args []string) (*served, error) {
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{addr: addr, stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		s.done <- run(ctx, append([]string{"serve", "--addr", addr, "--admin-addr", "127.0.0.1:0"}, args...), strings.NewReader(""), s.stdout, s.stderr, func(k string) (string, bool) { v, ok := environ[k]; return v, ok })
	}()
	// Only "listening on" says that serve itself holds the address; the
	// rest of what it prints at start (the database, the secret) comes
	// before it serves HTTP, so it is all there once /healthz answers.
	serving := func() bool {
		if !strings.Contains(s.stdout.String(), "listening on") {
			return false
		}
		resp, err := healthClient.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}
	deadline := time.Now().Add(10 * time.Second)
	for !serving() {
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

// healthClient asks a starting serve for /healthz.
var healthClient = &http.Client{Timeout: time.Second}

// stop cancels serve's context, as SIGTERM does, and returns its status.
// A server with workers is first left to start them: serve says it
// listens before River's Start has run, and a SIGTERM in between makes
// Start fail with the cancelled context and serve exit 1.
func (s *served) stop(t *testing.T) int {
	t.Helper()
	if out := s.stdout.String(); strings.Contains(out, "(role all)") || strings.Contains(out, "(role work)") {
		require.True(t, eventually(func() bool { return strings.Contains(s.stderr.String(), `"msg":"River client started"`) }),
			"the workers did not start: %s", s.stderr)
	}
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code // for the cleanup
		if code != exitOK {
			t.Logf("serve exited with %d:\n%s%s", code, s.stdout, s.stderr)
		}
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

// waitTimeout bounds every wait for the queue's workers.
const waitTimeout = 15 * time.Second

// eventually polls cond until it holds or waitTimeout passes, and reports
// whether it held. The queued server works its jobs after its 202: a test
// waits for their effect, never for a fixed time.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(waitTimeout); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// tempStore is a --store naming a fresh SQLite file in a folder of t, so no
// test leaves a database in the package folder (TestMain checks).
func tempStore(t *testing.T) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "stairhook.db")
}

// hasOutboxFile reports whether the outbox holds a dry-run file of the
// event for the kind of sink ("jira" or "email").
func hasOutboxFile(t *testing.T, outbox, kind, id string) bool {
	for _, f := range outboxFiles(t, outbox) {
		if strings.HasPrefix(f, kind+"/"+id+"-") {
			return true
		}
	}
	return false
}

// bodyFile writes a churn_risk sample with the given id, for send --body.
func bodyFile(t *testing.T, id string) string {
	t.Helper()
	return writeFile(t, id+".json", string(sampleEvent(t, id)))
}

func sampleEvent(t *testing.T, id string) json.RawMessage {
	t.Helper()
	b, err := sampleBody("churn_risk", id, "", false, time.Unix(testTS, 0))
	require.NoError(t, err)
	var c bytes.Buffer
	require.NoError(t, json.Compact(&c, b))
	return json.RawMessage(c.Bytes())
}

var exportLine = regexp.MustCompile(`(?m)^export STAIRHOOK_SECRET=(whsec_\S+)$`)

func TestServeDefaultWithGeneratedSecret(t *testing.T) {
	outbox := t.TempDir()
	store := tempStore(t)
	s := startServe(t, nil, "--outbox", outbox, "--store", store)
	out := s.stdout.String()
	m := exportLine.FindStringSubmatch(out)
	require.NotNil(t, m, "the generated secret is printed: %s", out)
	secret := m[1]
	assert.Equal(t, 1, strings.Count(out, secret), "printed once")
	assert.Contains(t, out, "POST http://"+s.addr+"/webhooks/staircase")
	assert.Contains(t, out, "dry run")
	assert.Contains(t, out, "database: "+store+" (role all)\n")

	environ := map[string]string{"STAIRHOOK_SECRET": secret}
	url := "http://" + s.addr + "/webhooks/staircase"
	r := invoke(t, environ, "", "send", "--url", url, "--secret-env", "STAIRHOOK_SECRET", "--type", "churn_risk", "--test")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "attempt 1: 202 Accepted")
	id := regexp.MustCompile(`POST \S+ id (evt_\w+)`).FindStringSubmatch(r.stdout)
	require.NotNil(t, id, r.stdout)
	assert.Contains(t, r.stdout, `{"status":"queued","id":"`+id[1]+`","sinks":["staircase.jira.jira","staircase.email.email"]}`)
	assert.Contains(t, r.stdout, "accepted "+id[1]+" in 1 attempt(s): queued by the receiver for delivery")
	assert.NotContains(t, r.stdout, "delivered", "a 202 is not a delivery yet")
	// The sinks run after the answer.
	require.True(t, eventually(func() bool {
		return hasOutboxFile(t, outbox, "jira", id[1]) && hasOutboxFile(t, outbox, "email", id[1])
	}), "the dry-run files of %s: %v", id[1], outboxFiles(t, outbox))

	t.Run("redelivery is a duplicate", func(t *testing.T) {
		body := bodyFile(t, "evt_twice")
		r := invoke(t, environ, "", "send", "--url", url, "--body", body)
		require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
		assert.Contains(t, r.stdout, "attempt 1: 202 Accepted")
		r = invoke(t, environ, "", "send", "--url", url, "--body", body)
		require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
		assert.Contains(t, r.stdout, "attempt 1: 200 OK")
		assert.Contains(t, r.stdout, "delivered evt_twice in 1 attempt(s) (duplicate: already processed)")
	})

	assert.Equal(t, exitOK, s.stop(t))
	assert.Contains(t, s.stdout.String(), "stairhook serve: stopped")
	assert.NotContains(t, s.stderr.String(), strings.TrimPrefix(secret, "whsec_"), "logs never carry the secret")
}

func TestServeSecretFromEnvironmentIsNotPrinted(t *testing.T) {
	f := newFixture(t)
	s := startServe(t, map[string]string{"STAIRHOOK_SECRET": f.text}, "--outbox", t.TempDir(), "--store", tempStore(t))
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
	// A bad config is a usage error (2), as the README defines them, not a
	// failed check or delivery (1).
	r := invoke(t, map[string]string{"STAIRHOOK_SECRET": f.text}, "", "serve", "--config", cfg, "--addr", "127.0.0.1:0")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "CLI_TEST_SECRET", "the missing variable is named")
	assert.Contains(t, r.stderr, "Run 'stairhook serve --help' for usage.")
	assertNoSecret(t, r.stdout+r.stderr, f)

	r = invoke(t, map[string]string{"STAIRHOOK_CONFIG": "/nonexistent/stairhook.yaml"}, "", "serve")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "/nonexistent/stairhook.yaml")
}

// TestServeRefusesRedisStore: store.redis is inline mode's; the queued
// server refuses it at start, whatever names its database, before it
// creates one.
func TestServeRefusesRedisStore(t *testing.T) {
	f := newFixture(t)
	db := filepath.Join(t.TempDir(), "stairhook.db")
	cfg := writeFile(t, "stairhook.yaml", strings.ReplaceAll(testConfig, "%OUTBOX%", t.TempDir())+
		"store: {sqlite: \""+db+"\", redis: \"redis://127.0.0.1:6379/0\"}\n")
	store := "sqlite:" + db
	for _, tc := range []struct {
		name    string
		args    []string
		environ map[string]string
	}{
		{"store from the config", nil, nil},
		{"--store", []string{"--store", store}, nil},
		{"$STAIRHOOK_STORE", nil, map[string]string{"STAIRHOOK_STORE": store}},
		{"--role accept", []string{"--role", "accept"}, nil},
		{"--role work", []string{"--role", "work"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			environ := map[string]string{"CLI_TEST_SECRET": f.text}
			maps.Copy(environ, tc.environ)
			r := invoke(t, environ, "", append([]string{"serve", "--config", cfg, "--addr", "127.0.0.1:0"}, tc.args...)...)
			assert.Equal(t, exitUsage, r.code, "a config this server cannot use: %s", r.stdout+r.stderr)
			assert.Contains(t, r.stderr, "store.redis")
			assert.Contains(t, r.stderr, "inline mode")
			assert.NotContains(t, r.stdout, "listening on")
			assert.NoFileExists(t, db, "refused before the database is created")
		})
	}
}

// TestServeInline: --inline is the synchronous mode of the Lambda
// bootstrap: the sinks have run when the answer is 200, and there is no
// database.
func TestServeInline(t *testing.T) {
	f := newFixture(t)
	environ := map[string]string{"CLI_TEST_SECRET": f.text}
	// No --store: with --inline it is a usage error. The config's
	// store.sqlite names a file inline mode must not create.
	run := func(t *testing.T, cfg, outbox, db string) {
		s := startServe(t, environ, "--config", cfg, "--inline")
		assert.NotContains(t, s.stdout.String(), "database:")
		url := "http://" + s.addr + "/webhooks/staircase"
		body := bodyFile(t, "evt_inline")
		r := invoke(t, environ, "", "send", "--url", url, "--secret-env", "CLI_TEST_SECRET", "--body", body)
		require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
		assert.Contains(t, r.stdout, "attempt 1: 200 OK")
		assert.Contains(t, r.stdout, `"outcome":"delivered"`)
		assert.True(t, hasOutboxFile(t, outbox, "jira", "evt_inline"), "written before the answer: %v", outboxFiles(t, outbox))

		r = invoke(t, environ, "", "send", "--url", url, "--secret-env", "CLI_TEST_SECRET", "--body", body)
		require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
		assert.Contains(t, r.stdout, "delivered evt_inline in 1 attempt(s) (duplicate: already processed)")

		assert.Equal(t, exitOK, s.stop(t))
		assert.NoFileExists(t, db, "inline mode has no database")
	}
	t.Run("ids in memory", func(t *testing.T) {
		outbox, db := t.TempDir(), filepath.Join(t.TempDir(), "stairhook.db")
		run(t, writeFile(t, "stairhook.yaml", strings.ReplaceAll(testConfig, "%OUTBOX%", outbox)+"store: {sqlite: \""+db+"\"}\n"), outbox, db)
	})
	t.Run("ids in store.redis", func(t *testing.T) {
		rds := testenv.StartRedis(t)
		outbox, db := t.TempDir(), filepath.Join(t.TempDir(), "stairhook.db")
		run(t, writeFile(t, "stairhook.yaml", strings.ReplaceAll(testConfig, "%OUTBOX%", outbox)+"store: {sqlite: \""+db+"\", redis: \""+rds.URL()+"\"}\n"), outbox, db)
	})
}

// TestServeRoles: an accept-only instance records events without working
// them; a work-only instance on the same database delivers them and
// answers webhooks 503.
func TestServeRoles(t *testing.T) {
	f := newFixture(t)
	outbox := t.TempDir()
	store := tempStore(t)
	environ := map[string]string{"STAIRHOOK_SECRET": f.text}
	accept := startServe(t, environ, "--outbox", outbox, "--store", store, "--role", "accept")
	assert.Contains(t, accept.stdout.String(), "database: "+store+" (role accept)\n")
	r := invoke(t, environ, "", "send", "--url", "http://"+accept.addr+"/webhooks/staircase", "--body", bodyFile(t, "evt_roles"))
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	assert.Contains(t, r.stdout, "attempt 1: 202 Accepted")
	assert.Empty(t, outboxFiles(t, outbox), "no instance works the queue yet")

	work := startServe(t, environ, "--outbox", outbox, "--store", store, "--role", "work")
	assert.Contains(t, work.stdout.String(), "database: "+store+" (role work)\n")
	require.True(t, eventually(func() bool {
		return hasOutboxFile(t, outbox, "jira", "evt_roles") && hasOutboxFile(t, outbox, "email", "evt_roles")
	}), "the worker delivers what the other instance accepted: %v", outboxFiles(t, outbox))

	r = invoke(t, environ, "", "send", "--url", "http://"+work.addr+"/webhooks/staircase")
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stdout, "attempt 1: 503 Service Unavailable")
	assert.Contains(t, r.stdout, "not_accepting")

	assert.Equal(t, exitOK, accept.stop(t))
	assert.Equal(t, exitOK, work.stop(t))
}

// TestServeAddressTaken: serve started on an address someone holds runs
// again on a fresh one.
func TestServeAddressTaken(t *testing.T) {
	next, tried := takenFirst(t)
	s := startServeOn(t, next, nil, "--outbox", t.TempDir(), "--store", tempStore(t))
	require.Len(t, *tried, 2, "a second address after the first was taken")
	assert.Equal(t, (*tried)[1], s.addr)
	assert.Contains(t, s.stdout.String(), "listening on "+s.addr)
	assert.Equal(t, exitOK, s.stop(t))
}

// TestConfigEmptyVariable: a ${NAME} set to "" is a value, as in the Lambda
// bootstrap and receiver.LoadConfig (an empty REDIS_URL keeps inline mode's
// ids in memory, and the queued server does not take it for a store.redis
// to refuse); only an unset variable is an error.
func TestConfigEmptyVariable(t *testing.T) {
	f := newFixture(t)
	db := filepath.Join(t.TempDir(), "stairhook.db")
	cfg := writeFile(t, "stairhook.yaml", strings.ReplaceAll(testConfig, "%OUTBOX%", t.TempDir())+
		`store: {sqlite: "`+db+`", redis: "${CLI_TEST_REDIS}"}`+"\n")
	environ := map[string]string{"CLI_TEST_SECRET": f.text, "CLI_TEST_REDIS": ""}

	r := invoke(t, environ, "", "deadletter", "list", "--config", cfg)
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "0 dead letter(s)\n", r.stderr)
	assert.FileExists(t, db, "the config's store.sqlite")

	s := startServe(t, environ, "--config", cfg)
	assert.Contains(t, s.stdout.String(), "database: sqlite:"+db+" (role all)\n")
	assert.Equal(t, exitOK, s.stop(t))

	delete(environ, "CLI_TEST_REDIS")
	r = invoke(t, environ, "", "deadletter", "list", "--config", cfg)
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "CLI_TEST_REDIS is not set")
}
