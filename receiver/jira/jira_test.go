package jira

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/render"
	"github.com/stairhook/stairhook/receiver/internal/sinktest"
	"github.com/stairhook/stairhook/receiver/jiratest"
	"github.com/stairhook/stairhook/receiver/sink"
)

// recordSleeps replaces the sink's sleep with one that records the waits
// and returns at once, so retry tests take no wall time.
type recordSleeps struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *recordSleeps) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits = append(r.waits, d)
	return ctx.Err()
}

func (r *recordSleeps) all() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.waits...)
}

type jiraFixture struct {
	srv    *jiratest.Server
	sink   *Sink
	sleeps *recordSleeps
	logs   *bytes.Buffer
}

func newJiraFixture(t *testing.T, route Route) *jiraFixture {
	t.Helper()
	srv := jiratest.NewServer(jiratest.Options{Projects: []string{"CS"}})
	t.Cleanup(srv.Close)
	if route.Project == "" {
		route.Project = "CS"
	}
	logs := &bytes.Buffer{}
	cfg := Config{BaseURL: srv.URL, Email: srv.Email, APIToken: srv.APIToken, Timeout: 2 * time.Second}
	js, err := New("staircase.route1.jira", cfg, route, nil, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	sleeps := &recordSleeps{}
	js.sleep = sleeps.sleep
	return &jiraFixture{srv: srv, sink: js, sleeps: sleeps, logs: logs}
}

func TestJiraCreatesIssue(t *testing.T) {
	f := newJiraFixture(t, Route{Labels: []string{"staircase"}, Priorities: map[string]string{"high": "High"}})
	ev := sinktest.HostileEvent()
	require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev))

	issues := f.srv.Issues()
	require.Len(t, issues, 1)
	is := issues[0]
	assert.Equal(t, "CS", is.Project)
	assert.Equal(t, "Task", is.IssueType)
	assert.Equal(t, "High", is.Priority)
	assert.Equal(t, []string{"staircase", idempotencyLabel("staircase", ev.ID)}, is.Labels)
	// One line, with the test marker once, although the template adds it too.
	assert.Equal(t, "[TEST] Churn X-Injected: yes (Acme <script>alert(1)</script> Bcc: victim@example.com)", is.Summary)
	require.NoError(t, jiratest.CheckADF(is.Description))
	if f.srv.SchemaLoaded() {
		t.Log("descriptions validated against the ADF JSON Schema")
	}
	assert.Contains(t, f.logs.String(), "jira issue created")
	assert.NotContains(t, f.logs.String(), f.srv.APIToken)
}

func TestJiraSearchFindsExistingIssue(t *testing.T) {
	f := newJiraFixture(t, Route{})
	ev := sinktest.HostileEvent()
	require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev))
	require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev))
	assert.Len(t, f.srv.Issues(), 1, "redelivery found the issue by label")
	assert.Equal(t, 2, f.srv.Requests("/rest/api/3/search/jql"))
	assert.Equal(t, 1, f.srv.Requests("/rest/api/3/issue"))

	other := sinktest.HostileEvent()
	other.ID = "evt_other"
	require.NoError(t, f.sink.Deliver(sinktest.Context(t), other))
	assert.Len(t, f.srv.Issues(), 2)
}

// Jira's search lags behind creates: inside the lag a redelivery creates a
// second issue. The sink cannot tell; the server's ledger of done sinks
// covers that window (a sink that succeeded is not run again).
func TestJiraSearchLag(t *testing.T) {
	f := newJiraFixture(t, Route{})
	f.srv.SetSearchLag(time.Hour)
	ev := sinktest.HostileEvent()
	require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev))
	require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev))
	assert.Len(t, f.srv.Issues(), 2, "the search lag is real in the test server")

	f.srv.SetSearchLag(0)
	require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev))
	assert.Len(t, f.srv.Issues(), 2, "after the lag the issue is found")
}

