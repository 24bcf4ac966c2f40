package receiver

import (
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
)

// customConfig routes churn_risk to the dry-run Jira sink and the "slack"
// sink, and every event to "slack" and "pager"; a second webhook "other"
// also names "slack".
func customConfig(outbox string) *Config {
	return &Config{
		Outbox: outbox,
		Webhooks: []WebhookConfig{
			{
				Name:    "staircase",
				Secrets: []SecretConfig{{Secret: testSecret}},
				Routes: []RouteConfig{
					{Name: "risk", When: Match{Types: []string{event.TypeChurnRisk}}, Jira: &JiraRoute{Project: "CS"}, Sinks: []string{"slack"}},
					{Name: "all", Sinks: []string{"slack", "pager"}},
				},
			},
			{
				Name:    "other",
				Secrets: []SecretConfig{{Secret: testSecret}},
				Routes:  []RouteConfig{{Sinks: []string{"slack"}}},
			},
		},
	}
}

const customJira = "staircase.risk.jira"

// newCustomHarness serves customConfig with the given sinks of the user,
// keeping the dry-run Jira sink real (the outbox shows whether it ran).
func newCustomHarness(t *testing.T, sinks ...Sink) *harness {
	t.Helper()
	h := &harness{t: t, now: time.Unix(1_795_000_000, 0), logs: &testenv.Buffer{}, outbox: t.TempDir()}
	var err error
	h.secret, err = verify.ParseSecret(testSecret)
	require.NoError(t, err)
	h.srv, err = NewServer(customConfig(h.outbox), ServerOptions{Inline: true,
		Logger: slog.New(slog.NewJSONHandler(h.logs, nil)),
		Now:    func() time.Time { return h.now },
		Sinks:  sinks,
	})
	require.NoError(t, err)
	t.Cleanup(func() { h.srv.Close() })
	return h
}

// sinkNames lists the sinks of a response in order.
func sinkNames(r response) []string {
	var names []string
	for _, s := range r.Sinks {
		names = append(names, s.Name)
	}
	return names
}

func TestCustomSinkRunsOncePerEvent(t *testing.T) {
	slack, pager := &fakeSink{name: "slack"}, &fakeSink{name: "pager"}
	h := newCustomHarness(t, slack, pager)
	body := eventBody(t, event.TypeChurnRisk, "evt_c1", nil)

	rec := h.post("evt_c1", body)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	r := decodeResponse(t, rec)
	// Both routes of the webhook name slack: it runs once, where the first
	// route puts it.
	assert.Equal(t, []string{customJira, "slack", "pager"}, sinkNames(r))
	assert.Equal(t, map[string]string{customJira: "delivered", "slack": "delivered", "pager": "delivered"}, outcomes(r))
	assert.Equal(t, []string{"evt_c1"}, slack.ids())
	assert.Equal(t, []string{"evt_c1"}, pager.ids())
	// The dry-run file is <event id>-<sink>.json: both names are safe as
	// they are.
	assert.FileExists(t, filepath.Join(h.outbox, "jira", "evt_c1-"+customJira+".json"))

	// A redelivery runs nothing.
	h.now = h.now.Add(time.Second)
	rec = h.post("evt_c1", body)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader))
	assert.Len(t, slack.ids(), 1)

	// The same event id on another webhook naming slack is another
	// delivery: the record is per webhook, as the middleware's ids are, so
	// one webhook's sender cannot mark an event done for another.
	rec = h.postTo("/webhooks/other", "evt_c1", body)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, map[string]string{"slack": "delivered"}, outcomes(decodeResponse(t, rec)))
	assert.Len(t, slack.ids(), 2)
	// And its redelivery there runs nothing.
	h.now = h.now.Add(time.Second)
	rec = h.postTo("/webhooks/other", "evt_c1", body)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader))
	assert.Len(t, slack.ids(), 2)

	// Another type matches only the second route.
	rec = h.post("evt_c2", eventBody(t, event.TypeRenewal, "evt_c2", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, []string{"slack", "pager"}, sinkNames(decodeResponse(t, rec)))
	assert.Equal(t, []string{"evt_c1", "evt_c1", "evt_c2"}, slack.ids())
}

