package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/console"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/queue"
)

// token is the admin token of the test consoles.
const token = "test-admin-token-0123456789"

// rig is a console over a real SQLite queue whose workers deliver to
// sinks by name: "ok" succeeds (noting a Jira issue), "dead" fails
// permanently, "slow" fails transiently with its retry an hour away,
// "fixable" fails permanently until fixed is set.
type rig struct {
	t       *testing.T
	q       *queue.Queue
	rec     *queue.Recorder
	c       *console.Console
	reg     *prometheus.Registry
	metrics *console.Metrics
	now     atomic.Int64 // the console's clock, in ms
	fixed   atomic.Bool
	sinkErr atomic.Value // string: the error text of the failing sinks
	sent    sync.Map     // event id → body of test notifications
	echo    atomic.Value // string: what the receiver's answer to a test notification quotes
}

var webhooks = []console.Webhook{
	{Name: "staircase", Keys: []string{"current", "previous"}, Sinks: []string{"ok", "dead", "slow", "fixable"}},
	{Name: "other", Keys: []string{"key1"}, Sinks: []string{"ok"}},
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{t: t}
	r.now.Store(time.Now().UnixMilli())
	r.sinkErr.Store("rejected by the destination")
	q, err := queue.Open(context.Background(), queue.Location{SQLitePath: filepath.Join(t.TempDir(), "stairhook.db")}, queue.Options{
		Logger:       slog.New(slog.DiscardHandler),
		PollInterval: 20 * time.Millisecond,
		FirstRetry:   time.Hour, MaxRetry: time.Hour,
		Work: r.work,
	})
	require.NoError(t, err)
	r.q = q
	r.rec = q.NewRecorder(queue.RecorderOptions{FlushEvery: time.Hour})
	require.NoError(t, q.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		q.Stop(ctx)
		r.rec.Close(ctx)
		q.Close()
	})
	r.reg = prometheus.NewRegistry()
	r.metrics, err = console.NewMetrics(r.reg, console.MetricsOptions{Webhooks: webhooks, Queue: q, Recorder: r.rec, Now: r.clock})
	require.NoError(t, err)
	r.c, err = console.New(console.Options{Queue: q, Token: token, Webhooks: webhooks, Registry: r.reg,
		Logger: slog.New(slog.DiscardHandler), Now: r.clock, Send: r.send})
	require.NoError(t, err)
	return r
}

func (r *rig) clock() time.Time { return time.UnixMilli(r.now.Load()) }

func (r *rig) advance(d time.Duration) { r.now.Add(d.Milliseconds()) }

func (r *rig) work(ctx context.Context, d *queue.Delivery) queue.Result {
	began := time.Now()
	defer func() { queue.NoteAttempt(ctx, d.Attempt, began, time.Since(began)) }()
	fail := errors.New(r.sinkErr.Load().(string))
	switch d.Sink {
	case "ok":
		queue.NoteReceipt(ctx, "jira_issue", "CS-7")
		queue.NoteReceipt(ctx, "jira_url", "https://example.atlassian.net/browse/CS-7")
		return queue.Result{}
	case "dead":
		return queue.Result{Err: fail, Permanent: true}
	case "slow":
		return queue.Result{Err: fail}
	case "fixable":
		if r.fixed.Load() {
			return queue.Result{}
		}
		return queue.Result{Err: fail, Permanent: true}
	}
	return queue.Result{Err: errors.New("no such sink"), Permanent: true}
}

// send is the rig's SendFunc: it records the event as the receiver would
// and answers as it does.
func (r *rig) send(ctx context.Context, webhook, id string, body []byte) (int, []byte, error) {
	r.sent.Store(id, body)
	ev, err := event.Decode(body)
	if err != nil {
		return http.StatusBadRequest, []byte(`{"error":{"code":"invalid_event"}}`), nil
	}
	_, err = r.q.Accept(ctx, &queue.Accepted{Webhook: webhook, EventID: ev.ID, Type: ev.Type, Account: ev.Account.ID,
		KeyLabel: "current", Scheme: "v1", Test: ev.Test, Body: body, Sinks: []string{"ok"}})
	if err != nil {
		return 0, nil, err
	}
	resp := `{"status":"queued","id":"` + ev.ID + `","sinks":["ok"]}`
	if e, ok := r.echo.Load().(string); ok {
		resp += "\nX-Staircase-Signature: " + e
	}
	return http.StatusAccepted, []byte(resp), nil
}

