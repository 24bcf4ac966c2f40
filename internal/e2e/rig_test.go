package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/smtptest"
	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/jiratest"
	"github.com/stairhook/stairhook/receiver/queue"
	"github.com/stairhook/stairhook/sender"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// Credentials of the test destinations. They are distinctive so that the
// leak tests can look for them in everything the receiver says.
const (
	jiraEmail    = "bot@example.com"
	jiraToken    = "jira-token-Q7xV9pLm2Kd4"
	smtpUser     = "mailer"
	smtpPassword = "smtp-pass-Zr8Wn3Tq6Yb1"
	webhookName  = "staircase"
	sinkJira     = webhookName + ".main.jira"
	sinkEmail    = webhookName + ".main.email"
	// ledgerPrefix starts the ledger's keys of the rig's webhook:
	// ledgerPrefix + event id + "/" + sink name.
	ledgerPrefix = "sink/" + webhookName + "/"
)

// rigOptions chooses how a rig's receiver is set up.
type rigOptions struct {
	// Queued runs the receiver on its queued path, with an SQLite database
	// of the test and its workers; the default is inline mode, the sinks
	// inside the request, as the AWS Lambda bootstrap runs it.
	Queued bool
	// Redis is the store URL of inline mode; empty for the memory store.
	Redis string
	// JiraTimeout is the per-request Jira timeout (default 2 s).
	JiraTimeout time.Duration
	// DeliveryTimeout bounds one delivery (default 5 s).
	DeliveryTimeout time.Duration
	// SMTP configures the SMTP test server (default: plain text, AUTH).
	SMTP smtptest.Options
	// SMTPPassword overrides the password the receiver uses.
	SMTPPassword string
	// JiraURL, when set, replaces the Jira test server in the config.
	JiraURL string
	// Jira configures the Jira test server.
	Jira jiratest.Options
	// EmailRoute and JiraRoute are extra YAML for the routes.
	JiraRoute, EmailRoute string
	// NoLedgerCheck disables the wrapping store that checks each recorded
	// sink against the destination (it cannot wrap a Redis store).
	NoLedgerCheck bool
}

// rig is a receiver server in this process, with a Jira test server and an
// SMTP test server behind it, and a sender with immediate retries.
type rig struct {
	queued bool
	t      *testing.T
	jira   *jiratest.Server
	smtp   *smtptest.Server
	srv    *receiver.Server
	url    string
	base   string // scheme://host:port of the server
	secret verify.Secret
	outbox string
	logs   *testenv.Buffer
	ledger *checkedStore
}

// rigConfig renders the receiver's YAML configuration; store is the
// store section as a YAML flow mapping.
func rigConfig(secret verify.Secret, listen, outbox, store, jiraURL string, jiraTimeout time.Duration, smtpPort int, smtpPass, jiraRoute, emailRoute string) string {
	return fmt.Sprintf(`listen: %s
store: %s
delivery: %s
outbox: %q
jira: {base_url: %q, email: %q, api_token: %q, timeout: %s}
smtp: {host: 127.0.0.1, port: %d, username: %q, password: %q, tls: none, from: "Staircase alerts <alerts@example.com>", timeout: 5s}
webhooks:
  - name: %s
    secrets: [{label: current, secret: %q}]
    tolerance: 5m
    routes:
      - name: main
        jira: {project: CS, labels: [staircase]%s}
        email: {to: [csm@example.com]%s}
`, listen, store, fastRetries, outbox, jiraURL, jiraEmail, jiraToken, jiraTimeout, smtpPort, smtpUser, smtpPass,
		webhookName, secret.Encode(), jiraRoute, emailRoute)
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	if o.JiraTimeout == 0 {
		o.JiraTimeout = 2 * time.Second
	}
	if o.DeliveryTimeout == 0 {
		o.DeliveryTimeout = 5 * time.Second
	}
	if o.SMTP.Username == "" {
		o.SMTP.Username, o.SMTP.Password = smtpUser, smtpPassword
	}
	o.SMTP.NoTLS = true
	if o.SMTPPassword == "" {
		o.SMTPPassword = smtpPassword
	}
	if o.Jira.Email == "" {
		o.Jira.Email, o.Jira.APIToken = jiraEmail, jiraToken
	}
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	r := &rig{t: t, queued: o.Queued, secret: secret, outbox: t.TempDir(), logs: &testenv.Buffer{}}
	r.jira = jiratest.NewServer(o.Jira)
	t.Cleanup(r.jira.Close)
	r.smtp = smtptest.NewServer(t, o.SMTP)

	jiraURL := r.jira.URL
	if o.JiraURL != "" {
		jiraURL = o.JiraURL
	}
	store := redisStore(o.Redis)
	if o.Queued {
		store = sqliteStore(filepath.Join(t.TempDir(), "stairhook.db"))
	}
	yaml := rigConfig(secret, "127.0.0.1:0", r.outbox, store, jiraURL, o.JiraTimeout, r.smtp.Port, o.SMTPPassword, o.JiraRoute, o.EmailRoute)
	cfg, err := receiver.ParseConfig([]byte(yaml), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	opts := receiver.ServerOptions{
		Logger:          slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		DeliveryTimeout: o.DeliveryTimeout,
		Inline:          !o.Queued,
	}
	if !o.Queued && o.Redis == "" && !o.NoLedgerCheck {
		r.ledger = &checkedStore{Store: verify.NewMemoryStore(verify.MemoryStoreOptions{}), r: r}
		opts.Store = r.ledger
	}
	r.srv, err = receiver.NewServer(cfg, opts)
	require.NoError(t, err)
	t.Cleanup(func() { r.srv.Close() })
	if o.Queued {
		// Serve, not Handler: it runs the workers too.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.srv.Serve(ctx, l) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("receiver: Serve: %v", err)
			}
		})
		r.base = "http://" + l.Addr().String()
	} else {
		hs := httptest.NewServer(r.srv.Handler())
		t.Cleanup(hs.Close)
		r.base = hs.URL
	}
	r.url = r.base + "/webhooks/" + webhookName
	return r
}

