package main

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver"
	"github.com/stairhook/stairhook/receiver/jiratest"
)

// deadLetterLine is one line of `deadletter list`: exactly these keys.
type deadLetterLine struct {
	Job      int64           `json:"job"`
	Time     time.Time       `json:"time"`
	Webhook  string          `json:"webhook"`
	EventID  string          `json:"event_id"`
	Sink     string          `json:"sink"`
	Attempts int             `json:"attempts"`
	Error    string          `json:"error"`
	Body     json.RawMessage `json:"body"`
}

var deadLetterKeys = []string{"job", "time", "webhook", "event_id", "sink", "attempts", "error", "body"}

// parseDeadLetters reads the JSON lines of `deadletter list`.
func parseDeadLetters(t *testing.T, out string) []deadLetterLine {
	t.Helper()
	var dls []deadLetterLine
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		var keys map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(sc.Bytes(), &keys), "line %q", sc.Text())
		got := make([]string, 0, len(keys))
		for k := range keys {
			got = append(got, k)
		}
		assert.ElementsMatch(t, deadLetterKeys, got, "the keys of %s", sc.Text())
		var d deadLetterLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &d))
		dls = append(dls, d)
	}
	require.NoError(t, sc.Err())
	return dls
}

// listDeadLetters runs `deadletter list` with args; it must succeed, and
// its count on standard error must match the lines.
func listDeadLetters(t *testing.T, environ map[string]string, args ...string) []deadLetterLine {
	t.Helper()
	r := invoke(t, environ, "", append([]string{"deadletter", "list"}, args...)...)
	require.Equal(t, exitOK, r.code, r.stderr)
	dls := parseDeadLetters(t, r.stdout)
	assert.Equal(t, fmt.Sprintf("%d dead letter(s)\n", len(dls)), r.stderr)
	return dls
}

// eventIDs lists the event ids of dead letters, in their order.
func eventIDs(dls []deadLetterLine) []string {
	ids := make([]string, len(dls))
	for i, d := range dls {
		ids[i] = d.EventID
	}
	return ids
}

func jobOf(t *testing.T, dls []deadLetterLine, eventID string) int64 {
	t.Helper()
	for _, d := range dls {
		if d.EventID == eventID {
			return d.Job
		}
	}
	t.Fatalf("no dead letter for %s in %v", eventID, eventIDs(dls))
	return 0
}

// issuesFor counts the stand-in's issues of an event; the routes of
// jiraConfig make the summary the event id.
func issuesFor(j *jiratest.Server, id string) int {
	n := 0
	for _, is := range j.Issues() {
		if is.Summary == id {
			n++
		}
	}
	return n
}

// jiraConfig has two webhooks whose routes create Jira issues on the
// stand-in, and its database in store.sqlite: the deadletter commands find
// it through --config, as an operator's would.
const jiraConfig = `
outbox: %q
store: {sqlite: %q}
jira: {base_url: %q, email: %q, api_token: "${CLI_TEST_JIRA_TOKEN}", timeout: 5s}
webhooks:
  - name: staircase
    secrets: [{label: current, secret: "${CLI_TEST_SECRET}"}]
    routes:
      - jira: {project: CS, summary: "{{.ID}}"}
  - name: other
    secrets: [{label: current, secret: "${CLI_TEST_SECRET}"}]
    routes:
      - jira: {project: OPS, summary: "{{.ID}}"}
`

// jiraRig is a Jira stand-in and a config that points at it.
type jiraRig struct {
	jira    *jiratest.Server
	cfg     string // the config file
	db      string // its store.sqlite
	outbox  string
	environ map[string]string
	secret  fixture
	token   string
}

func newJiraRig(t *testing.T) *jiraRig {
	t.Helper()
	f := newFixture(t)
	token := "jira-token-" + rand.Text()
	jira := jiratest.NewServer(jiratest.Options{APIToken: token})
	t.Cleanup(jira.Close)
	outbox := t.TempDir()
	db := filepath.Join(t.TempDir(), "stairhook.db")
	return &jiraRig{
		jira:    jira,
		cfg:     writeFile(t, "stairhook.yaml", fmt.Sprintf(jiraConfig, outbox, db, jira.URL, jira.Email)),
		db:      db,
		outbox:  outbox,
		environ: map[string]string{"CLI_TEST_SECRET": f.text, "CLI_TEST_JIRA_TOKEN": token},
		secret:  f,
		token:   token,
	}
}

