package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to read a Postgres store
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, to read an SQLite store

	"github.com/stairhook/stairhook/internal/smtptest"
	"github.com/stairhook/stairhook/receiver/jiratest"
	"github.com/stairhook/stairhook/sender"
	"github.com/stairhook/stairhook/verify"
)

// serveStack is what a test of the `stairhook serve` binary runs it
// against: the Jira test server behind a jiraFront, the SMTP test server,
// and the webhook's secret.
type serveStack struct {
	bin    string
	jira   *jiratest.Server
	front  *jiraFront
	smtp   *smtptest.Server
	secret verify.Secret
}

// newServeStack starts the destinations for one test. The Jira test server
// skips the ADF schema: these tests count issues, TestServeEndToEnd checks
// their descriptions.
func newServeStack(t testing.TB) *serveStack {
	t.Helper()
	st := &serveStack{bin: stairhookBinary(t)}
	st.jira = jiratest.NewServer(jiratest.Options{Email: jiraEmail, APIToken: jiraToken, SkipSchema: true})
	t.Cleanup(st.jira.Close)
	st.front = newJiraFront(t, st.jira.URL)
	st.smtp = smtptest.NewServer(t, smtptest.Options{Username: smtpUser, Password: smtpPassword, NoTLS: true})
	var err error
	st.secret, err = verify.NewSecret()
	require.NoError(t, err)
	return st
}

// options fills in the destinations of the stack: Jira through its front,
// SMTP on its test server.
func (st *serveStack) options(o serveOptions) serveOptions {
	o.JiraURL = st.front.URL
	o.SMTPHost, o.SMTPPort = "127.0.0.1", st.smtp.Port
	return o
}

// endpoint is the webhook of proc as the sender sees it.
func (st *serveStack) endpoint(proc *serveProc) sender.Endpoint {
	return sender.Endpoint{URL: "http://" + proc.addr + "/webhooks/" + webhookName, Secrets: []verify.Secret{st.secret}}
}

// delivered reports whether every id has at least one issue and one email,
// and lists those that have more than one of either.
func (st *serveStack) delivered(ids []string) (all bool, extra []string) {
	issues, mails := st.counts()
	all = true
	for _, id := range ids {
		if issues[id] == 0 || mails[id] == 0 {
			all = false
		}
		if issues[id] > 1 || mails[id] > 1 {
			extra = append(extra, fmt.Sprintf("%s: %d issues, %d emails", id, issues[id], mails[id]))
		}
	}
	return all, extra
}

// counts returns the issues and emails of each event id.
func (st *serveStack) counts() (issues, mails map[string]int) {
	var summaries, subjects []string
	for _, is := range st.jira.Issues() {
		summaries = append(summaries, is.Summary)
	}
	for _, m := range st.smtp.Messages() {
		subjects = append(subjects, subjectOf(m.Data))
	}
	return countByID(summaries), countByID(subjects)
}

// checkExactlyOnce fails the test for every id without exactly one issue
// and one email, naming at most 20 of them.
func (st *serveStack) checkExactlyOnce(t testing.TB, ids []string) {
	t.Helper()
	issues, mails := st.counts()
	bad := 0
	for _, id := range ids {
		if issues[id] != 1 || mails[id] != 1 {
			bad++
			if bad <= 20 {
				t.Errorf("%s: %d issues, %d emails, want 1 each", id, issues[id], mails[id])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d events not delivered exactly once", bad, len(ids))
	}
}

// waitDelivered waits until every id has an issue and an email.
func (st *serveStack) waitDelivered(t testing.TB, ids []string, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("an issue and an email for each of %d events", len(ids)), func() bool {
		all, _ := st.delivered(ids)
		return all
	})
}

// countByID counts the "[id]" markers at the end of each string: the
// Jira summary and the mail subject name the event so.
func countByID(ss []string) map[string]int {
	out := map[string]int{}
	for _, s := range ss {
		if id := bracketID(s); id != "" {
			out[id]++
		}
	}
	return out
}

// bracketID returns the last "[id]" marker of s, or "".
func bracketID(s string) string {
	i := strings.LastIndex(s, "[")
	j := strings.LastIndex(s, "]")
	if i >= 0 && j > i {
		return s[i+1 : j]
	}
	return ""
}

// waitFor polls cond every 50 ms until it holds, failing the test after
// timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitIssues waits until Jira holds n issues for the event id.
func waitIssues(t testing.TB, j *jiratest.Server, id string, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("%d issue(s) for %s", n, id), func() bool { return issuesFor(j, id) >= n })
}

// patientSender retries every retryable answer and transport error
// quickly, for up to about a minute and a half: 0, 50, 100, 200 ms, then
// every 500 ms. A Retry-After from the receiver is cut to 500 ms too, so
// the tests see many attempts while a fault lasts.
func patientSender(onAttempt func(sender.Attempt)) *sender.Sender {
	schedule := []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	for len(schedule) < 180 {
		schedule = append(schedule, 500*time.Millisecond)
	}
	return sender.New(sender.Options{
		Schedule: schedule, Sleep: shortSleep, Timeout: 30 * time.Second, OnAttempt: onAttempt,
	})
}