func TestJiraRetries(t *testing.T) {
	reset := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
	cases := []struct {
		name   string
		inject func(*jiratest.Server)
		// wantWaits checks the waits between attempts.
		wantWaits func(t *testing.T, waits []time.Duration)
	}{
		{
			name:   "429 with Retry-After",
			inject: func(s *jiratest.Server) { s.FailNext(1, 429, "3") },
			wantWaits: func(t *testing.T, w []time.Duration) {
				assert.Equal(t, []time.Duration{3 * time.Second}, w)
			},
		},
		{
			name:   "429 without Retry-After backs off with jitter",
			inject: func(s *jiratest.Server) { s.FailNext(2, 429, "") },
			wantWaits: func(t *testing.T, w []time.Duration) {
				require.Len(t, w, 2)
				assert.True(t, w[0] >= 250*time.Millisecond && w[0] <= 500*time.Millisecond, w[0])
				assert.True(t, w[1] >= 500*time.Millisecond && w[1] <= time.Second, w[1])
			},
		},
		{
			name: "429 with X-RateLimit-Reset",
			inject: func(s *jiratest.Server) {
				s.Inject(1, jiratest.Fault{Status: 429, Header: http.Header{"X-Ratelimit-Reset": {reset}}})
			},
			wantWaits: func(t *testing.T, w []time.Duration) {
				require.Len(t, w, 1)
				assert.True(t, w[0] > 0 && w[0] <= 2*time.Second, w[0])
			},
		},
		{
			name: "503 on create with Retry-After",
			inject: func(s *jiratest.Server) {
				s.Inject(1, jiratest.Fault{Path: "/rest/api/3/issue", Status: 503, Header: http.Header{"Retry-After": {"1"}}})
			},
			wantWaits: func(t *testing.T, w []time.Duration) {
				assert.Equal(t, []time.Duration{time.Second}, w)
			},
		},
		{
			name:   "500 on search is retried (search is read-only)",
			inject: func(s *jiratest.Server) { s.Inject(1, jiratest.Fault{Path: "/rest/api/3/search/jql", Status: 500}) },
			wantWaits: func(t *testing.T, w []time.Duration) {
				assert.Len(t, w, 1)
			},
		},
		{
			name:   "connection reset on search is retried",
			inject: func(s *jiratest.Server) { s.Inject(1, jiratest.Fault{Path: "/rest/api/3/search/jql", Reset: true}) },
			wantWaits: func(t *testing.T, w []time.Duration) {
				assert.Len(t, w, 1)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newJiraFixture(t, Route{})
			tc.inject(f.srv)
			require.NoError(t, f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent()))
			assert.Len(t, f.srv.Issues(), 1)
			tc.wantWaits(t, f.sleeps.all())
		})
	}
}

func TestJiraTransientFailures(t *testing.T) {
	cases := []struct {
		name   string
		inject func(*jiratest.Server)
	}{
		// A create whose outcome is unknown is not retried by the sink:
		// the sender's retry finds the issue by label if it was made.
		{"500 on create", func(s *jiratest.Server) { s.Inject(1, jiratest.Fault{Path: "/rest/api/3/issue", Status: 500}) }},
		{"502 on create", func(s *jiratest.Server) { s.Inject(1, jiratest.Fault{Path: "/rest/api/3/issue", Status: 502}) }},
		{"408 on create", func(s *jiratest.Server) { s.Inject(1, jiratest.Fault{Path: "/rest/api/3/issue", Status: 408}) }},
		{"409 on create", func(s *jiratest.Server) { s.Inject(1, jiratest.Fault{Path: "/rest/api/3/issue", Status: 409}) }},
		{"reset on create", func(s *jiratest.Server) { s.Inject(1, jiratest.Fault{Path: "/rest/api/3/issue", Reset: true}) }},
		{"hang on create", func(s *jiratest.Server) { s.Inject(1, jiratest.Fault{Path: "/rest/api/3/issue", Hang: true}) }},
		{"search keeps failing", func(s *jiratest.Server) { s.Inject(3, jiratest.Fault{Path: "/rest/api/3/search/jql", Status: 504}) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newJiraFixture(t, Route{})
			f.sink.timeout = 500 * time.Millisecond // the hang ends here
			tc.inject(f.srv)
			ev := sinktest.HostileEvent()
			err := f.sink.Deliver(sinktest.Context(t), ev)
			require.Error(t, err)
			assert.False(t, errors.Is(err, sink.ErrPermanent), "transient: %v", err)
			assert.Empty(t, f.srv.Issues())
			// The sender retries; the second delivery succeeds once.
			f.sink.timeout = 10 * time.Second
			require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev))
			assert.Len(t, f.srv.Issues(), 1)
		})
	}
}

