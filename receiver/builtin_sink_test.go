package receiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/smtptest"
	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/render"
	"github.com/stairhook/stairhook/receiver/jira"
	"github.com/stairhook/stairhook/receiver/jiratest"
	"github.com/stairhook/stairhook/receiver/sink"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// TestServerDryRun runs the zero-configuration server: every sample
// reaches both dry-run sinks, which write into the outbox.
func TestServerDryRun(t *testing.T) {
	outbox := t.TempDir()
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	srv, err := NewServer(DefaultConfig(secret.Encode(), "127.0.0.1:0", outbox), ServerOptions{Inline: true, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer srv.Close()
	for _, typ := range event.SampleTypes() {
		body, err := event.Sample(typ)
		require.NoError(t, err)
		ev, err := event.Decode(body)
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, verifytest.NewRequest(secret, ev.ID, time.Now(), "/webhooks/staircase", body))
		require.Equal(t, http.StatusOK, rec.Code, "%s: %s", typ, rec.Body.String())
		assert.Equal(t, map[string]string{"staircase.jira.jira": "delivered", "staircase.email.email": "delivered"}, outcomes(decodeResponse(t, rec)))
	}
	jira, err := filepath.Glob(filepath.Join(outbox, "jira", "*.json"))
	require.NoError(t, err)
	email, err := filepath.Glob(filepath.Join(outbox, "email", "*.eml"))
	require.NoError(t, err)
	assert.Len(t, jira, len(event.SampleTypes()))
	assert.Len(t, email, len(event.SampleTypes()))
}

// TestServerRealSinks runs the server with the real Jira and email sinks
// against the in-repo Jira test server and an in-process SMTP server: every
// sample becomes one issue and one email; redelivery, a Jira outage and a
// rejected recipient never duplicate or lose one. The SMTP server speaks
// in clear (tls: none): the email sink trusts only the system's roots from
// a configuration, and its TLS policies are package email's to test.
func TestServerRealSinks(t *testing.T) {
	js := jiratest.NewServer(jiratest.Options{})
	defer js.Close()
	ms := smtptest.NewServer(t, smtptest.Options{NoTLS: true})
	cfg := &Config{
		Outbox: t.TempDir(),
		Jira:   &JiraConfig{BaseURL: js.URL, Email: "jira@example.com", APIToken: "test-token"},
		SMTP: &SMTPConfig{Host: ms.Host, Port: ms.Port, TLS: "none", Username: ms.Username, Password: ms.Password,
			From: "Staircase alerts <alerts@example.com>"},
		Webhooks: []WebhookConfig{{
			Name:    "staircase",
			Secrets: []SecretConfig{{Label: "current", Secret: testSecret}},
			Routes: []RouteConfig{{
				Jira:  &JiraRoute{Project: "CS", Labels: []string{"staircase"}},
				Email: &EmailRoute{To: []string{"csm@example.com"}},
			}},
		}},
	}
	logs := &testenv.Buffer{}
	srv, err := NewServer(cfg, ServerOptions{Inline: true, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	require.NoError(t, err)
	defer srv.Close()
	secret, err := verify.ParseSecret(testSecret)
	require.NoError(t, err)
	now := time.Now()
	post := func(id string, body []byte) response {
		t.Helper()
		now = now.Add(time.Second)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, verifytest.NewRequest(secret, id, now, "/webhooks/staircase", body))
		r := decodeResponse(t, rec)
		r.Status = strconv.Itoa(rec.Code) + " " + r.Status
		return r
	}

	for _, typ := range event.SampleTypes() {
		body, err := event.Sample(typ)
		require.NoError(t, err)
		ev, err := event.Decode(body)
		require.NoError(t, err)
		require.Equal(t, "200 delivered", post(ev.ID, body).Status, typ)
	}
	require.Len(t, js.Issues(), len(event.SampleTypes()))
	require.Len(t, ms.Messages(), len(event.SampleTypes()))

	// Redelivered: nothing new.
	body, err := event.Sample(event.TypeChurnRisk)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, verifytest.NewRequest(secret, "evt_01JD3QX8M2A1B4C6D8E0F2G4H6", now.Add(time.Second), "/webhooks/staircase", body))
	assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader))
	assert.Len(t, js.Issues(), len(event.SampleTypes()))
	assert.Len(t, ms.Messages(), len(event.SampleTypes()))

	// Jira is down for longer than the sink retries (three requests per
	// attempt, package jira's maxAttempts): 503, the email went out; the
	// retry creates exactly one issue and sends nothing more.
	body = eventBody(t, event.TypeRenewal, "evt_outage", nil)
	js.Inject(3, jiratest.Fault{Status: http.StatusServiceUnavailable})
	r := post("evt_outage", body)
	require.Equal(t, "503 retry", r.Status, "%+v", r)
	assert.Equal(t, map[string]string{"staircase.route1.jira": "failed", "staircase.route1.email": "delivered"}, outcomes(r))
	r = post("evt_outage", body)
	require.Equal(t, "200 delivered", r.Status, "%+v", r)
	assert.Equal(t, map[string]string{"staircase.route1.jira": "delivered", "staircase.route1.email": "skipped"}, outcomes(r))
	assert.Len(t, js.Issues(), len(event.SampleTypes())+1)
	assert.Len(t, ms.Messages(), len(event.SampleTypes())+1)

	// The mail server rejects the message for good: 422 and a dead
	// letter; replayed once fixed, only the email is sent.
	body = eventBody(t, event.TypeNoReachOut, "evt_550", nil)
	ms.FailNext(1, 550)
	r = post("evt_550", body)
	require.Equal(t, "422 rejected", r.Status, "%+v", r)
	assert.Contains(t, r.Error.Message, "staircase.route1.email")
	assert.Equal(t, "smtp 550", r.Error.Reason, "the reason class, from the typed SMTP error")
	f, err := os.Open(filepath.Join(cfg.Outbox, DeadLetterFile))
	require.NoError(t, err)
	recs, err := ReadDeadLetters(f)
	f.Close()
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "staircase.route1.email", recs[0].Sink)
	assert.Contains(t, recs[0].Error, "550")
	r = post("evt_550", recs[0].Body)
	require.Equal(t, "200 delivered", r.Status, "%+v", r)
	assert.Equal(t, map[string]string{"staircase.route1.jira": "skipped", "staircase.route1.email": "delivered"}, outcomes(r))
	assert.Len(t, js.Issues(), len(event.SampleTypes())+2)
	assert.Len(t, ms.Messages(), len(event.SampleTypes())+2)
	assert.NotContains(t, logs.String(), "test-token")
	assert.NotContains(t, logs.String(), ms.Password)
}