// expect checks that count() is want: at once in inline mode, where the
// answer comes after the sinks ran; on the queued path once the workers
// got there (within 30 s).
func (r *rig) expect(t testing.TB, want int, count func() int, what string) {
	t.Helper()
	if r.queued {
		deadline := time.Now().Add(30 * time.Second)
		for count() < want && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	assert.Equal(t, want, count(), what)
}

// waitDeliveredOrDead waits until each of the rig's jobs (queued mode) is
// done or a dead letter, and returns the dead letters.
func (r *rig) waitDeliveredOrDead(t testing.TB) []*queue.DeadLetter {
	t.Helper()
	db := openStore(t, r.srv.Queue().Location().SQLitePath, "")
	waitFor(t, 30*time.Second, "every job completed or dead", func() bool {
		for state := range jobStates(t, db) {
			if state != "completed" && state != "cancelled" && state != "discarded" {
				return false
			}
		}
		return true
	})
	var dead []*queue.DeadLetter
	require.NoError(t, r.srv.Queue().DeadLetters(t.Context(), "", func(d *queue.DeadLetter) error {
		dead = append(dead, d)
		return nil
	}))
	return dead
}

// endpoint is the rig's webhook as the sender sees it.
func (r *rig) endpoint() sender.Endpoint {
	return sender.Endpoint{URL: r.url, Secrets: []verify.Secret{r.secret}}
}

// noSleep skips the sender's waits: retries are immediate.
func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// newSender returns a sender with attempts immediate retries.
func newSender(attempts int) *sender.Sender {
	return sender.New(sender.Options{
		Schedule: make([]time.Duration, attempts),
		Sleep:    noSleep,
		Timeout:  30 * time.Second,
	})
}

// eventBody returns the sample of typ with the given id, its signal title made
// "<title> [<id>]" so that the Jira summary and the mail subject name the
// event.
func eventBody(t testing.TB, typ, id string, edit func(map[string]any)) []byte {
	t.Helper()
	b, err := event.Sample(typ)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	m["id"] = id
	sig := m["signal"].(map[string]any)
	sig["title"] = fmt.Sprintf("%v [%s]", sig["title"], id)
	if edit != nil {
		edit(m)
	}
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

// issuesFor counts the Jira issues created for the event id.
func issuesFor(j *jiratest.Server, id string) int {
	n := 0
	for _, is := range j.Issues() {
		if strings.Contains(is.Summary, "["+id+"]") {
			n++
		}
	}
	return n
}

// subjectOf returns the decoded Subject of a raw message.
func subjectOf(data []byte) string {
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return ""
	}
	s, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return ""
	}
	return s
}

// mailsFor counts the messages the SMTP server accepted for the event id.
func mailsFor(s *smtptest.Server, id string) int {
	n := 0
	for _, m := range s.Messages() {
		if strings.Contains(subjectOf(m.Data), "["+id+"]") {
			n++
		}
	}
	return n
}