func TestJiraThrottledPastDeadline(t *testing.T) {
	f := newJiraFixture(t, Route{})
	f.srv.FailNext(1, 429, "120")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := f.sink.Deliver(ctx, sinktest.HostileEvent())
	var ra *sink.RetryAfterError
	require.ErrorAs(t, err, &ra)
	assert.Equal(t, 120*time.Second, ra.After)
	assert.False(t, errors.Is(err, sink.ErrPermanent))
	assert.Empty(t, f.sleeps.all(), "no wait past the deadline")

	// Throttled on every attempt: a sink.RetryAfterError after the last one.
	f.srv.FailNext(3, 503, "1")
	err = f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
	require.ErrorAs(t, err, &ra)
	assert.Equal(t, time.Second, ra.After)
	assert.Len(t, f.sleeps.all(), 2)
	assert.Empty(t, f.srv.Issues())
}

// A 503 or 429 that names no delay is a plain transient failure once the
// sink's own tries are spent: the queue's backoff (first_retry, max_retry)
// applies, where a RetryAfterError would make the job wait the sink's
// short in-attempt backoff, uncounted, for as long as Jira is down.
func TestJiraThrottledWithoutDelay(t *testing.T) {
	for _, status := range []int{429, 503} {
		f := newJiraFixture(t, Route{})
		f.srv.FailNext(3, status, "")
		err := f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
		require.Error(t, err, status)
		var ra *sink.RetryAfterError
		assert.False(t, errors.As(err, &ra), "%d without Retry-After: %v", status, err)
		assert.False(t, errors.Is(err, sink.ErrPermanent), status)
		assert.Len(t, f.sleeps.all(), 2, "the sink's own tries")

		f = newJiraFixture(t, Route{})
		f.srv.FailNext(1, status, "")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		err = f.sink.Deliver(ctx, sinktest.HostileEvent())
		cancel()
		assert.False(t, errors.As(err, &ra), "%d without Retry-After near the deadline: %v", status, err)
	}
}

func TestJiraPermanentFailures(t *testing.T) {
	t.Run("401 bad token", func(t *testing.T) {
		f := newJiraFixture(t, Route{})
		f.sink.token = "wrong-token-value"
		err := f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
		require.ErrorIs(t, err, sink.ErrPermanent)
		assert.Contains(t, err.Error(), "401")
		assert.Contains(t, err.Error(), "Client must be authenticated")
		assert.NotContains(t, err.Error(), "wrong-token-value")
		assert.NotContains(t, err.Error(), "Basic ")
	})
	t.Run("400 unknown project reports errors", func(t *testing.T) {
		f := newJiraFixture(t, Route{Project: "NOPE", Priorities: map[string]string{"high": "Urgent"}})
		err := f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
		require.ErrorIs(t, err, sink.ErrPermanent)
		assert.Contains(t, err.Error(), "400")
		assert.Contains(t, err.Error(), "project: valid project is required")
		assert.Contains(t, err.Error(), "priority: Specify the Priority")
		assert.Equal(t, "jira 400", sink.ReasonClass(err), "the reason class names the status only")
		assert.Equal(t, 1, f.srv.Requests("/rest/api/3/issue"), "not retried")
	})
	t.Run("403 and 404 are permanent", func(t *testing.T) {
		for _, status := range []int{403, 404, 413} {
			f := newJiraFixture(t, Route{})
			f.srv.FailNext(1, status, "")
			err := f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
			require.ErrorIs(t, err, sink.ErrPermanent, status)
			assert.Contains(t, err.Error(), "injected fault")
			assert.Equal(t, "jira "+strconv.Itoa(status), sink.ReasonClass(err))
		}
	})
	t.Run("old search endpoint is gone", func(t *testing.T) {
		f := newJiraFixture(t, Route{})
		f.sink.search = f.srv.URL + "/rest/api/3/search"
		err := f.sink.Deliver(sinktest.Context(t), sinktest.HostileEvent())
		require.ErrorIs(t, err, sink.ErrPermanent)
		assert.Contains(t, err.Error(), "410")
	})
}

// A Jira, proxy or gateway that echoes the credentials in its error body
// must not get them into the sink's error (which reaches logs, the
// dead-letter file and the sender).
func TestJiraErrorRedactsEchoedCredentials(t *testing.T) {
	const email, token = "bot@example.com", "ATATT3xFfGF0-very-secret-token"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		_, tok, _ := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"errorMessages": []string{"Authorization " + auth + " is not valid", "token " + tok + " revoked"},
			"errors":        map[string]string{"auth": strings.TrimPrefix(auth, "Basic ")},
		})
	}))
	defer echo.Close()
	s, err := New("jira:CS", Config{BaseURL: echo.URL, Email: email, APIToken: token}, Route{Project: "CS"}, nil, nil)
	require.NoError(t, err)
	err = s.Deliver(sinktest.Context(t), sinktest.HostileEvent())
	require.ErrorIs(t, err, sink.ErrPermanent)
	basic := base64.StdEncoding.EncodeToString([]byte(email + ":" + token))
	for _, secret := range []string{token, basic, basic[:len(basic)-2], "very-secret"} {
		assert.NotContains(t, err.Error(), secret)
	}
	assert.Contains(t, err.Error(), "Authorization Basic [redacted] is not valid")
	assert.Contains(t, err.Error(), "token [redacted] revoked")
}