// rejectNext makes the stand-in answer the next n issue creations 400, a
// rejection no retry can fix; after them it creates issues again.
func (r *jiraRig) rejectNext(n int) {
	r.jira.Inject(n, jiratest.Fault{Path: "/rest/api/3/issue", Status: http.StatusBadRequest})
}

// send posts the churn_risk sample with the given id to a webhook of s.
func (r *jiraRig) send(t *testing.T, s *served, webhook, id string) result {
	t.Helper()
	return invoke(t, r.environ, "", "send", "--url", "http://"+s.addr+"/webhooks/"+webhook,
		"--secret-env", "CLI_TEST_SECRET", "--body", bodyFile(t, id))
}

// deliveredJob waits for serve to log that a job delivered the event, and
// returns the job's number.
func deliveredJob(t *testing.T, s *served, eventID string) int64 {
	t.Helper()
	var job int64
	found := eventually(func() bool {
		for line := range strings.Lines(s.stderr.String()) {
			var l struct {
				Msg string `json:"msg"`
				Job int64  `json:"job"`
				ID  string `json:"id"`
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "delivered" && l.ID == eventID {
				job = l.Job
				return true
			}
		}
		return false
	})
	require.True(t, found, "no delivered line for %s in the log", eventID)
	return job
}

// TestDeadLetterReplayThroughServe makes real dead letters (Jira rejects
// the issues with 400), lists them, and once Jira is fixed replays them
// one by one, by webhook and all together; each replay creates its issue
// once.
func TestDeadLetterReplayThroughServe(t *testing.T) {
	rig := newJiraRig(t)
	rig.rejectNext(3)
	s := startServe(t, rig.environ, "--config", rig.cfg)
	assert.Contains(t, s.stdout.String(), "database: sqlite:"+rig.db+" (role all)\n")
	webhookOf := map[string]string{"evt_dl_1": "staircase", "evt_dl_2": "staircase", "evt_dl_3": "other"}
	for _, id := range []string{"evt_dl_1", "evt_dl_2", "evt_dl_3"} {
		r := rig.send(t, s, webhookOf[id], id)
		require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
		assert.Contains(t, r.stdout, "attempt 1: 202 Accepted", "a rejection comes after the answer")
	}
	list := func(args ...string) []deadLetterLine {
		return listDeadLetters(t, rig.environ, append([]string{"--config", rig.cfg}, args...)...)
	}
	var dls []deadLetterLine
	require.True(t, eventually(func() bool { dls = list(); return len(dls) == 3 }), "three dead letters: %v", eventIDs(dls))
	assert.ElementsMatch(t, []string{"evt_dl_1", "evt_dl_2", "evt_dl_3"}, eventIDs(dls))
	for _, d := range dls {
		assert.Positive(t, d.Job)
		assert.WithinDuration(t, time.Now(), d.Time, time.Minute, "when the job died")
		assert.Equal(t, webhookOf[d.EventID], d.Webhook)
		assert.Equal(t, webhookOf[d.EventID]+".route1.jira", d.Sink)
		assert.Equal(t, 1, d.Attempts, "a 400 is not retried")
		assert.Contains(t, d.Error, "400")
		assert.JSONEq(t, string(sampleEvent(t, d.EventID)), string(d.Body), "the event as signed")
	}
	assert.Equal(t, []string{"evt_dl_3"}, eventIDs(list("--webhook", "other")))
	assert.ElementsMatch(t, []string{"evt_dl_1", "evt_dl_2"}, eventIDs(list("--webhook", "staircase")))
	assert.Empty(t, list("--webhook", "nope"))
	assert.Empty(t, rig.jira.Issues())

	// Jira is fixed: the three rejections are used up.
	one := jobOf(t, dls, "evt_dl_1")
	r := invoke(t, rig.environ, "", "deadletter", "replay", "--config", rig.cfg, "--id", strconv.FormatInt(one, 10))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, fmt.Sprintf("replayed job %d: queued again\n", one), r.stdout)
	require.True(t, eventually(func() bool { return issuesFor(rig.jira, "evt_dl_1") == 1 }), "the replay creates the issue")
	assert.ElementsMatch(t, []string{"evt_dl_2", "evt_dl_3"}, eventIDs(list()))

	t.Run("a job that is no dead letter", func(t *testing.T) {
		for _, id := range []int64{one, deliveredJob(t, s, "evt_dl_1"), 1 << 40} {
			r := invoke(t, rig.environ, "", "deadletter", "replay", "--config", rig.cfg, "--id", strconv.FormatInt(id, 10))
			assert.Equal(t, exitFail, r.code, "job %d: %s", id, r.stdout)
			assert.Contains(t, r.stderr, "not a dead letter")
			assert.Contains(t, r.stderr, "deadletter list shows the dead letters")
			assert.Empty(t, r.stdout)
		}
	})

	r = invoke(t, rig.environ, "", "deadletter", "replay", "--config", rig.cfg, "--all", "--webhook", "staircase")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "replayed 1 dead letter(s)\n", r.stdout)
	require.True(t, eventually(func() bool { return issuesFor(rig.jira, "evt_dl_2") == 1 }))
	assert.Equal(t, []string{"evt_dl_3"}, eventIDs(list()), "the other webhook's stays")

	r = invoke(t, rig.environ, "", "deadletter", "replay", "--config", rig.cfg, "--all")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "replayed 1 dead letter(s)\n", r.stdout)
	require.True(t, eventually(func() bool { return issuesFor(rig.jira, "evt_dl_3") == 1 }))
	assert.Empty(t, list())

	r = invoke(t, rig.environ, "", "deadletter", "replay", "--config", rig.cfg, "--all")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "replayed 0 dead letter(s)\n", r.stdout)

	assert.Len(t, rig.jira.Issues(), 3, "one issue per event")
	assert.Equal(t, exitOK, s.stop(t))
	all := s.stdout.String() + s.stderr.String() + r.stdout + r.stderr
	assertNoSecret(t, all, rig.secret)
	assert.NotContains(t, all, rig.token)
}