func TestCustomSinkTransientFailure(t *testing.T) {
	slack, pager := &fakeSink{name: "slack"}, &fakeSink{name: "pager"}
	h := newCustomHarness(t, slack, pager)
	body := eventBody(t, event.TypeChurnRisk, "evt_t", nil)
	slack.fail(errors.New("slack: 500 SLACK-DETAIL"))

	rec := h.post("evt_t", body)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	assert.Equal(t, "5", rec.Header().Get("Retry-After"))
	r := decodeResponse(t, rec)
	assert.Equal(t, "sink_unavailable", r.Error.Code)
	assert.Equal(t, map[string]string{customJira: "delivered", "slack": "failed", "pager": "delivered"}, outcomes(r))
	// Named by two routes, the failed sink was not tried a second time
	// within the delivery.
	assert.Len(t, slack.ids(), 1)
	assert.NotContains(t, rec.Body.String(), "SLACK-DETAIL")
	assert.Contains(t, h.logs.String(), "SLACK-DETAIL")

	// The retry runs only the failed sink: the dry-run Jira file, removed
	// here, is not written again.
	jiraFile := filepath.Join(h.outbox, "jira", "evt_t-"+customJira+".json")
	require.NoError(t, os.Remove(jiraFile))
	h.now = h.now.Add(5 * time.Second)
	rec = h.post("evt_t", body)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, map[string]string{customJira: "skipped", "slack": "delivered", "pager": "skipped"}, outcomes(decodeResponse(t, rec)))
	assert.NoFileExists(t, jiraFile)
	assert.Len(t, slack.ids(), 2)
	assert.Len(t, pager.ids(), 1)
	assert.NoFileExists(t, filepath.Join(h.outbox, DeadLetterFile))
}

func TestCustomSinkRetryAfter(t *testing.T) {
	slack, pager := &fakeSink{name: "slack"}, &fakeSink{name: "pager"}
	h := newCustomHarness(t, slack, pager)
	slack.fail(&RetryAfterError{Err: errors.New("slack: 429"), After: 41200 * time.Millisecond})
	rec := h.post("evt_ra", eventBody(t, event.TypeRenewal, "evt_ra", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	assert.Equal(t, "42", rec.Header().Get("Retry-After"), "rounded up to whole seconds")
	assert.Equal(t, map[string]string{"slack": "failed", "pager": "delivered"}, outcomes(decodeResponse(t, rec)))
}

func TestCustomSinkPermanentFailure(t *testing.T) {
	slack, pager := &fakeSink{name: "slack"}, &fakeSink{name: "pager"}
	h := newCustomHarness(t, slack, pager)
	body := eventBody(t, event.TypeChurnRisk, "evt_p", nil)
	pager.fail(Permanent(errors.New("pager: unknown service PAGER-DETAIL")))

	rec := h.post("evt_p", body)
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code, rec.Body.String())
	r := decodeResponse(t, rec)
	assert.Equal(t, "sink_rejected", r.Error.Code)
	assert.Equal(t, "unclassified", r.Error.Reason)
	assert.Contains(t, r.Error.Message, "sink pager rejected the event (unclassified)")
	assert.NotContains(t, rec.Body.String(), "PAGER-DETAIL")
	assert.Equal(t, map[string]string{customJira: "delivered", "slack": "delivered", "pager": "rejected"}, outcomes(r))

	f, err := os.Open(filepath.Join(h.outbox, DeadLetterFile))
	require.NoError(t, err)
	defer f.Close()
	recs, err := ReadDeadLetters(f)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "pager", recs[0].Sink)
	assert.Equal(t, "staircase", recs[0].Webhook)
	assert.Equal(t, "evt_p", recs[0].EventID)
	assert.Contains(t, recs[0].Error, "PAGER-DETAIL")

	// A replay of the dead letter (what `stairhook deadletter replay`
	// sends) runs only the rejected sink.
	h.now = h.now.Add(time.Hour)
	rec = h.post("evt_p", recs[0].Body)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, map[string]string{customJira: "skipped", "slack": "skipped", "pager": "delivered"}, outcomes(decodeResponse(t, rec)))
	assert.Len(t, slack.ids(), 1)
	assert.Len(t, pager.ids(), 2)
}

func TestCustomSinkPanicIsClassified(t *testing.T) {
	slack, pager := &fakeSink{name: "slack"}, &fakeSink{name: "pager", panics: true}
	h := newCustomHarness(t, slack, pager)
	rec := h.post("evt_x", eventBody(t, event.TypeRenewal, "evt_x", nil))
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code, rec.Body.String())
	assert.Equal(t, "panic", decodeResponse(t, rec).Error.Reason)
}