func TestJiraErrorBodyBounded(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	body, _ := json.Marshal(map[string]any{"errorMessages": []string{huge}, "errors": map[string]string{"summary": "bad"}})
	keep := func(s string) string { return s }
	msgs := errorMessages(body[:maxErrorBody], keep)
	assert.Nil(t, msgs, "a truncated body is not parsed")
	small, _ := json.Marshal(map[string]any{"errorMessages": []string{strings.Repeat("y", 2000), "b\r\nX: y"}, "errors": map[string]string{"summary": "bad"}})
	msgs = errorMessages(small, keep)
	require.Len(t, msgs, 3)
	assert.LessOrEqual(t, len(msgs[0]), 504)
	assert.Equal(t, "b X: y", msgs[1])
	assert.Equal(t, "summary: bad", msgs[2])
}

func TestJiraSummary(t *testing.T) {
	b, err := NewIssueBuilder("staircase", Route{Project: "CS", Summary: "{{.Signal.Title}}"})
	require.NoError(t, err)
	summary := func(ev *event.Event) string {
		body, _, err := b.Build(ev)
		require.NoError(t, err)
		var req createRequest
		require.NoError(t, json.Unmarshal(body, &req))
		return req.Fields.Summary
	}
	ev := &event.Event{ID: "e", Type: event.TypeRenewal, Test: true, Account: event.Account{ID: "a"}}

	ev.Signal.Title = "line one\r\nline two\ttab"
	assert.Equal(t, "[TEST] line one line two tab", summary(ev))

	// 255 UTF-16 units, cut on a rune boundary: 😀 counts two.
	ev.Test = false
	ev.Signal.Title = strings.Repeat("a", 254) + "😀"
	got := summary(ev)
	assert.Equal(t, strings.Repeat("a", 254), got)
	ev.Signal.Title = strings.Repeat("é", 300)
	got = summary(ev)
	assert.Len(t, utf16.Encode([]rune(got)), 255)

	// An empty template result still gives Jira a summary.
	ev.Signal.Title = "\n"
	assert.Equal(t, "Staircase signal renewal", summary(ev))
}

// A sender cannot make a summary read backwards or hide a word in it:
// bidi controls, zero-width and other format characters, and NUL, are
// removed from the summary Jira receives.
func TestJiraSummaryStripsFormatCharacters(t *testing.T) {
	f := newJiraFixture(t, Route{})
	for i, r := range sinktest.FormatCharacters {
		ev := sinktest.HostileEvent()
		ev.ID = "evt_format_" + strconv.Itoa(i)
		ev.Test = false
		ev.Signal.Title = "Renewal " + string(r) + "at risk" + string(r)
		ev.Account.Name = string(r) + "Acme"
		require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev))
	}
	issues := f.srv.Issues()
	require.Len(t, issues, utf8.RuneCountInString(sinktest.FormatCharacters))
	for _, is := range issues {
		assert.Equal(t, "Renewal at risk (Acme)", is.Summary)
	}
}

func TestTruncateUTF16(t *testing.T) {
	assert.Equal(t, "abc", truncateUTF16("abc", 3))
	assert.Equal(t, "ab", truncateUTF16("abc", 2))
	assert.Equal(t, "a", truncateUTF16("a😀", 2), "a surrogate pair is not split")
	assert.Equal(t, "a😀", truncateUTF16("a😀", 3))
	assert.Equal(t, "éé", truncateUTF16("ééé", 2))
}

func TestJiraTemplateOutputCap(t *testing.T) {
	b, err := NewIssueBuilder("staircase", Route{Project: "CS", Summary: "{{.Signal.Summary}}"})
	require.NoError(t, err)
	ev := &event.Event{ID: "e", Account: event.Account{ID: "a"}}
	ev.Signal.Summary = strings.Repeat("s", render.MaxOutput)
	_, _, err = b.Build(ev)
	require.NoError(t, err, "exactly at the cap")
	ev.Signal.Summary += "s"
	_, _, err = b.Build(ev)
	require.ErrorIs(t, err, render.ErrOutputTooLarge)
	require.ErrorIs(t, err, sink.ErrPermanent)
}