// deadLetterFile writes records to <outbox>/deadletter.jsonl, as inline
// mode and versions before the database wrote them.
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

// TestDeadLetterImport: serve moves an older version's dead-letter file
// into the database at start, skipping (and logging) a damaged line, and
// renames it, so the next start imports nothing. The imported records are
// dead letters like any other.
func TestDeadLetterImport(t *testing.T) {
	f := newFixture(t)
	outbox := t.TempDir()
	cfg := writeConfig(t, outbox)
	store := tempStore(t)
	environ := map[string]string{"CLI_TEST_SECRET": f.text}
	when := time.Unix(testTS, 0).UTC()
	p := deadLetterFile(t, outbox,
		receiver.DeadLetter{Time: when, Webhook: "staircase", EventID: "evt_a", Sink: "staircase.route1.jira", Error: "400 Bad Request: project CS\x1b[31m", Body: sampleEvent(t, "evt_a")},
		receiver.DeadLetter{Time: when, Webhook: "staircase", EventID: "evt_b", Sink: "staircase.route1.jira", Error: "400", Body: sampleEvent(t, "evt_b")},
		receiver.DeadLetter{Time: when, Webhook: "gone", EventID: "evt_x", Sink: "gone.route1.jira", Error: "400", Body: sampleEvent(t, "evt_x")},
	)
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	first, rest, _ := strings.Cut(string(data), "\n")
	damaged := first + "\n{\"webhook\": truncated\n" + rest
	require.NoError(t, os.WriteFile(p, []byte(damaged), 0o600))

	list := func() []deadLetterLine { return listDeadLetters(t, environ, "--store", store) }
	assert.Empty(t, list(), "only serve imports")
	assert.FileExists(t, p)

	s := startServe(t, environ, "--config", cfg, "--store", store)
	assert.NoFileExists(t, p)
	imported, err := os.ReadFile(p + ".imported")
	require.NoError(t, err)
	assert.Equal(t, damaged, string(imported), "renamed as it was")
	assert.Contains(t, s.stderr.String(), "line 2", "the damaged line is logged")
	assert.Contains(t, s.stderr.String(), `"records":3`)

	dls := list()
	require.Equal(t, []string{"evt_a", "evt_b", "evt_x"}, eventIDs(dls), "in the file's order")
	assert.Equal(t, "400 Bad Request: project CS\x1b[31m", dls[0].Error, "the recorded error")
	r := invoke(t, environ, "", "deadletter", "list", "--store", store)
	assert.NotContains(t, r.stdout, "\x1b", "a terminal escape in an error is printed escaped, as JSON")
	for i, d := range dls {
		assert.False(t, d.Time.IsZero())
		assert.Zero(t, d.Attempts, "no attempt was made from the database")
		assert.JSONEq(t, string(sampleEvent(t, d.EventID)), string(d.Body))
		assert.Equal(t, []string{"staircase", "staircase", "gone"}[i], d.Webhook)
	}
	assert.Equal(t, exitOK, s.stop(t))

	// A second start finds no file: nothing is imported twice.
	s = startServe(t, environ, "--config", cfg, "--store", store)
	assert.NotContains(t, s.stderr.String(), "imported")
	assert.Equal(t, eventIDs(dls), eventIDs(list()))

	r = invoke(t, environ, "", "deadletter", "replay", "--store", store, "--id", strconv.FormatInt(dls[0].Job, 10))
	require.Equal(t, exitOK, r.code, r.stderr)
	require.True(t, eventually(func() bool { return hasOutboxFile(t, outbox, "jira", "evt_a") }), "the replay reaches the sink: %v", outboxFiles(t, outbox))

	r = invoke(t, environ, "", "deadletter", "replay", "--store", store, "--all")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "replayed 2 dead letter(s)\n", r.stdout)
	require.True(t, eventually(func() bool { return hasOutboxFile(t, outbox, "jira", "evt_b") }), "%v", outboxFiles(t, outbox))
	// The webhook of evt_x is not in the configuration: its replay dies
	// again, as a new job, saying why.
	var again []deadLetterLine
	require.True(t, eventually(func() bool {
		again = list()
		return len(again) == 1 && again[0].Job != dls[2].Job
	}), "evt_x dead again: %+v", again)
	assert.Equal(t, "evt_x", again[0].EventID)
	assert.Contains(t, again[0].Error, "no sink gone.route1.jira in webhook gone")
	assert.Equal(t, exitOK, s.stop(t))
}