// TestCustomSinkNameReadOnce: a Name that changes after NewServer does not
// move the sink's records.
func TestCustomSinkNameReadOnce(t *testing.T) {
	slack, pager := &fakeSink{name: "slack"}, &fakeSink{name: "pager"}
	h := newCustomHarness(t, slack, pager)
	slack.name = "renamed"
	rec := h.post("evt_n", eventBody(t, event.TypeRenewal, "evt_n", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, []string{"slack", "pager"}, sinkNames(decodeResponse(t, rec)))
}

func TestCustomSinkUnusedIsLogged(t *testing.T) {
	h := newCustomHarness(t, &fakeSink{name: "slack"}, &fakeSink{name: "pager"}, &fakeSink{name: "spare.one"})
	assert.Contains(t, h.logs.String(), `"sink":"spare.one"`)
	assert.NotContains(t, h.logs.String(), `"sink":"pager"`)
}

func TestNewServerChecksCustomSinks(t *testing.T) {
	cfg := customConfig(t.TempDir())
	cfg.Webhooks[0].Routes[1].Sinks = []string{"slack", "missing", "pager", "Bad", "slack"}
	var nilSink *fakeSink // its Name panics
	_, err := NewServer(cfg, ServerOptions{Inline: true,
		Logger: slog.New(slog.DiscardHandler),
		Sinks: []Sink{
			&fakeSink{name: "slack"},
			nil,
			&fakeSink{name: "slack"},
			&fakeSink{name: "staircase.all.email"}, // a built-in name, though route "all" has no email
			&fakeSink{name: "Not/A-NAME"},
			nilSink,
			&fakeSink{name: strings.Repeat("a", 129)},
			&fakeSink{name: ""},
		},
	})
	require.ErrorIs(t, err, ErrInvalidConfig)
	var joined interface{ Unwrap() []error }
	require.ErrorAs(t, err, &joined)
	for _, e := range joined.Unwrap() {
		assert.ErrorIs(t, e, ErrInvalidConfig)
	}
	assert.Equal(t, strings.Join([]string{
		`webhooks[0].routes[1].sinks[3]: must be 1 to 128 of a-z, 0-9, _, - and . (the Name of a sink in ServerOptions.Sinks)`,
		`webhooks[0].routes[1].sinks[4]: "slack" is listed twice in this route`,
		`ServerOptions.Sinks[1]: is nil`,
		`ServerOptions.Sinks[2].Name(): "slack" is also the name of ServerOptions.Sinks[0]`,
		`ServerOptions.Sinks[3].Name(): "staircase.all.email" is the name of a sink built from the configuration (<webhook>.<route>.<kind>, the kind one of jira, email, slack, teams, forward)`,
		`ServerOptions.Sinks[4].Name(): must be 1 to 128 of a-z, 0-9, _, - and .`,
		`ServerOptions.Sinks[5]: its Name method panicked (a nil pointer?)`,
		`ServerOptions.Sinks[6].Name(): must be 1 to 128 of a-z, 0-9, _, - and .`,
		`ServerOptions.Sinks[7].Name(): must be 1 to 128 of a-z, 0-9, _, - and .`,
		`webhooks[0].routes[1].sinks[1]: no sink named "missing" in ServerOptions.Sinks`,
		`webhooks[0].routes[1].sinks[2]: no sink named "pager" in ServerOptions.Sinks`,
	}, "\n"), err.Error())
}

func TestNewServerNeedsTheNamedSinks(t *testing.T) {
	// A config naming sinks, run without them (as `stairhook serve` would):
	// every reference is reported.
	_, err := NewServer(customConfig(t.TempDir()), ServerOptions{Inline: true, Logger: slog.New(slog.DiscardHandler)})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Equal(t, strings.Join([]string{
		`webhooks[0].routes[0].sinks[0]: no sink named "slack" in ServerOptions.Sinks`,
		`webhooks[0].routes[1].sinks[0]: no sink named "slack" in ServerOptions.Sinks`,
		`webhooks[0].routes[1].sinks[1]: no sink named "pager" in ServerOptions.Sinks`,
		`webhooks[1].routes[0].sinks[0]: no sink named "slack" in ServerOptions.Sinks`,
	}, "\n"), err.Error())
}

func TestParseConfigSinks(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
webhooks:
  - name: staircase
    secrets: [{secret: "${S}"}]
    routes:
      - when: {types: [churn_risk]}
        sinks: [slack, ops.pager]
`), env(map[string]string{"S": testSecret}))
	require.NoError(t, err)
	assert.Equal(t, []string{"slack", "ops.pager"}, cfg.Webhooks[0].Routes[0].Sinks)

	_, err = ParseConfig([]byte(`
webhooks:
  - name: staircase
    secrets: [{secret: "${S}"}]
    routes:
      - sinks: [slack, "", slack, "a/b"]
      - sinks: []
      - when: {types: [renewal]}
`), env(map[string]string{"S": testSecret}))
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Equal(t, strings.Join([]string{
		`webhooks[0].routes[0].sinks[1]: must be 1 to 128 of a-z, 0-9, _, - and . (the Name of a sink in ServerOptions.Sinks)`,
		`webhooks[0].routes[0].sinks[2]: "slack" is listed twice in this route`,
		`webhooks[0].routes[0].sinks[3]: must be 1 to 128 of a-z, 0-9, _, - and . (the Name of a sink in ServerOptions.Sinks)`,
		`webhooks[0].routes[1]: needs at least one sink (jira, email, slack, teams, forward or sinks)`,
		`webhooks[0].routes[2]: needs at least one sink (jira, email, slack, teams, forward or sinks)`,
	}, "\n"), err.Error())
}