func TestJiraConfigCheck(t *testing.T) {
	cases := []struct {
		cfg  Config
		want []string
	}{
		{Config{BaseURL: "https://x.atlassian.net", Email: "a@b", APIToken: "t"}, nil},
		{Config{BaseURL: "https://api.atlassian.com/ex/jira/1234-abcd/", Email: "a@b", APIToken: "t"}, nil},
		{Config{BaseURL: "http://127.0.0.1:8080", Email: "a@b", APIToken: "t"}, nil},
		{Config{BaseURL: "http://x.atlassian.net", Email: "a@b", APIToken: "t"}, []string{"jira.base_url: must be https"}},
		{Config{BaseURL: "x.atlassian.net", Email: "a@b", APIToken: "t"}, []string{"jira.base_url: must be an absolute http(s) URL"}},
		{Config{BaseURL: "https://u:p@x.atlassian.net", Email: "a@b", APIToken: "t"}, []string{"jira.base_url: must not carry credentials"}},
		{Config{Timeout: -1}, []string{"jira.base_url:", "jira.email: required", "jira.api_token: required", "jira.timeout: must not be negative"}},
	}
	for _, tc := range cases {
		errs := tc.cfg.Check("jira")
		require.Len(t, errs, len(tc.want), "%+v: %v", tc.cfg, errs)
		for i, w := range tc.want {
			assert.True(t, strings.HasPrefix(errs[i].Error(), w), "%q does not start with %q", errs[i], w)
		}
	}
}

func TestJiraRouteCheck(t *testing.T) {
	ok := Route{Project: "CS", Labels: []string{"staircase"}, Summary: "{{.Account.Name}}", Priorities: map[string]string{"high": "High"}}
	assert.Empty(t, ok.Check("r"))
	bad := Route{Labels: []string{"two words", ""}, Summary: "{{.NoSuchField}}", Priorities: map[string]string{"high": " "}}
	var msgs []string
	for _, e := range bad.Check("webhooks[0].routes[1].jira") {
		msgs = append(msgs, e.Error())
	}
	require.Len(t, msgs, 5, "%q", msgs)
	assert.True(t, strings.HasPrefix(msgs[0], "webhooks[0].routes[1].jira.project: required"))
	assert.True(t, strings.HasPrefix(msgs[1], "webhooks[0].routes[1].jira.labels[0]: "))
	assert.True(t, strings.HasPrefix(msgs[2], "webhooks[0].routes[1].jira.labels[1]: "))
	assert.True(t, strings.HasPrefix(msgs[3], "webhooks[0].routes[1].jira.summary: "), msgs[3])
	assert.Contains(t, msgs[3], "NoSuchField")
	assert.True(t, strings.HasPrefix(msgs[4], "webhooks[0].routes[1].jira.priorities.high: "))
	assert.Len(t, (&Route{Project: "CS", Summary: "{{"}).Check(""), 1)
}

func TestRetryDelay(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	h := func(k, v string) http.Header { return http.Header{http.CanonicalHeaderKey(k): {v}} }
	assert.Equal(t, 7*time.Second, retryDelay(h("Retry-After", "7"), now))
	assert.Equal(t, 30*time.Second, retryDelay(h("Retry-After", now.Add(30*time.Second).Format(http.TimeFormat)), now))
	assert.Equal(t, 90*time.Second, retryDelay(h("X-RateLimit-Reset", "2026-11-26T10:01:30Z"), now))
	// The documented form, yyyy-MM-ddTHH:mmZ.
	assert.Equal(t, 2*time.Minute, retryDelay(h("X-RateLimit-Reset", "2026-11-26T10:02Z"), now))
	assert.Equal(t, 1500*time.Millisecond, retryDelay(h("X-RateLimit-Reset", "2026-11-26T10:00:01.500Z"), now))
	assert.Equal(t, time.Duration(0), retryDelay(h("X-RateLimit-Reset", "2026-11-26T09:00:00Z"), now), "past")
	assert.Equal(t, time.Duration(0), retryDelay(h("Retry-After", "soon"), now))
	assert.Equal(t, time.Duration(0), retryDelay(h("Retry-After", "-5"), now))
	assert.Equal(t, time.Hour, retryDelay(h("Retry-After", "99999999999"), now), "capped")
}