// deadLetters reads the rig's dead-letter file (none when it does not exist).
func readDeadLetters(t testing.TB, outbox string) []receiver.DeadLetter {
	t.Helper()
	f, err := os.Open(filepath.Join(outbox, receiver.DeadLetterFile))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	dl, err := receiver.ReadDeadLetters(f)
	require.NoError(t, err)
	return dl
}

// checkedStore wraps the receiver's store and checks, each time a sink is
// recorded as done, that the destination really holds what the sink sends:
// the ledger must never record a sink that did not succeed.
type checkedStore struct {
	verify.Store
	r          *rig
	mu         sync.Mutex
	violations []string
	done       map[string]int
}

func (s *checkedStore) Done(ctx context.Context, res verify.Reservation, ttl time.Duration) error {
	if rest, ok := strings.CutPrefix(res.Key, "sink/"); ok {
		// sink/<webhook>/<event id>/<sink>: neither name holds a "/".
		_, rest, _ = strings.Cut(rest, "/")
		i := strings.LastIndexByte(rest, '/')
		id, sink := rest[:max(i, 0)], rest[i+1:]
		var have int
		switch {
		case strings.HasSuffix(sink, ".jira"):
			have = issuesFor(s.r.jira, id)
		case strings.HasSuffix(sink, ".email"):
			have = mailsFor(s.r.smtp, id)
		}
		s.mu.Lock()
		if s.done == nil {
			s.done = map[string]int{}
		}
		s.done[res.Key]++
		if have != 1 {
			s.violations = append(s.violations, fmt.Sprintf("%s recorded done while the destination holds %d for it", res.Key, have))
		}
		s.mu.Unlock()
	}
	return s.Store.Done(ctx, res, ttl)
}

// check fails the test for any sink recorded done without its effect, and
// returns how many times each sink key was recorded.
func (s *checkedStore) check(t testing.TB) map[string]int {
	t.Helper()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.violations {
		t.Errorf("ledger: %s", v)
	}
	out := map[string]int{}
	for k, v := range s.done {
		out[k] = v
	}
	return out
}

// statuses lists the status of each attempt of a report.
func statuses(rep *sender.Report) []int {
	var out []int
	for _, a := range rep.Attempts {
		out = append(out, a.Status)
	}
	return out
}

// readAllString reads r to a string, for test output.
func readAllString(r io.Reader) string {
	b, _ := io.ReadAll(r)
	return string(b)
}

// post sends one signed request for body, signed now, and returns the
// response with its body read into RespBody.
func (r *rig) post(t testing.TB, id string, body []byte) *response {
	t.Helper()
	return postSigned(t, r.url, r.secret, id, body)
}

// response is an HTTP answer with its body read.
type response struct {
	StatusCode int
	Header     http.Header
	Body       string
}

func postSigned(t testing.TB, url string, secret verify.Secret, id string, body []byte) *response {
	t.Helper()
	h := verifytest.SignedHeaders(secret, id, time.Now(), body)
	return postRaw(t, url, h, body)
}

func postRaw(t testing.TB, url string, h http.Header, body []byte) *response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return &response{StatusCode: resp.StatusCode, Header: resp.Header, Body: readAllString(resp.Body)}
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// TestMain removes the binary built by stairhookBinary, and fails the run
// when a test left the default database or outbox in the package folder:
// a rig or serve without a store of its own would share them with later
// runs, whose tests would then see old jobs.
func TestMain(m *testing.M) {
	before := defaultPaths()
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	if after := defaultPaths(); !maps.Equal(before, after) {
		fmt.Fprintf(os.Stderr, "a test wrote into the package folder (before %v, after %v): give every rig and serve a store and an outbox in t.TempDir()\n", before, after)
		code = 1
	}
	os.Exit(code)
}

// defaultPaths describes what exists of the default database and outbox
// in the working directory.
func defaultPaths() map[string]string {
	db := strings.TrimPrefix(queue.DefaultStore, "sqlite:")
	return testenv.Snapshot(db, db+"-wal", db+"-shm", db+"-journal", receiver.DefaultOutbox)
}

// stairhookBinary builds cmd/stairhook once per test run and returns its
// path.
func stairhookBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "stairhook-e2e-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "stairhook")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/stairhook/stairhook/cmd/stairhook")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build ./cmd/stairhook: %v\n%s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// testenvDialable reports whether addr accepts a TCP connection now.
func testenvDialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