// TestServeInlineDeadLetterImported walks an upgrade: inline mode answers
// a Jira rejection 422 and writes the dead-letter file; the queued server
// started on the same outbox imports it, and the replay creates the issue
// once Jira is fixed.
func TestServeInlineDeadLetterImported(t *testing.T) {
	rig := newJiraRig(t)
	rig.rejectNext(1)
	s := startServe(t, rig.environ, "--config", rig.cfg, "--inline")
	r := rig.send(t, s, "staircase", "evt_up")
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stdout, "attempt 1: 422 Unprocessable Entity")
	assert.Contains(t, r.stdout, `"reason":"jira 400"`)
	assert.FileExists(t, filepath.Join(rig.outbox, receiver.DeadLetterFile), "written before the answer")
	assert.Equal(t, exitOK, s.stop(t))
	assert.NoFileExists(t, rig.db, "inline mode has no database")

	s = startServe(t, rig.environ, "--config", rig.cfg)
	assert.NoFileExists(t, filepath.Join(rig.outbox, receiver.DeadLetterFile))
	dls := listDeadLetters(t, rig.environ, "--config", rig.cfg)
	require.Equal(t, []string{"evt_up"}, eventIDs(dls))
	assert.Equal(t, "staircase.route1.jira", dls[0].Sink)
	assert.Contains(t, dls[0].Error, "400")
	assert.NotContains(t, dls[0].Error, rig.token)

	r = invoke(t, rig.environ, "", "deadletter", "replay", "--config", rig.cfg, "--id", strconv.FormatInt(dls[0].Job, 10))
	require.Equal(t, exitOK, r.code, r.stderr)
	require.True(t, eventually(func() bool { return issuesFor(rig.jira, "evt_up") == 1 }))
	assert.Empty(t, listDeadLetters(t, rig.environ, "--config", rig.cfg))
	assert.Equal(t, exitOK, s.stop(t))
}

// TestDeadLetterFailures: the commands on an empty database, and on one
// they cannot open.
func TestDeadLetterFailures(t *testing.T) {
	store := tempStore(t)
	r := invoke(t, nil, "", "deadletter", "list", "--store", store)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Empty(t, r.stdout)
	assert.Equal(t, "0 dead letter(s)\n", r.stderr)

	r = invoke(t, nil, "", "deadletter", "replay", "--store", store, "--id", "42")
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "no job 42")
	assert.Empty(t, r.stdout)

	r = invoke(t, nil, "", "deadletter", "replay", "--store", store, "--all")
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, "replayed 0 dead letter(s)\n", r.stdout)

	// A store whose folder is a file cannot be opened: a failure, not a
	// usage error.
	notDir := "sqlite:" + filepath.Join(writeFile(t, "file", ""), "stairhook.db")
	for _, args := range [][]string{
		{"deadletter", "list", "--store", notDir},
		{"deadletter", "replay", "--all", "--store", notDir},
		{"migrate", "--store", notDir},
	} {
		r := invoke(t, nil, "", args...)
		assert.Equal(t, exitFail, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "database folder", "%v", args)
		assert.Empty(t, r.stdout, "%v", args)
	}
	for _, args := range [][]string{
		{"deadletter", "list", "--config", "/nonexistent/stairhook.yaml"},
		{"deadletter", "replay", "--all", "--config", "/nonexistent/stairhook.yaml"},
		{"migrate", "--config", "/nonexistent/stairhook.yaml"},
	} {
		r := invoke(t, nil, "", args...)
		assert.Equal(t, exitUsage, r.code, "a config that cannot be read is a usage error, as serve reports it: %v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "/nonexistent/stairhook.yaml", "%v", args)
		assert.NotContains(t, r.stderr, "--store", "%v", args)
		assert.Empty(t, r.stdout, "%v", args)
	}
}