func TestJiraBaseURLJoin(t *testing.T) {
	for base, want := range map[string]string{
		"https://x.atlassian.net":                    "https://x.atlassian.net/rest/api/3/issue",
		"https://x.atlassian.net/":                   "https://x.atlassian.net/rest/api/3/issue",
		"https://api.atlassian.com/ex/jira/abc-123":  "https://api.atlassian.com/ex/jira/abc-123/rest/api/3/issue",
		"https://api.atlassian.com/ex/jira/abc-123/": "https://api.atlassian.com/ex/jira/abc-123/rest/api/3/issue",
	} {
		s, err := New("j", Config{BaseURL: base, Email: "a@b", APIToken: "t"}, Route{Project: "CS"}, nil, nil)
		require.NoError(t, err)
		assert.Equal(t, want, s.issue)
		assert.Equal(t, strings.TrimSuffix(want, "issue")+"search/jql", s.search)
	}
}

func BenchmarkJiraBuild(b *testing.B) {
	builder, err := NewIssueBuilder("staircase", Route{Project: "CS", Labels: []string{"staircase"}})
	require.NoError(b, err)
	ev := sinktest.HostileEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := builder.Build(ev); err != nil {
			b.Fatal(err)
		}
	}
}

func TestIdempotencyLabel(t *testing.T) {
	// SHA-256 of "staircase", a zero byte and "evt_1" is
	// c744f1b346b542924312878abfc6abb0…; the label is its first 16 bytes
	// in hex, so anyone can recompute it from the webhook's name and the
	// event id (printf 'staircase\0evt_1' | sha256sum | cut -c1-32).
	a := idempotencyLabel("staircase", "evt_1")
	assert.Equal(t, "stairhook-c744f1b346b542924312878abfc6abb0", a)
	assert.Equal(t, a, idempotencyLabel("staircase", "evt_1"), "deterministic")
	assert.NotEqual(t, a, idempotencyLabel("staircase", "evt_2"), "per event")
	assert.NotEqual(t, a, idempotencyLabel("other", "evt_1"), "per webhook")
	assert.NotEqual(t, a, idempotencyLabel("staircase", "evt_1 "), "no trimming")
	// The zero byte keeps (webhook, id) pairs apart.
	assert.NotEqual(t, idempotencyLabel("a", "bc"), idempotencyLabel("ab", "c"))
	assert.NotEqual(t, a, legacyLabel("evt_1"), "never the label of earlier versions")

	// The label of earlier versions: SHA-256 of the id alone, 8 bytes
	// (printf evt_1 | sha256sum | cut -c1-16).
	assert.Equal(t, "stairhook-7d4e5a76eae6d8c1", legacyLabel("evt_1"))
}

// The label depends on the webhook and the event id only: a sink renamed by
// a config change (route names default to their position, so inserting a
// route renames the ones after it) finds the issue it made before, and two
// routes of one webhook into one project share one issue, while routes
// into two projects get one each, because the search is limited to the
// route's project.
func TestJiraLabelIndependentOfRoute(t *testing.T) {
	srv := jiratest.NewServer(jiratest.Options{Projects: []string{"CS", "OPS"}})
	t.Cleanup(srv.Close)
	cfg := Config{BaseURL: srv.URL, Email: srv.Email, APIToken: srv.APIToken, Timeout: 2 * time.Second}
	newSink := func(name, project string) *Sink {
		s, err := New(name, cfg, Route{Project: project}, nil, nil)
		require.NoError(t, err)
		return s
	}
	ev := sinktest.HostileEvent()
	require.NoError(t, newSink("staircase.route1.jira", "CS").Deliver(sinktest.Context(t), ev))
	// Redelivered after a route was inserted before it: now route2.
	require.NoError(t, newSink("staircase.route2.jira", "CS").Deliver(sinktest.Context(t), ev))
	// Another route of the webhook into the same project.
	require.NoError(t, newSink("staircase.risk.jira", "CS").Deliver(sinktest.Context(t), ev))
	require.Len(t, srv.Issues(), 1, "one issue per event, webhook and project")

	require.NoError(t, newSink("staircase.ops.jira", "OPS").Deliver(sinktest.Context(t), ev))
	issues := srv.Issues()
	require.Len(t, issues, 2, "another project gets its own issue")
	assert.Equal(t, "OPS", issues[1].Project)
	assert.Equal(t, issues[0].Labels, issues[1].Labels, "same label in both projects")
}