// shortSleep is a sender's Sleep that waits at most 500 ms.
func shortSleep(ctx context.Context, d time.Duration) error {
	return sender.Sleep(ctx, min(d, 500*time.Millisecond))
}

// jiraFront is the Jira site the receiver is configured with: a reverse
// proxy to the Jira test server that records when each request arrived
// and how it was answered, and can hold creates or answer for the test
// server during an outage. A reset from the test server is passed on as a
// reset.
type jiraFront struct {
	URL string

	mu          sync.Mutex
	arrived     map[string]int // by path
	hits        []jiraHit
	createDelay time.Duration
	outageUntil time.Time
	outageCode  int
}

// jiraHit is one request as the front saw it.
type jiraHit struct {
	Path     string
	Arrived  time.Time
	Answered time.Time
	Status   int // 0: the connection was reset or the client gave up
	Header   http.Header
}

func newJiraFront(t testing.TB, target string) *jiraFront {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	f := &jiraFront{arrived: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { resetConn(w) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.serve(w, r, rp)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *jiraFront) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	hit := jiraHit{Path: r.URL.Path, Arrived: time.Now()}
	f.mu.Lock()
	f.arrived[hit.Path]++
	delay := f.createDelay
	outage := hit.Arrived.Before(f.outageUntil)
	code := f.outageCode
	f.mu.Unlock()
	rec := &statusRecorder{ResponseWriter: w}
	switch {
	case outage:
		rec.Header().Set("Content-Type", "application/json")
		rec.WriteHeader(code)
		_, _ = io.WriteString(rec, `{"errorMessages":["outage (jiraFront)"],"errors":{}}`)
	case delay > 0 && r.Method == http.MethodPost && r.URL.Path == jiraIssuePath:
		select {
		case <-time.After(delay):
			next.ServeHTTP(rec, r)
		case <-r.Context().Done():
		}
	default:
		next.ServeHTTP(rec, r)
	}
	hit.Answered, hit.Status, hit.Header = time.Now(), rec.status, rec.Header().Clone()
	f.mu.Lock()
	f.hits = append(f.hits, hit)
	f.mu.Unlock()
}

// delayCreates holds every create request for d before passing it on.
func (f *jiraFront) delayCreates(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.createDelay = d
}

// outage answers every request with status, without passing it on, for d
// from now, and returns when it ends.
func (f *jiraFront) outage(status int, d time.Duration) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outageUntil, f.outageCode = time.Now().Add(d), status
	return f.outageUntil
}

// arrivals counts the requests that reached path so far, answered or not.
func (f *jiraFront) arrivals(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.arrived[path]
}

// log returns the requests answered so far, in the order they were
// answered.
func (f *jiraFront) log() []jiraHit {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]jiraHit(nil), f.hits...)
}

// statusRecorder remembers the status a handler wrote. It passes Hijack
// through for resetConn.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// resetConn drops the client's connection with a TCP RST, as the Jira test
// server's Reset fault does.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// logLine is one JSON line of serve's log.
type logLine map[string]any

// logLines returns the lines of serve's JSON log whose msg is msg.
func logLines(text, msg string) []logLine {
	var out []logLine
	for line := range strings.Lines(text) {
		var l logLine
		if json.Unmarshal([]byte(line), &l) == nil && l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

// openStore opens a serve database for reading: an SQLite path or a
// Postgres URL.
func openStore(t testing.TB, sqlitePath, postgresURL string) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if postgresURL != "" {
		db, err = sql.Open("pgx", postgresURL)
	} else {
		db, err = sql.Open("sqlite", sqlitePath+"?_pragma=busy_timeout(10000)")
	}
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// jobStates counts River's jobs by state.
func jobStates(t testing.TB, db *sql.DB) map[string]int {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT state, COUNT(*) FROM river_job GROUP BY state")
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var state string
		var n int
		require.NoError(t, rows.Scan(&state, &n))
		out[state] = n
	}
	require.NoError(t, rows.Err())
	return out
}

// waitJobsCompleted waits until every job of the database is completed:
// none waiting, running or dead. It returns the final counts.
func waitJobsCompleted(t testing.TB, db *sql.DB, want int, timeout time.Duration) map[string]int {
	t.Helper()
	var states map[string]int
	deadline := time.Now().Add(timeout)
	for {
		states = jobStates(t, db)
		if states["completed"] == want && len(states) == 1 {
			return states
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs by state after %v: %v, want %d completed and nothing else", timeout, states, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jiraLines returns the log lines msg of the jira sink.
func jiraLines(proc *serveProc, msg string) []logLine {
	var out []logLine
	for _, l := range logLines(proc.stderr.String(), msg) {
		if l["sink"] == sinkJira {
			out = append(out, l)
		}
	}
	return out
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