// TestServerJiraIssuePerProject sends one event to two Jira routes of one
// webhook (projects CS and OPS) and to a second webhook with a route into
// CS: each gets its own issue, although the three share the event id (the
// label names the webhook). A redelivery to a fresh server (empty record
// of done sinks, so only the Jira search can tell) creates nothing.
func TestServerJiraIssuePerProject(t *testing.T) {
	js := jiratest.NewServer(jiratest.Options{Projects: []string{"CS", "OPS"}})
	defer js.Close()
	secrets := []SecretConfig{{Label: "current", Secret: testSecret}}
	cfg := &Config{
		Outbox: t.TempDir(),
		Jira:   &JiraConfig{BaseURL: js.URL, Email: js.Email, APIToken: js.APIToken},
		Webhooks: []WebhookConfig{
			{Name: "staircase", Secrets: secrets, Routes: []RouteConfig{
				{Name: "cs", Jira: &JiraRoute{Project: "CS"}},
				{Name: "ops", Jira: &JiraRoute{Project: "OPS"}},
			}},
			{Name: "second", Secrets: secrets, Routes: []RouteConfig{
				{Name: "cs", Jira: &JiraRoute{Project: "CS"}},
			}},
		},
	}
	secret, err := verify.ParseSecret(testSecret)
	require.NoError(t, err)
	body := eventBody(t, event.TypeChurnRisk, "evt_shared", nil)
	post := func(srv *Server, path string) response {
		t.Helper()
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, verifytest.NewRequest(secret, "evt_shared", time.Now(), path, body))
		r := decodeResponse(t, rec)
		require.Equal(t, http.StatusOK, rec.Code, "%+v", r)
		return r
	}
	newServer := func() *Server {
		srv, err := NewServer(cfg, ServerOptions{Inline: true, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		t.Cleanup(func() { srv.Close() })
		return srv
	}

	srv := newServer()
	r := post(srv, "/webhooks/staircase")
	assert.Equal(t, map[string]string{"staircase.cs.jira": "delivered", "staircase.ops.jira": "delivered"}, outcomes(r))
	issues := js.Issues()
	require.Len(t, issues, 2, "one issue per project")
	assert.Equal(t, []string{"CS", "OPS"}, []string{issues[0].Project, issues[1].Project})
	assert.Equal(t, issues[0].Labels, issues[1].Labels, "the routes of one webhook share the label")

	// Another webhook's copy of the id is another event: a sender holding
	// that webhook's secret must not be able to claim this one's issue.
	r = post(srv, "/webhooks/second")
	assert.Equal(t, map[string]string{"second.cs.jira": "delivered"}, outcomes(r))
	issues = js.Issues()
	require.Len(t, issues, 3, "the second webhook's event gets its own CS issue")
	assert.Equal(t, "CS", issues[2].Project)
	assert.NotEqual(t, issues[0].Labels, issues[2].Labels, "the label names the webhook")

	// A fresh server has no record of done sinks: the labels alone stop
	// every duplicate.
	srv = newServer()
	post(srv, "/webhooks/staircase")
	post(srv, "/webhooks/second")
	assert.Len(t, js.Issues(), 3, "redelivery created nothing")
	assert.Equal(t, 3, js.Requests("/rest/api/3/issue"), "three creates in all")
}

// The 422 names a short reason class derived from the sink error's type,
// and never the destination's text.
func TestServerRejectionReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{func() error {
			// A real 400 from the Jira sink, whose text is the API's.
			js := jiratest.NewServer(jiratest.Options{Projects: []string{"CS"}})
			defer js.Close()
			s, err := jira.New("j", jira.Config{BaseURL: js.URL, Email: js.Email, APIToken: js.APIToken}, jira.Route{Project: "NOPE"}, nil, nil)
			require.NoError(t, err)
			err = s.Deliver(context.Background(), &event.Event{ID: "evt_reason"})
			require.ErrorIs(t, err, ErrPermanent)
			return fmt.Errorf("SECRET-DETAIL: %w", err)
		}(), "jira 400"},
		{Permanent(sink.Classed("smtp 550", errors.New("550 SECRET-DETAIL no such user"))), "smtp 550"},
		{func() error {
			tpl, err := render.ParseText("summary", "{{index .People 99}}")
			require.NoError(t, err)
			_, err = render.Text(tpl, &event.Event{}, MaxTemplateOutput)
			return fmt.Errorf("SECRET-DETAIL: %w", err)
		}(), "template"},
		{Permanent(errors.New("SECRET-DETAIL")), "unclassified"},
	} {
		h := newHarness(t, nil, ServerOptions{})
		h.sink(riskJira).fail(tc.err)
		rec := h.post("evt_reason", eventBody(t, event.TypeChurnRisk, "evt_reason", nil))
		require.Equal(t, http.StatusUnprocessableEntity, rec.Code, rec.Body.String())
		r := decodeResponse(t, rec)
		assert.Equal(t, tc.want, r.Error.Reason, tc.err.Error())
		assert.Contains(t, r.Error.Message, "("+tc.want+")")
		for _, s := range r.Sinks {
			if s.Name == riskJira {
				assert.Equal(t, tc.want, s.Reason)
			} else {
				assert.Empty(t, s.Reason)
			}
		}
		assert.NotContains(t, rec.Body.String(), "SECRET-DETAIL")
	}
}