// TestMigrate: migrate creates the schema and runs again with nothing to
// do, keeping what the database holds.
func TestMigrate(t *testing.T) {
	outbox := t.TempDir()
	deadLetterFile(t, outbox, receiver.DeadLetter{Webhook: "staircase", EventID: "evt_m", Sink: "staircase.route1.jira", Error: "400", Body: sampleEvent(t, "evt_m")})
	db := filepath.Join(t.TempDir(), "sub", "stairhook.db")
	store := "sqlite:" + db
	for range 2 {
		r := invoke(t, nil, "", "migrate", "--store", store)
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Equal(t, "migrate: "+store+" is up to date\n", r.stdout)
		assert.Empty(t, r.stderr)
	}
	st, err := os.Stat(db)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "it holds every event body")

	f := newFixture(t)
	s := startServe(t, map[string]string{"CLI_TEST_SECRET": f.text}, "--config", writeConfig(t, outbox), "--store", store)
	assert.Equal(t, exitOK, s.stop(t))
	r := invoke(t, nil, "", "migrate", "--store", store)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Equal(t, []string{"evt_m"}, eventIDs(listDeadLetters(t, nil, "--store", store)), "a second migration keeps the data")
}

// TestStoreChoice: the commands take the database from --store, else
// $STAIRHOOK_STORE, else the config's store (from --config or
// $STAIRHOOK_CONFIG).
func TestStoreChoice(t *testing.T) {
	dir := t.TempDir()
	flag, env, conf := "sqlite:"+filepath.Join(dir, "flag.db"), "sqlite:"+filepath.Join(dir, "env.db"), filepath.Join(dir, "config.db")
	cfg := writeFile(t, "stairhook.yaml", strings.ReplaceAll(testConfig, "%OUTBOX%", dir)+"store: {sqlite: \""+conf+"\"}\n")
	secret := newFixture(t).text
	tests := []struct {
		name    string
		environ map[string]string
		args    []string
		want    string
	}{
		{"--store over everything", map[string]string{"STAIRHOOK_STORE": env}, []string{"--store", flag, "--config", cfg}, flag},
		{"$STAIRHOOK_STORE over the config", map[string]string{"STAIRHOOK_STORE": env}, []string{"--config", cfg}, env},
		{"the config's store.sqlite", nil, []string{"--config", cfg}, "sqlite:" + conf},
		{"$STAIRHOOK_CONFIG's store.sqlite", map[string]string{"STAIRHOOK_CONFIG": cfg}, nil, "sqlite:" + conf},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			environ := map[string]string{"CLI_TEST_SECRET": secret}
			maps.Copy(environ, tc.environ)
			r := invoke(t, environ, "", append([]string{"migrate"}, tc.args...)...)
			require.Equal(t, exitOK, r.code, r.stderr)
			assert.Equal(t, "migrate: "+tc.want+" is up to date\n", r.stdout)
			assert.FileExists(t, strings.TrimPrefix(tc.want, "sqlite:"))
		})
	}
}

// TestPostgresUnreachable: a postgres:// store that does not answer is a
// failure (exit 1) that never shows the URL's password.
func TestPostgresUnreachable(t *testing.T) {
	store := "postgres://stairhook:pg-password-123@" + testenv.Addr(testenv.FreePort(t)) + "/stairhook?connect_timeout=5"
	for _, args := range [][]string{
		{"migrate", "--store", store},
		{"deadletter", "list", "--store", store},
		{"deadletter", "replay", "--all", "--store", store},
	} {
		r := invoke(t, nil, "", args...)
		assert.Equal(t, exitFail, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "xxxxx", "%v: the location is shown redacted", args)
		assert.NotContains(t, r.stdout+r.stderr, "pg-password-123", "%v", args)
	}
}
