package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/mailpit"
	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/jiratest"
	"github.com/stairhook/stairhook/sender"
	"github.com/stairhook/stairhook/verify"
)

// serveProc is a `stairhook serve` child process.
type serveProc struct {
	*testenv.Process
	bin    string
	config string
	addr   string
	args   []string
	env    []string
	stdout *testenv.Buffer
	stderr *testenv.Buffer
}

// errAddrInUse means serve exited because its address was taken.
var errAddrInUse = errors.New("address in use")

// startServe runs `stairhook serve --config FILE args…` on a free loopback
// port with the config file that config writes for that address and env
// added to the environment, and waits until it listens. A free port is
// only free until someone binds it, so when serve finds its port taken it
// is started again on a new one, up to three times. testenv.StartServer
// does the same for other servers, but it waits for the child itself, and
// these tests need serve's exit status after SIGTERM.
func startServe(t testing.TB, bin string, config func(addr string) string, args []string, env ...string) *serveProc {
	t.Helper()
	return startServeOn(t, func() string { return testenv.Addr(testenv.FreePort(t)) }, bin, config, args, env...)
}

// startServeOn is startServe with the addresses to try taken from next.
func startServeOn(t testing.TB, next func() string, bin string, config func(addr string) string, args []string, env ...string) *serveProc {
	t.Helper()
	var errs []error
	for range 3 {
		addr := next()
		p, err := tryServe(t, bin, config(addr), addr, args, env)
		if err == nil {
			return p
		}
		errs = append(errs, err)
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	t.Fatalf("stairhook serve did not start: %v", errors.Join(errs...))
	return nil
}

// restart starts serve again with the same config and flags, so on the
// same address and database, once p has exited. The address can be
// briefly unavailable (a client's connection may hold it as its local
// port), so a taken address is tried again for a few seconds.
func (p *serveProc) restart(t testing.TB) *serveProc {
	t.Helper()
	<-p.Exited()
	deadline := time.Now().Add(5 * time.Second)
	for {
		q, err := tryServe(t, p.bin, p.config, p.addr, p.args, p.env)
		if err == nil {
			return q
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			t.Fatalf("stairhook serve did not start again on %s: %v", p.addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tryServe runs serve once and waits until it has bound addr (it says
// "listening on") and accepts connections. It kills the process by its id
// when the test ends if it is still running.
func tryServe(t testing.TB, bin, config, addr string, args, env []string) (*serveProc, error) {
	p := &serveProc{bin: bin, config: config, addr: addr, args: args, env: env, stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}}
	// The admin listener on a port of its own: tests run several serves.
	cmd := exec.Command(bin, append([]string{"serve", "--config", config, "--admin-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	var err error
	if p.Process, err = testenv.StartProcess(t, cmd); err != nil {
		return nil, err
	}
	// Only "listening on" says that serve itself holds addr: another
	// process on it would answer a dial too.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.stdout.String(), "listening on") || !testenvDialable(addr) {
		select {
		case <-p.Exited():
			err := fmt.Errorf("stairhook serve on %s exited at start: %v\nstdout: %s\nstderr: %s", addr, p.Err(), p.stdout, p.stderr)
			if strings.Contains(p.stderr.String(), "address already in use") {
				err = fmt.Errorf("%w: %w", errAddrInUse, err)
			}
			return nil, err
		default:
		}
		if time.Now().After(deadline) {
			_ = p.Signal(os.Kill)
			return nil, fmt.Errorf("stairhook serve did not listen on %s\nstderr: %s", addr, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p, nil
}

// stop sends SIGTERM and waits for the exit, returning its error (nil for
// exit code 0).
func (p *serveProc) stop(t testing.TB, timeout time.Duration) error {
	t.Helper()
	require.NoError(t, p.Signal(syscall.SIGTERM))
	select {
	case <-p.Exited():
		return p.Err()
	case <-time.After(timeout):
		t.Fatalf("stairhook serve did not exit within %v of SIGTERM\nstderr: %s", timeout, p.stderr)
		return nil
	}
}

// serveOptions describes a stairhook serve configuration: one webhook
// whose route sends every type to Jira and email, its secret from
// ${E2E_WEBHOOK_SECRET}.
type serveOptions struct {
	// Store is the store section as a YAML flow mapping, such as
	// sqliteStore(path); empty: an SQLite file in a folder of the test.
	Store string
	// Outbox is the outbox folder; empty: a folder of the test.
	Outbox string
	// JiraURL is the Jira site; JiraTimeout bounds one request (default
	// 5 s).
	JiraURL     string
	JiraTimeout time.Duration
	// SMTPHost and SMTPPort locate the mail server (no TLS, AUTH PLAIN).
	SMTPHost string
	SMTPPort int
	// Delivery is the delivery section as a YAML flow mapping; empty for
	// the defaults.
	Delivery string
	// Tolerance is the webhook's; zero for the default (5 minutes).
	Tolerance time.Duration
	// Args are flags of serve after --config, such as --inline.
	Args []string
}

func sqliteStore(path string) string  { return fmt.Sprintf("{sqlite: %q}", path) }
func postgresStore(url string) string { return fmt.Sprintf("{postgres: %q}", url) }
func redisStore(url string) string    { return fmt.Sprintf("{redis: %q}", url) }

// fastRetries is a delivery section whose retries come within a second,
// so that a fault clears within a test's patience.
const fastRetries = "{first_retry: 200ms, max_retry: 1s}"

// config returns the function startServe calls with each address it
// tries: it writes the config file for that address and returns its path.
func (o serveOptions) config(t testing.TB) func(addr string) string {
	t.Helper()
	if o.Store == "" {
		o.Store = sqliteStore(filepath.Join(t.TempDir(), "stairhook.db"))
	}
	if o.Outbox == "" {
		o.Outbox = t.TempDir()
	}
	if o.JiraTimeout == 0 {
		o.JiraTimeout = 5 * time.Second
	}
	delivery := ""
	if o.Delivery != "" {
		delivery = "delivery: " + o.Delivery + "\n"
	}
	tolerance := ""
	if o.Tolerance != 0 {
		tolerance = "\n    tolerance: " + o.Tolerance.String()
	}
	dir := t.TempDir()
	return func(addr string) string {
		cfg := fmt.Sprintf(`listen: %s
store: %s
outbox: %q
%sjira: {base_url: %q, email: %q, api_token: "${E2E_JIRA_TOKEN}", timeout: %s}
smtp: {host: %s, port: %d, username: %q, password: "${E2E_SMTP_PASSWORD}", tls: none, from: "Staircase alerts <alerts@example.com>", timeout: 10s}
webhooks:
  - name: %s
    secrets: [{label: current, secret: "${E2E_WEBHOOK_SECRET}"}]%s
    routes:
      - name: main
        jira: {project: CS, labels: [staircase], priorities: {high: High, critical: Highest}}
        email: {to: [csm@example.com], cc: [team@example.com]}
`, addr, o.Store, o.Outbox, delivery, o.JiraURL, jiraEmail, o.JiraTimeout, o.SMTPHost, o.SMTPPort, smtpUser, webhookName, tolerance)
		path := filepath.Join(dir, "config.yaml")
		require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
		return path
	}
}

// start runs serve with this configuration (see startServe).
func (o serveOptions) start(t testing.TB, bin string, secret verify.Secret) *serveProc {
	t.Helper()
	return startServe(t, bin, o.config(t), o.Args, serveEnv(secret)...)
}

func serveEnv(secret verify.Secret) []string {
	return []string{
		"E2E_WEBHOOK_SECRET=" + secret.Encode(),
		"E2E_JIRA_TOKEN=" + jiraToken,
		"E2E_SMTP_PASSWORD=" + smtpPassword,
		"STAIRHOOK_CONFIG=",
		"STAIRHOOK_STORE=",
	}
}

// adfSchema returns the ADF schema file named by STAIRHOOK_ADF_SCHEMA, or
// skips (fails under STAIRHOOK_E2E) when it is not there.
func adfSchema(t testing.TB) string {
	t.Helper()
	p := os.Getenv("STAIRHOOK_ADF_SCHEMA")
	if p == "" {
		testenv.Missing(t, "the ADF JSON Schema (STAIRHOOK_ADF_SCHEMA)", "npm pack @atlaskit/adf-schema@57.7.22 and set STAIRHOOK_ADF_SCHEMA to package/json-schema/v1/full.json")
	}
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(t, "the ADF JSON Schema at "+p, "npm pack @atlaskit/adf-schema@57.7.22")
	}
	return p
}

// mailpitFor finds the message of the event id by its subject.
func mailpitFor(t testing.TB, mp *mailpit.Mailpit, id string) []mailpit.Summary {
	t.Helper()
	msgs, err := mp.Messages(context.Background())
	require.NoError(t, err)
	var out []mailpit.Summary
	for _, m := range msgs {
		if strings.Contains(m.Subject, "["+id+"]") {
			out = append(out, m)
		}
	}
	return out
}

// waitMailpit waits until the number of messages for id is want.
func waitMailpit(t testing.TB, mp *mailpit.Mailpit, id string, want int) []mailpit.Summary {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := mailpitFor(t, mp, id)
		if len(got) >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeEndToEnd runs the real stairhook binary on its queued path (an
// SQLite database of the test) with a config for the Jira test server
// (validating every description against the ADF schema) and a real
// Mailpit, and checks what reaches them for every sample type, a
// redelivery, a Jira 503, and a hostile payload; then SIGTERM ends it
// cleanly.
func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	schema := adfSchema(t)
	mp := mailpit.Start(t)
	bin := stairhookBinary(t)
	jira := jiratest.NewServer(jiratest.Options{Email: jiraEmail, APIToken: jiraToken, SchemaPath: schema})
	t.Cleanup(jira.Close)
	require.True(t, jira.SchemaLoaded())

	secret, err := verify.NewSecret()
	require.NoError(t, err)
	proc := serveOptions{JiraURL: jira.URL, SMTPHost: mp.SMTPHost, SMTPPort: mp.SMTPPort, Delivery: fastRetries}.start(t, bin, secret)
	ep := sender.Endpoint{URL: "http://" + proc.addr + "/webhooks/" + webhookName, Secrets: []verify.Secret{secret}}
	snd := sender.New(sender.Options{Schedule: make([]time.Duration, 6), Sleep: noSleep, Timeout: 30 * time.Second})
	ctx := t.Context()

	// Every sample type, each with a fresh id: accepted at once, delivered
	// by the workers.
	run := time.Now().UnixNano()
	ids := map[string]string{}
	bodies := map[string][]byte{}
	for _, typ := range event.SampleTypes() {
		id := fmt.Sprintf("evt_e2e_%d_%s", run, typ)
		ids[typ] = id
		bodies[typ] = eventBody(t, typ, id, nil)
		rep, err := snd.Send(ctx, ep, id, bodies[typ])
		require.NoError(t, err, "%s: statuses %v", typ, statuses(rep))
		last := rep.Attempts[len(rep.Attempts)-1]
		assert.Equal(t, http.StatusAccepted, last.Status)
		assert.Contains(t, string(last.Body), `"status":"queued"`)
	}
	for _, typ := range event.SampleTypes() {
		id := ids[typ]
		waitIssues(t, jira, id, 1)
		msgs := waitMailpit(t, mp, id, 1)
		require.Len(t, msgs, 1, "%s: one email", typ)
		m, err := mp.Message(ctx, msgs[0].ID)
		require.NoError(t, err)
		require.Len(t, m.To, 1)
		assert.Equal(t, "csm@example.com", m.To[0].Address)
		require.Len(t, m.Cc, 1)
		assert.Equal(t, "team@example.com", m.Cc[0].Address)
		assert.Equal(t, "alerts@example.com", m.From.Address)
		assert.Contains(t, m.Text, id, "%s: text part", typ)
		assert.Contains(t, m.HTML, id, "%s: HTML part", typ)
		assert.Contains(t, m.Text, "Acme Corp")
	}
	for _, is := range jira.Issues() {
		assert.Equal(t, "CS", is.Project)
		assert.Contains(t, is.Labels, "staircase")
	}

	// A redelivered event creates nothing new.
	typ := event.SampleTypes()[0]
	creates := jira.Requests(jiraIssuePath)
	rep, err := snd.Send(ctx, ep, ids[typ], bodies[typ])
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, rep.Attempts[0].Status)
	assert.True(t, rep.Attempts[0].Duplicate, "a redelivery is a duplicate")
	resp := postSigned(t, ep.URL, secret, ids[typ], bodies[typ])
	assert.Equal(t, "true", resp.Header.Get(verify.DuplicateHeader))
	time.Sleep(500 * time.Millisecond) // a stray job would have run
	assert.Equal(t, creates, jira.Requests(jiraIssuePath), "no create for a redelivery")
	assert.Equal(t, 1, issuesFor(jira, ids[typ]))
	assert.Len(t, mailpitFor(t, mp, ids[typ]), 1)

	// Jira answers 503 to each of the sink's requests of its first
	// attempt: the sender got its 202 long before; the job's next attempt
	// creates exactly one issue and the email goes out once.
	id503 := fmt.Sprintf("evt_e2e_%d_jira503", run)
	body := eventBody(t, event.TypeChurnRisk, id503, nil)
	jira.FailNext(3, http.StatusServiceUnavailable, "")
	rep, err = snd.Send(ctx, ep, id503, body)
	require.NoError(t, err, "statuses %v", statuses(rep))
	assert.Equal(t, []int{http.StatusAccepted}, statuses(rep))
	waitIssues(t, jira, id503, 1)
	assert.Len(t, waitMailpit(t, mp, id503, 1), 1)
	time.Sleep(500 * time.Millisecond)
	assert.Equal(t, 1, issuesFor(jira, id503))
	assert.Len(t, mailpitFor(t, mp, id503), 1)

	// A hostile payload: markup and CR/LF in names and titles.
	idx := fmt.Sprintf("evt_e2e_%d_hostile", run)
	body = eventBody(t, event.TypeAccountPersonnelChange, idx, func(m map[string]any) {
		m["account"].(map[string]any)["name"] = "Evil <script>alert(1)</script> Corp\r\nBcc: victim@evil.example"
		sig := m["signal"].(map[string]any)
		sig["title"] = fmt.Sprintf("New <b>boss</b>\r\nX-Injected: yes [%s]", idx)
		m["people"] = []any{map[string]any{
			"name": "Mallory <script>steal()</script>\r\nX-Person-Injected: 1", "title": "CEO\r\nReply-To: evil@evil.example",
			"role": "decision_maker", "change": "joined",
		}}
	})
	rep, err = snd.Send(ctx, ep, idx, body)
	require.NoError(t, err, "statuses %v", statuses(rep))
	msgs := waitMailpit(t, mp, idx, 1)
	require.Len(t, msgs, 1)
	m, err := mp.Message(ctx, msgs[0].ID)
	require.NoError(t, err)
	assert.Empty(t, m.Bcc, "no Bcc from the payload")
	require.Len(t, m.To, 1)
	assert.Equal(t, "csm@example.com", m.To[0].Address)
	assert.NotContains(t, m.HTML, "<script>", "HTML escapes markup")
	assert.NotContains(t, m.HTML, "<b>boss</b>")
	assert.Contains(t, m.HTML, "&lt;script&gt;")
	assert.NotContains(t, m.Subject, "\n")
	hdrs, err := mp.Headers(ctx, msgs[0].ID)
	require.NoError(t, err)
	for name := range hdrs {
		switch strings.ToLower(name) {
		case "bcc", "x-injected", "x-person-injected", "reply-to":
			t.Errorf("header %s injected from the payload", name)
		}
	}
	assert.Len(t, hdrs["Subject"], 1)
	waitIssues(t, jira, idx, 1)
	issues := 0
	for _, is := range jira.Issues() {
		if strings.Contains(is.Summary, idx) {
			issues++
			assert.NotContains(t, is.Summary, "\n")
			assert.NotContains(t, is.Summary, "\r")
		}
	}
	assert.Equal(t, 1, issues)

	// SIGTERM: a clean exit.
	require.NoError(t, proc.stop(t, 30*time.Second), "exit code; stderr: %s", proc.stderr)
	assert.Contains(t, proc.stdout.String(), "stopped")
	assert.NotContains(t, proc.stderr.String(), secret.Encode())
}

// TestServeSIGTERMInFlight stops `stairhook serve` with SIGTERM while a
// Jira create is in flight (it hangs until the Jira timeout), in both
// modes, and restarts it on the same store.
//
// Inline (Redis store): the in-flight request must still get its answer
// (503: the create failed, the email went out and is recorded), the
// process must exit 0, and the sender's retry must create exactly one
// issue and send no second email.
//
// Queued (SQLite): the event was answered 202 long before; the attempt
// running at SIGTERM (its create held 2 s by the Jira front) finishes
// within the shutdown timeout, the process exits 0, and after the restart
// there is still exactly one issue and one email.
func TestServeSIGTERMInFlight(t *testing.T) {
	t.Parallel()
	t.Run("inline", func(t *testing.T) {
		t.Parallel()
		rs := testenv.StartRedis(t)
		st := newServeStack(t)
		proc := st.options(serveOptions{Store: redisStore(rs.URL()), Args: []string{"--inline"}}).start(t, st.bin, st.secret)
		ep := st.endpoint(proc)

		id := fmt.Sprintf("evt_sigterm_%d", time.Now().UnixNano())
		body := eventBody(t, event.TypeChurnRisk, id, nil)
		st.jira.Inject(1, jiratest.Fault{Path: jiraIssuePath, Hang: true})
		type result struct {
			rep *sender.Report
			err error
		}
		res := make(chan result, 1)
		go func() {
			rep, err := newSender(1).Send(context.Background(), ep, id, body)
			res <- result{rep, err}
		}()
		waitFor(t, 30*time.Second, "the create reached Jira", func() bool { return st.jira.Requests(jiraIssuePath) > 0 })
		require.NoError(t, proc.Signal(syscall.SIGTERM))
		got := <-res
		require.Len(t, got.rep.Attempts, 1)
		assert.Equal(t, http.StatusServiceUnavailable, got.rep.Attempts[0].Status, "the in-flight delivery is answered: %v %s", got.rep.Attempts[0].Err, got.rep.Attempts[0].Body)
		select {
		case <-proc.Exited():
			require.NoError(t, proc.Err(), "exit code after SIGTERM; stderr: %s", proc.stderr)
		case <-time.After(30 * time.Second):
			t.Fatal("no exit after SIGTERM")
		}
		assert.Zero(t, issuesFor(st.jira, id))
		assert.Equal(t, 1, mailsFor(st.smtp, id), "the email sink ran to completion")

		proc = proc.restart(t)
		rep, err := newSender(5).Send(t.Context(), ep, id, body)
		require.NoError(t, err, "statuses %v", statuses(rep))
		assert.Equal(t, 1, issuesFor(st.jira, id))
		assert.Equal(t, 1, mailsFor(st.smtp, id), "no second email after the restart")
		require.NoError(t, proc.stop(t, 30*time.Second))
	})
	t.Run("queued", func(t *testing.T) {
		t.Parallel()
		const createDelay = 2 * time.Second
		st := newServeStack(t)
		proc := st.options(serveOptions{Delivery: fastRetries}).start(t, st.bin, st.secret)
		ep := st.endpoint(proc)

		id := fmt.Sprintf("evt_sigterm_q_%d", time.Now().UnixNano())
		body := eventBody(t, event.TypeChurnRisk, id, nil)
		st.front.delayCreates(createDelay)
		rep, err := newSender(1).Send(t.Context(), ep, id, body)
		require.NoError(t, err)
		assert.Equal(t, []int{http.StatusAccepted}, statuses(rep))
		waitFor(t, 30*time.Second, "the create at Jira", func() bool { return st.front.arrivals(jiraIssuePath) > 0 })
		require.NoError(t, proc.stop(t, 30*time.Second), "exit code after SIGTERM; stderr: %s", proc.stderr)
		assert.Equal(t, 1, issuesFor(st.jira, id), "the create held %v finished before serve exited", createDelay)
		for _, l := range jiraLines(proc, "sink failed") {
			t.Errorf("the running attempt was cut by SIGTERM: %v", l["error"])
		}
		st.front.delayCreates(0)

		proc = proc.restart(t)
		waitIssues(t, st.jira, id, 1)
		waitFor(t, 30*time.Second, "the email", func() bool { return mailsFor(st.smtp, id) > 0 })
		time.Sleep(500 * time.Millisecond)
		assert.Equal(t, 1, issuesFor(st.jira, id))
		assert.Equal(t, 1, mailsFor(st.smtp, id), "one email across the restart")
		require.NoError(t, proc.stop(t, 30*time.Second))
	})
}

// TestServeAddressTaken starts serve on an address someone else holds: it
// must go on to a fresh one; and restarts it while its address is held for
// a moment: it must get the same address once it is free.
func TestServeAddressTaken(t *testing.T) {
	t.Parallel()
	bin := stairhookBinary(t)
	jira := jiratest.NewServer(jiratest.Options{Email: jiraEmail, APIToken: jiraToken})
	t.Cleanup(jira.Close)
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	config := serveOptions{JiraURL: jira.URL, SMTPHost: "127.0.0.1", SMTPPort: testenv.FreePort(t)}.config(t)

	held, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer held.Close()
	var tried []string
	proc := startServeOn(t, func() string {
		if len(tried) == 0 {
			tried = append(tried, held.Addr().String())
		} else {
			tried = append(tried, testenv.Addr(testenv.FreePort(t)))
		}
		return tried[len(tried)-1]
	}, bin, config, nil, serveEnv(secret)...)
	require.Len(t, tried, 2, "a second address after the first was taken")
	assert.Equal(t, tried[1], proc.addr)
	assert.Contains(t, proc.stdout.String(), "listening on "+proc.addr)

	require.NoError(t, proc.stop(t, 30*time.Second))
	again, err := net.Listen("tcp", proc.addr)
	require.NoError(t, err, "the address is free after the exit")
	go func() {
		time.Sleep(500 * time.Millisecond)
		again.Close()
	}()
	proc = proc.restart(t)
	assert.Contains(t, proc.stdout.String(), "listening on "+tried[1])
	require.NoError(t, proc.stop(t, 30*time.Second))
}