// Issue 14, item 2: a sender on another webhook (another secret) that knows
// an event id used to post it first: its issue carried the event's label,
// so the real delivery found it and created nothing, and answered
// "delivered" for an issue with the other sender's content. The label is
// per webhook now: each webhook gets its own issue, with its own content.
func TestJiraOtherWebhookCannotClaimEvent(t *testing.T) {
	srv := jiratest.NewServer(jiratest.Options{Projects: []string{"CS"}})
	t.Cleanup(srv.Close)
	cfg := Config{BaseURL: srv.URL, Email: srv.Email, APIToken: srv.APIToken, Timeout: 2 * time.Second}
	attacker, err := New("partner.route1.jira", cfg, Route{Project: "CS"}, nil, nil)
	require.NoError(t, err)
	real, err := New("staircase.route1.jira", cfg, Route{Project: "CS"}, nil, nil)
	require.NoError(t, err)

	forged := &event.Event{ID: "evt_01JREAL", Type: event.TypeRenewal, CreatedAt: time.Now(),
		Account: event.Account{ID: "acc_1", Name: "Nobody"}, Signal: event.Signal{Title: "Nothing to see"}}
	genuine := &event.Event{ID: "evt_01JREAL", Type: event.TypeChurnRisk, CreatedAt: time.Now(),
		Account: event.Account{ID: "acc_1", Name: "Acme Corp"}, Signal: event.Signal{Title: "Churn risk"}}
	require.NoError(t, attacker.Deliver(sinktest.Context(t), forged))
	require.NoError(t, real.Deliver(sinktest.Context(t), genuine))

	issues := srv.Issues()
	require.Len(t, issues, 2, "the real delivery made its own issue")
	assert.Equal(t, "Nothing to see (Nobody)", issues[0].Summary)
	assert.Equal(t, "Churn risk (Acme Corp)", issues[1].Summary)
	assert.NotEqual(t, issues[0].Labels, issues[1].Labels)

	// And each webhook's redelivery finds its own issue.
	require.NoError(t, real.Deliver(sinktest.Context(t), genuine))
	require.NoError(t, attacker.Deliver(sinktest.Context(t), forged))
	assert.Len(t, srv.Issues(), 2)
}

// createAsEarlierVersion creates the issue an earlier version made for ev:
// the same request, with the label of the event id alone.
func createAsEarlierVersion(t *testing.T, srv *jiratest.Server, ev *event.Event, project string) {
	t.Helper()
	b, err := NewIssueBuilder("staircase", Route{Project: project})
	require.NoError(t, err)
	body, label, err := b.Build(ev)
	require.NoError(t, err)
	body = bytes.Replace(body, []byte(label), []byte(legacyLabel(ev.ID)), 1)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/rest/api/3/issue", bytes.NewReader(body))
	require.NoError(t, err)
	req.SetBasicAuth(srv.Email, srv.APIToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
}

// An event delivered before the upgrade has an issue with the label of the
// event id alone. A redelivery or replay after the upgrade must find it,
// not create a second issue: the sink looks for that label too while the
// event is at most LegacyLabelWindow old.
func TestJiraFindsIssueOfEarlierVersion(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f := newJiraFixture(t, Route{})
	f.sink.now = func() time.Time { return now }

	ev := sinktest.HostileEvent()
	ev.CreatedAt = now.Add(-72 * time.Hour) // delivered before the upgrade, retried since
	createAsEarlierVersion(t, f.srv, ev, "CS")
	require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev))
	issues := f.srv.Issues()
	require.Len(t, issues, 1, "the redelivery found the issue of the earlier version")
	assert.Equal(t, []string{legacyLabel(ev.ID)}, issues[0].Labels)
	assert.Contains(t, f.logs.String(), "jira issue exists")

	// At the end of the window it is still found; past it, the event gets
	// an issue of its own.
	ev.CreatedAt = now.Add(-LegacyLabelWindow)
	require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev))
	assert.Len(t, f.srv.Issues(), 1)
	ev.CreatedAt = now.Add(-LegacyLabelWindow - time.Second)
	require.NoError(t, f.sink.Deliver(sinktest.Context(t), ev))
	assert.Len(t, f.srv.Issues(), 2, "past the window the legacy label is not looked for")

	// An event without a created_at is looked for under its own label
	// only, and only in the route's project.
	other := sinktest.HostileEvent()
	other.ID = "evt_no_date"
	other.CreatedAt = time.Time{}
	createAsEarlierVersion(t, f.srv, other, "CS")
	require.NoError(t, f.sink.Deliver(sinktest.Context(t), other))
	assert.Len(t, f.srv.Issues(), 4)
}