// accept records an event of webhook with the sample body of typ, edited
// by edit, and returns its id.
func (r *rig) accept(webhook, id string, edit func(map[string]any), sinks ...string) {
	r.t.Helper()
	sample, err := event.Sample(event.TypeChurnRisk)
	require.NoError(r.t, err)
	var ev map[string]any
	require.NoError(r.t, json.Unmarshal(sample, &ev))
	ev["id"] = id
	if edit != nil {
		edit(ev)
	}
	body, err := json.Marshal(ev)
	require.NoError(r.t, err)
	parsed, err := event.Decode(body)
	require.NoError(r.t, err)
	_, err = r.q.Accept(context.Background(), &queue.Accepted{Webhook: webhook, EventID: id, Type: parsed.Type,
		Account: parsed.Account.ID, KeyLabel: "current", Scheme: "v1", Body: body, Sinks: sinks})
	require.NoError(r.t, err)
}

// eventually waits up to 15 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// client is one browser or script talking to a rig's console.
type client struct {
	r      *rig
	remote string
	cookie *http.Cookie
	bearer string
}

func (r *rig) anonymous() *client { return &client{r: r, remote: "192.0.2.10:4000"} }

func (r *rig) script() *client { return &client{r: r, remote: "192.0.2.11:4000", bearer: token} }

// browser logs in through the form.
func (r *rig) browser() *client {
	r.t.Helper()
	c := &client{r: r, remote: "192.0.2.12:4000"}
	res := c.post("/login", url.Values{"token": {token}, "next": {"/"}})
	require.Equal(r.t, http.StatusSeeOther, res.Code, res.Body.String())
	for _, ck := range res.Result().Cookies() {
		if ck.Name == "stairhook_session" {
			c.cookie = ck
		}
	}
	require.NotNil(r.t, c.cookie)
	return c
}

func (c *client) do(req *http.Request) *httptest.ResponseRecorder {
	req.RemoteAddr = c.remote
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	w := httptest.NewRecorder()
	c.r.c.ServeHTTP(w, req)
	return w
}

// get asks for a page as a browser does.
func (c *client) get(path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	return c.do(req)
}

// post sends a form, as a browser on the console's own page does.
func (c *client) post(path string, form url.Values) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return c.do(req)
}

// csrf is the CSRF token of the client's session, from a page's form.
func (c *client) csrf() string {
	c.r.t.Helper()
	res := c.get("/api/csrf")
	require.Equal(c.r.t, http.StatusOK, res.Code)
	var v struct{ CSRF string }
	require.NoError(c.r.t, json.Unmarshal(res.Body.Bytes(), &v))
	require.NotEmpty(c.r.t, v.CSRF)
	// The same token is in the pages' forms.
	page := c.get("/dead").Body.String()
	require.Contains(c.r.t, page, `name="csrf" value="`+v.CSRF+`"`)
	return v.CSRF
}

// action posts a form with the client's CSRF token.
func (c *client) action(path string, form url.Values) *httptest.ResponseRecorder {
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", c.csrf())
	return c.post(path, form)
}

var hrefs = regexp.MustCompile(`(?i)\b(?:href|src|action)\s*=\s*"([^"]*)"`)

// links lists the href, src and action values of a page.
func links(page string) []string {
	var out []string
	for _, m := range hrefs.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}

// httptestRequest is a webhook request from 192.0.2.1.
func httptestRequest(path string) *http.Request {
	return httptest.NewRequest(http.MethodPost, path, nil)
}