// After the upgrade nobody creates the legacy label, so looking for it
// cannot let a sender on another webhook claim an event: its sink labels
// its issue for its own webhook.
func TestJiraLegacySearchDoesNotReopenClaim(t *testing.T) {
	srv := jiratest.NewServer(jiratest.Options{Projects: []string{"CS"}})
	t.Cleanup(srv.Close)
	cfg := Config{BaseURL: srv.URL, Email: srv.Email, APIToken: srv.APIToken, Timeout: 2 * time.Second}
	attacker, err := New("partner.route1.jira", cfg, Route{Project: "CS"}, nil, nil)
	require.NoError(t, err)
	real, err := New("staircase.route1.jira", cfg, Route{Project: "CS"}, nil, nil)
	require.NoError(t, err)
	ev := sinktest.HostileEvent()
	ev.CreatedAt = time.Now().Add(-time.Hour)
	require.NoError(t, attacker.Deliver(sinktest.Context(t), ev))
	require.NoError(t, real.Deliver(sinktest.Context(t), ev))
	issues := srv.Issues()
	require.Len(t, issues, 2)
	for _, is := range issues {
		assert.NotContains(t, is.Labels, legacyLabel(ev.ID))
	}
}

func TestSearchJQL(t *testing.T) {
	assert.Equal(t, `project = "CS" AND labels in ("stairhook-0123")`, searchJQL("CS", "stairhook-0123"))
	assert.Equal(t, `project = "CS" AND labels in ("stairhook-0123", "stairhook-45")`, searchJQL("CS", "stairhook-0123", "stairhook-45"))
	assert.Equal(t, `project = "C\"S\\" AND labels in ("x")`, searchJQL(`C"S\`, "x"))
}

// The sink never follows a redirect, whatever client it is given (NewServer
// always passes one): a 307/308 would re-send the body, and to the same
// host the Authorization header.
func TestJiraNeverFollowsRedirects(t *testing.T) {
	var reached atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"issues":[],"key":"X-1"}`))
	}))
	defer target.Close()
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		jira := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+r.URL.Path, status)
		}))
		for _, client := range []*http.Client{nil, {}, http.DefaultClient} {
			cfg := Config{BaseURL: jira.URL, Email: "bot@example.com", APIToken: "tok", Timeout: 2 * time.Second}
			s, err := New("staircase.route1.jira", cfg, Route{Project: "CS"}, client, nil)
			require.NoError(t, err)
			err = s.Deliver(sinktest.Context(t), sinktest.HostileEvent())
			require.ErrorIs(t, err, sink.ErrPermanent, status)
			assert.Contains(t, err.Error(), "redirect")
			assert.NotContains(t, err.Error(), target.URL, "the Location is not quoted")
			assert.Equal(t, "jira "+strconv.Itoa(status), sink.ReasonClass(err))
		}
		jira.Close()
	}
	assert.Zero(t, reached.Load(), "nothing reached the redirect target")
	assert.Nil(t, http.DefaultClient.CheckRedirect, "the given client is not modified")
}

// No error or log line of the sink shows a user name and password of a
// URL (issue 14, item 5): base_url cannot carry them (Check refuses it
// without quoting it), and a transport error, which names the URL it
// failed on, shows it without the password.
func TestJiraErrorsNeverShowURLCredentials(t *testing.T) {
	const password = "S3cr3t-pass"
	errs := (&Config{BaseURL: "https://bot:" + password + "@x.atlassian.net", Email: "a@b", APIToken: "t"}).Check("jira")
	require.Len(t, errs, 1)
	assert.NotContains(t, errs[0].Error(), password)
	_, err := New("staircase.route1.jira", Config{BaseURL: "https://bot:" + password + "@x.atlassian.net", Email: "a@b", APIToken: "t"}, Route{Project: "CS"}, nil, nil)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), password)

	var logs bytes.Buffer
	s, err := New("staircase.route1.jira", Config{BaseURL: "http://127.0.0.1:1", Email: "a@b", APIToken: "t", Timeout: time.Second}, Route{Project: "CS"},
		nil, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	s.sleep = (&recordSleeps{}).sleep
	s.search = "http://bot:" + password + "@127.0.0.1:1/rest/api/3/search/jql" // nothing listens on port 1
	err = s.Deliver(sinktest.Context(t), sinktest.HostileEvent())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "127.0.0.1:1", "the error names the URL")
	assert.NotContains(t, err.Error(), password)
	assert.NotContains(t, logs.String(), password)
}
