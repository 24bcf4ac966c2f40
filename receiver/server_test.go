package receiver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// fakeSink records its calls and answers from a script.
type fakeSink struct {
	name string

	mu      sync.Mutex
	calls   []*event.Event
	results []error // one per call, in order; nil or exhausted means success
	hold    chan struct{}
	entered chan struct{}
	panics  bool
}

func (f *fakeSink) Name() string { return f.name }

func (f *fakeSink) Deliver(ctx context.Context, ev *event.Event) error {
	f.mu.Lock()
	f.calls = append(f.calls, ev)
	var err error
	if len(f.results) > 0 {
		err, f.results = f.results[0], f.results[1:]
	}
	hold, entered := f.hold, f.entered
	f.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.panics {
		panic("boom")
	}
	return err
}

func (f *fakeSink) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, ev := range f.calls {
		ids = append(ids, ev.ID)
	}
	return ids
}

func (f *fakeSink) fail(errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.results = append(f.results, errs...)
}

// testConfig routes churn_risk to a jira and an email sink, and events
// naming a decision-maker to a second email sink.
func testConfig(outbox string) *Config {
	return &Config{
		Outbox: outbox,
		Webhooks: []WebhookConfig{{
			Name:    "staircase",
			Secrets: []SecretConfig{{Label: "current", Secret: testSecret}},
			Routes: []RouteConfig{
				{Name: "risk", When: Match{Types: []string{event.TypeChurnRisk}},
					Jira:  &JiraRoute{Project: "CS"},
					Email: &EmailRoute{To: []string{"csm@example.com"}}},
				{Name: "people", When: Match{Roles: []string{"decision_maker"}},
					Email: &EmailRoute{To: []string{"csm@example.com"}}},
			},
		}},
	}
}

type harness struct {
	t      *testing.T
	srv    *Server
	secret verify.Secret
	now    time.Time
	logs   *testenv.Buffer
	outbox string
	sinks  map[string]*fakeSink
}

// newHarness builds a Server for cfg (testConfig when nil) and replaces
// every sink by a fakeSink of the same name.
func newHarness(t *testing.T, cfg *Config, opts ServerOptions) *harness {
	t.Helper()
	h := &harness{t: t, now: time.Unix(1_795_000_000, 0), logs: &testenv.Buffer{}, outbox: t.TempDir(), sinks: map[string]*fakeSink{}}
	if cfg == nil {
		cfg = testConfig(h.outbox)
	}
	var err error
	h.secret, err = verify.ParseSecret(testSecret)
	require.NoError(t, err)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(h.logs, nil))
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return h.now }
	}
	// These tests are of inline mode (the sinks inside the request, as on
	// AWS Lambda); queue_test.go has the queued path's.
	opts.Inline = true
	h.srv, err = NewServer(cfg, opts)
	require.NoError(t, err)
	t.Cleanup(func() { h.srv.Close() })
	for _, wh := range h.srv.hooks {
		for i := range wh.routes {
			for j, s := range wh.routes[i].sinks {
				f := &fakeSink{name: s.Name()}
				h.sinks[f.name] = f
				wh.routes[i].sinks[j] = f
			}
		}
	}
	return h
}

func (h *harness) sink(name string) *fakeSink {
	h.t.Helper()
	f, ok := h.sinks[name]
	require.True(h.t, ok, "no sink %s", name)
	return f
}

// event returns the sample of typ with its id set and edit applied.
func eventBody(t testing.TB, typ, id string, edit func(map[string]any)) []byte {
	t.Helper()
	body, err := event.Sample(typ)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	m["id"] = id
	if edit != nil {
		edit(m)
	}
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

// post signs body with id and serves it on /webhooks/staircase.
func (h *harness) post(id string, body []byte) *httptest.ResponseRecorder {
	return h.postTo("/webhooks/staircase", id, body)
}

func (h *harness) postTo(path, id string, body []byte) *httptest.ResponseRecorder {
	req := verifytest.NewRequest(h.secret, id, h.now, path, body)
	rec := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(rec, req)
	return rec
}

type response struct {
	Status string `json:"status"`
	Error  struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
	} `json:"error"`
	Sinks []struct {
		Name    string `json:"name"`
		Outcome string `json:"outcome"`
		Reason  string `json:"reason"`
		Error   string `json:"error"`
	} `json:"sinks"`
}

func decodeResponse(t *testing.T, rec *httptest.ResponseRecorder) response {
	t.Helper()
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var r response
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &r), rec.Body.String())
	return r
}

func outcomes(r response) map[string]string {
	m := map[string]string{}
	for _, s := range r.Sinks {
		m[s.Name] = s.Outcome
	}
	return m
}

const (
	riskJira    = "staircase.risk.jira"
	riskEmail   = "staircase.risk.email"
	peopleEmail = "staircase.people.email"
)

func TestServerDelivers(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	// The churn_risk sample names a decision-maker: both routes match.
	rec := h.post("evt_a", eventBody(t, event.TypeChurnRisk, "evt_a", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	r := decodeResponse(t, rec)
	assert.Equal(t, "delivered", r.Status)
	assert.Equal(t, map[string]string{riskJira: "delivered", riskEmail: "delivered", peopleEmail: "delivered"}, outcomes(r))
	assert.Equal(t, []string{riskJira, riskEmail, peopleEmail}, []string{r.Sinks[0].Name, r.Sinks[1].Name, r.Sinks[2].Name}, "configuration order")
	for _, name := range []string{riskJira, riskEmail, peopleEmail} {
		assert.Equal(t, []string{"evt_a"}, h.sink(name).ids())
	}
	ev := h.sink(riskJira).calls[0]
	assert.Equal(t, "Acme Corp", ev.Account.Name)
	assert.NotEmpty(t, ev.Raw)

	// One log line for the delivery, with what an operator needs.
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		require.NoError(t, json.Unmarshal([]byte(l), &line))
		if line["msg"] == "delivery" {
			break
		}
	}
	assert.Equal(t, "delivery", line["msg"])
	assert.Equal(t, "evt_a", line["id"])
	assert.Equal(t, event.TypeChurnRisk, line["type"])
	assert.Equal(t, "acc_01J9Z3K7QK2V8M4N6P0R2T4V6X", line["account"])
	assert.Equal(t, "current", line["key"])
	assert.Equal(t, "staircase", line["webhook"])
	assert.EqualValues(t, 200, line["status"])
	assert.Equal(t, map[string]any{riskJira: "delivered", riskEmail: "delivered", peopleEmail: "delivered"}, line["sinks"])
	assert.Contains(t, line, "duration_ms")

	// Redelivered after success: the middleware answers, no sink runs.
	h.now = h.now.Add(time.Minute)
	rec = h.post("evt_a", eventBody(t, event.TypeChurnRisk, "evt_a", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader))
	for _, name := range []string{riskJira, riskEmail, peopleEmail} {
		assert.Len(t, h.sink(name).ids(), 1, name)
	}
	// The redelivery gets its own line too, though the middleware
	// answered it.
	var deliveries []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		if m["msg"] == "delivery" {
			deliveries = append(deliveries, m)
		}
	}
	require.Len(t, deliveries, 2, h.logs.String())
	dup := deliveries[1]
	assert.Equal(t, "duplicate", dup["outcome"])
	assert.Equal(t, "evt_a", dup["id"])
	assert.Equal(t, "staircase", dup["webhook"])
	assert.EqualValues(t, 200, dup["status"])
	assert.Contains(t, dup, "duration_ms")
}

func TestSignedID(t *testing.T) {
	h := http.Header{}
	h.Set("X-Staircase-Id", "evt_unsigned")
	h.Set("Webhook-Id", "evt_std")
	h.Set("Webhook-Signature", "v1,x")
	assert.Equal(t, "evt_std", signedID(h), "the id of the family whose signature is present")
	h.Set("X-Staircase-Signature", "v1,x")
	assert.Equal(t, "evt_unsigned", signedID(h), "x-staircase-* first, as the verifier")
}

func TestServerRouting(t *testing.T) {
	noPeople := func(m map[string]any) { m["people"] = []any{} }
	tests := []struct {
		name  string
		typ   string
		edit  func(map[string]any)
		sinks []string
		test  bool
	}{
		{"type and role", event.TypeChurnRisk, nil, []string{riskJira, riskEmail, peopleEmail}, false},
		{"type only", event.TypeChurnRisk, noPeople, []string{riskJira, riskEmail}, false},
		{"role only", event.TypeAccountPersonnelChange, nil, []string{peopleEmail}, false},
		{"role case ignored", event.TypeRenewal, func(m map[string]any) {
			m["people"] = []any{map[string]any{"name": "X", "role": "Decision_Maker"}}
		}, []string{peopleEmail}, false},
		{"unknown type with a decision-maker", event.TypeRenewal, func(m map[string]any) { m["type"] = "brand_new_type" }, []string{peopleEmail}, false},
		{"test event goes through the same routes", event.TypeChurnRisk, func(m map[string]any) { m["test"] = true; noPeople(m) }, []string{riskJira, riskEmail}, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, ServerOptions{})
			id := fmt.Sprintf("evt_route_%d", i)
			rec := h.post(id, eventBody(t, tt.typ, id, tt.edit))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			var called []string
			for _, name := range []string{riskJira, riskEmail, peopleEmail} {
				if len(h.sink(name).ids()) > 0 {
					called = append(called, name)
					assert.Equal(t, tt.test, h.sink(name).calls[0].Test)
				}
			}
			assert.Equal(t, tt.sinks, called)
		})
	}

	t.Run("no route matches", func(t *testing.T) {
		h := newHarness(t, nil, ServerOptions{})
		rec := h.post("evt_x", eventBody(t, event.TypeRenewal, "evt_x", noPeople))
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, "ignored", decodeResponse(t, rec).Status)
		for _, f := range h.sinks {
			assert.Empty(t, f.ids())
		}
	})
}

func TestServerPartialFailureRetry(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	body := eventBody(t, event.TypeChurnRisk, "evt_p", nil)
	h.sink(riskEmail).fail(errors.New("smtp: 451 try again later"))

	rec := h.post("evt_p", body)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "5", rec.Header().Get("Retry-After"))
	r := decodeResponse(t, rec)
	assert.Equal(t, "retry", r.Status)
	assert.Equal(t, "sink_unavailable", r.Error.Code)
	assert.Equal(t, map[string]string{riskJira: "delivered", riskEmail: "failed", peopleEmail: "delivered"}, outcomes(r))

	// The sender retries: only the failed sink runs.
	h.now = h.now.Add(5 * time.Second)
	rec = h.post("evt_p", body)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, map[string]string{riskJira: "skipped", riskEmail: "delivered", peopleEmail: "skipped"}, outcomes(decodeResponse(t, rec)))
	assert.Len(t, h.sink(riskJira).ids(), 1)
	assert.Len(t, h.sink(riskEmail).ids(), 2)
	assert.Len(t, h.sink(peopleEmail).ids(), 1)
	_, err := os.Stat(filepath.Join(h.outbox, DeadLetterFile))
	assert.ErrorIs(t, err, os.ErrNotExist, "no dead letter for a transient failure")
}

func TestServerRetryAfter(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	h.sink(riskJira).fail(&RetryAfterError{Err: errors.New("jira 429"), After: 30 * time.Second})
	h.sink(riskEmail).fail(&RetryAfterError{Err: errors.New("smtp 421"), After: 1500 * time.Millisecond})
	rec := h.post("evt_r", eventBody(t, event.TypeChurnRisk, "evt_r", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "30", rec.Header().Get("Retry-After"), "the longest delay asked")

	h.sink(riskJira).fail(&RetryAfterError{Err: errors.New("jira 429"), After: 48 * time.Hour})
	rec = h.post("evt_r2", eventBody(t, event.TypeChurnRisk, "evt_r2", nil))
	assert.Equal(t, "3600", rec.Header().Get("Retry-After"), "capped")
}

func TestServerPermanentFailure(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	body := eventBody(t, event.TypeChurnRisk, "evt_d", nil)
	h.sink(riskEmail).fail(Permanent(errors.New("smtp: 550 no such user")))

	rec := h.post("evt_d", body)
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code, rec.Body.String())
	r := decodeResponse(t, rec)
	assert.Equal(t, "rejected", r.Status)
	assert.Equal(t, "sink_rejected", r.Error.Code)
	assert.Contains(t, r.Error.Message, riskEmail)
	assert.NotContains(t, rec.Body.String(), "550 no such user", "the sink's error text stays in the log and the dead letter")
	assert.Equal(t, map[string]string{riskJira: "delivered", riskEmail: "rejected", peopleEmail: "delivered"}, outcomes(r))

	path := filepath.Join(h.outbox, DeadLetterFile)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	recs, err := ReadDeadLetters(f)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "evt_d", recs[0].EventID)
	assert.Equal(t, "staircase", recs[0].Webhook)
	assert.Equal(t, riskEmail, recs[0].Sink)
	assert.Contains(t, recs[0].Error, "550 no such user")
	assert.True(t, recs[0].Time.Equal(h.now))
	assert.JSONEq(t, string(body), string(recs[0].Body))

	// A replay of the dead letter once fixed runs only the rejected sink.
	h.now = h.now.Add(time.Hour)
	rec = h.post("evt_d", recs[0].Body)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, map[string]string{riskJira: "skipped", riskEmail: "delivered", peopleEmail: "skipped"}, outcomes(decodeResponse(t, rec)))
}

func TestServerTransientWinsOverPermanent(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	h.sink(riskJira).fail(Permanent(errors.New("jira 400: project does not exist")))
	h.sink(riskEmail).fail(errors.New("connection reset"))
	rec := h.post("evt_m", eventBody(t, event.TypeChurnRisk, "evt_m", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	_, err := os.Stat(filepath.Join(h.outbox, DeadLetterFile))
	assert.ErrorIs(t, err, os.ErrNotExist, "dead letters only with the 422")
}

func TestServerSinkPanic(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	h.sink(riskJira).panics = true
	rec := h.post("evt_panic", eventBody(t, event.TypeChurnRisk, "evt_panic", nil))
	require.Equal(t, http.StatusUnprocessableEntity, rec.Code)
	assert.Equal(t, "sink_rejected", decodeResponse(t, rec).Error.Code)
	assert.NotContains(t, rec.Body.String(), "panicked")
	h.sink(riskJira).panics = false
	h.now = h.now.Add(time.Second)
	rec = h.post("evt_panic", eventBody(t, event.TypeChurnRisk, "evt_panic", nil))
	require.Equal(t, http.StatusOK, rec.Code, "the reservation was released")
	assert.Len(t, h.sink(riskJira).ids(), 2)
}

func TestServerDeadLetterWriteFails(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	// The outbox is a file, so the dead-letter file cannot be created.
	blocker := filepath.Join(h.outbox, "blocker")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	h.srv.deadLetters.path = filepath.Join(blocker, DeadLetterFile)
	h.sink(riskEmail).fail(Permanent(errors.New("550")))
	rec := h.post("evt_dl", eventBody(t, event.TypeChurnRisk, "evt_dl", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "dead_letter_unavailable", decodeResponse(t, rec).Error.Code)
	assert.NotEmpty(t, rec.Header().Get("Retry-After"))
}

func TestServerBadRequests(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		id     string
		body   string
		status int
		code   string
	}{
		{"not JSON", "/webhooks/staircase", "evt_1", "hello", 400, "invalid_event"},
		{"missing account.id", "/webhooks/staircase", "evt_1", `{"id":"evt_1","type":"churn_risk","account":{}}`, 400, "invalid_event"},
		{"missing id", "/webhooks/staircase", "evt_1", `{"type":"churn_risk","account":{"id":"a"}}`, 400, "invalid_event"},
		{"too deep", "/webhooks/staircase", "evt_1", withField(`"x":` + nested(40)), 400, "invalid_event"},
		{"id differs from the signed id", "/webhooks/staircase", "evt_signed", `{"id":"evt_other","type":"churn_risk","account":{"id":"a"}}`, 400, "id_mismatch"},
		{"unknown webhook", "/webhooks/other", "evt_1", minimalEvent, 404, "unknown_webhook"},
		{"no such path", "/hooks/staircase", "evt_1", minimalEvent, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, ServerOptions{})
			rec := h.postTo(tt.path, tt.id, []byte(tt.body))
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			r := decodeResponse(t, rec)
			assert.Equal(t, tt.code, r.Error.Code)
			assert.NotEmpty(t, r.Error.Message)
			for _, f := range h.sinks {
				assert.Empty(t, f.ids())
			}
			if tt.status == 400 {
				// The id was released: a corrected retry is processed.
				h.now = h.now.Add(time.Second)
				rec = h.post(tt.id, eventBody(t, event.TypeChurnRisk, tt.id, nil))
				assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			}
		})
	}

	t.Run("unsigned", func(t *testing.T) {
		h := newHarness(t, nil, ServerOptions{})
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/webhooks/staircase", strings.NewReader(minimalEvent)))
		assert.Equal(t, http.StatusBadRequest, rec.Code)
		assert.Equal(t, "missing_signature", decodeResponse(t, rec).Error.Code)
	})
	for _, tt := range []struct{ method, path, allow string }{
		{http.MethodGet, "/webhooks/staircase", "POST"},
		{http.MethodPut, "/webhooks/other", "POST"},
		{http.MethodPost, "/healthz", "GET, HEAD"},
		{http.MethodDelete, "/healthz", "GET, HEAD"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			h := newHarness(t, nil, ServerOptions{})
			rec := httptest.NewRecorder()
			h.srv.Handler().ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
			assert.Equal(t, tt.allow, rec.Header().Get("Allow"), "a 405 must list the allowed methods")
			assert.Equal(t, "method_not_allowed", decodeResponse(t, rec).Error.Code)
		})
	}
}

// flakyStore fails the calls selected by its flags on ledger keys.
type flakyStore struct {
	verify.Store
	failReserve, failDone atomic.Bool
	pingErr               error
}

var errStoreDown = errors.New("store down")

func (s *flakyStore) Reserve(ctx context.Context, key string, ttl time.Duration) (verify.Reservation, verify.State, error) {
	if strings.HasPrefix(key, "sink/") && s.failReserve.Load() {
		return verify.Reservation{}, verify.StateNew, errStoreDown
	}
	return s.Store.Reserve(ctx, key, ttl)
}

func (s *flakyStore) Done(ctx context.Context, r verify.Reservation, ttl time.Duration) error {
	if strings.HasPrefix(r.Key, "sink/") && s.failDone.Load() {
		return errStoreDown
	}
	return s.Store.Done(ctx, r, ttl)
}

func (s *flakyStore) Ping(context.Context) error { return s.pingErr }

func TestServerLedgerStoreFailure(t *testing.T) {
	store := &flakyStore{Store: verify.NewMemoryStore(verify.MemoryStoreOptions{})}
	h := newHarness(t, nil, ServerOptions{Store: store})
	body := eventBody(t, event.TypeChurnRisk, "evt_s", nil)

	store.failReserve.Store(true)
	rec := h.post("evt_s", body)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "store_unavailable", decodeResponse(t, rec).Error.Code)
	for _, f := range h.sinks {
		assert.Empty(t, f.ids(), "fail closed: no sink runs without its record")
	}

	// Done fails after the sink succeeded: 503, and the reservation is
	// kept, so the retry does not run the sink again at once.
	store.failReserve.Store(false)
	store.failDone.Store(true)
	h.now = h.now.Add(time.Second)
	rec = h.post("evt_s", body)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "store_unavailable", decodeResponse(t, rec).Error.Code)
	assert.Len(t, h.sink(riskJira).ids(), 1)

	store.failDone.Store(false)
	h.now = h.now.Add(time.Second)
	rec = h.post("evt_s", body)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, map[string]string{riskJira: "in_flight", riskEmail: "in_flight", peopleEmail: "in_flight"}, outcomes(decodeResponse(t, rec)))
	assert.Len(t, h.sink(riskJira).ids(), 1)
}

// TestServerLedgerFull checks the in-memory default: a full record of done
// sinks forgets the oldest rather than refuse new events, while the ids
// stay in their own store and are not forgotten.
func TestServerLedgerFull(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{ledgerEntries: 2})
	const events = 5 // three sinks each: far past the capacity
	for i := range events {
		id := fmt.Sprintf("evt_full%d", i)
		rec := h.post(id, eventBody(t, event.TypeChurnRisk, id, nil))
		require.Equal(t, http.StatusOK, rec.Code, "event %d: %s", i, rec.Body.String())
		assert.Equal(t, map[string]string{riskJira: "delivered", riskEmail: "delivered", peopleEmail: "delivered"}, outcomes(decodeResponse(t, rec)))
		h.now = h.now.Add(time.Second)
	}
	// The first event's sink records are gone, its id is not: a
	// redelivery is still answered as a duplicate and runs no sink.
	rec := h.post("evt_full0", eventBody(t, event.TypeChurnRisk, "evt_full0", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader))
	for _, name := range []string{riskJira, riskEmail, peopleEmail} {
		assert.Len(t, h.sink(name).ids(), events, name)
	}
}

func TestServerHealth(t *testing.T) {
	store := &flakyStore{Store: verify.NewMemoryStore(verify.MemoryStoreOptions{})}
	h := newHarness(t, nil, ServerOptions{Store: store})
	get := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		return rec
	}
	rec := get()
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "ok", decodeResponse(t, rec).Status)
	store.pingErr = errStoreDown
	rec = get()
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "store_unavailable", decodeResponse(t, rec).Error.Code)
}

func TestServerHealthIDStoreFull(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{idEntries: 2})
	health := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		return rec
	}
	for _, id := range []string{"evt_h1", "evt_h2"} {
		require.Equal(t, http.StatusOK, health().Code, "room left before %s", id)
		require.Equal(t, http.StatusOK, h.post(id, eventBody(t, event.TypeChurnRisk, id, nil)).Code)
	}
	rec := health()
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "store_full", decodeResponse(t, rec).Error.Code)
	assert.Equal(t, http.StatusServiceUnavailable, h.post("evt_h3", eventBody(t, event.TypeChurnRisk, "evt_h3", nil)).Code,
		"the middleware refuses new ids, as the health check says")
	assert.Equal(t, http.StatusServiceUnavailable, health().Code, "the probe took no room")

	// The ids expire: healthy again, although no request has dropped them.
	h.now = h.now.Add(time.Hour)
	assert.Equal(t, http.StatusOK, health().Code)
	assert.Equal(t, http.StatusOK, h.post("evt_h3", eventBody(t, event.TypeChurnRisk, "evt_h3", nil)).Code)
}

func TestServerConcurrentDuplicates(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	hold := make(chan struct{})
	h.sink(riskJira).hold = hold
	body := eventBody(t, event.TypeChurnRisk, "evt_c", nil)

	const n = 16
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- h.post("evt_c", body).Code
		}()
	}
	// All but the one holding the id are answered while it still runs.
	for range n - 1 {
		assert.Equal(t, http.StatusConflict, <-codes)
	}
	close(hold)
	wg.Wait()
	assert.Equal(t, http.StatusOK, <-codes)
	for _, name := range []string{riskJira, riskEmail, peopleEmail} {
		assert.Len(t, h.sink(name).ids(), 1, name)
	}
}

// serve runs the server on a loopback listener until the returned cancel.
func (h *harness) serve() (url string, cancel context.CancelFunc, done chan error) {
	h.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(h.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() { done <- h.srv.Serve(ctx, l) }()
	h.t.Cleanup(cancel)
	return "http://" + l.Addr().String(), cancel, done
}

func (h *harness) send(url, id string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url+"/webhooks/staircase", bytes.NewReader(body))
	require.NoError(h.t, err)
	for k, v := range verifytest.SignedHeaders(h.secret, id, h.now, body) {
		req.Header[k] = v
	}
	return http.DefaultClient.Do(req)
}

func TestServerGracefulShutdown(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{ShutdownTimeout: 30 * time.Second})
	hold, entered := make(chan struct{}), make(chan struct{}, 1)
	h.sink(riskJira).hold, h.sink(riskJira).entered = hold, entered
	url, cancel, done := h.serve()

	type result struct {
		code int
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := h.send(url, "evt_g", eventBody(t, event.TypeChurnRisk, "evt_g", nil))
		if err != nil {
			got <- result{err: err}
			return
		}
		resp.Body.Close()
		got <- result{code: resp.StatusCode}
	}()
	<-entered
	cancel() // SIGTERM while a delivery is in flight

	// New connections are refused once shutdown began.
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 10*time.Second, 10*time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Serve returned before the delivery finished: %v", err)
	default:
	}

	close(hold)
	r := <-got
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.code, "the in-flight delivery completed")
	require.NoError(t, <-done)
	assert.Len(t, h.sink(riskEmail).ids(), 1, "every sink of the delivery ran")
}

func TestServerShutdownTimeout(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{ShutdownTimeout: 50 * time.Millisecond})
	hold, entered := make(chan struct{}), make(chan struct{}, 1)
	defer close(hold)
	h.sink(riskJira).hold, h.sink(riskJira).entered = hold, entered
	url, cancel, done := h.serve()
	go func() {
		if resp, err := h.send(url, "evt_t", eventBody(t, event.TypeChurnRisk, "evt_t", nil)); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	err := <-done
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestServerCloseStopsServe(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	_, _, done := h.serve()
	require.Eventually(t, func() bool {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		return len(h.srv.servers) == 1
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, h.srv.Close())
	assert.ErrorIs(t, <-done, http.ErrServerClosed)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	assert.ErrorIs(t, h.srv.Serve(context.Background(), l), http.ErrServerClosed)
}

func TestNewServerRejectsInvalidConfig(t *testing.T) {
	_, err := NewServer(nil, ServerOptions{Inline: true})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	cfg := DefaultConfig("whsec_short", "", t.TempDir())
	_, err = NewServer(cfg, ServerOptions{Inline: true, Logger: slog.New(slog.DiscardHandler)})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "webhooks[0].secrets[0].secret")
	assert.NotContains(t, err.Error(), "whsec_short")
}

func TestServerWarnsOnUnknownType(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Webhooks[0].Routes[0].When.Types = append(cfg.Webhooks[0].Routes[0].When.Types, "churn_rsik")
	h := newHarness(t, cfg, ServerOptions{})
	assert.Contains(t, h.logs.String(), `"type":"churn_rsik"`)
}

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

// TestServerNeverLeaks drives every failure path and checks that no
// response or log line carries the secret (in any encoding) or a signature.
func TestServerNeverLeaks(t *testing.T) {
	store := &flakyStore{Store: verify.NewMemoryStore(verify.MemoryStoreOptions{})}
	h := newHarness(t, nil, ServerOptions{Store: store})
	var seen bytes.Buffer
	var sigs []string
	record := func(rec *httptest.ResponseRecorder) {
		seen.Write(rec.Body.Bytes())
		for k, v := range rec.Header() {
			fmt.Fprintf(&seen, "%s: %s\n", k, v)
		}
	}
	body := eventBody(t, event.TypeChurnRisk, "evt_l", nil)
	sign := func(id string, b []byte) *http.Request {
		req := verifytest.NewRequest(h.secret, id, h.now, "/webhooks/staircase", b)
		sigs = append(sigs, req.Header.Get("X-Staircase-Signature"))
		return req
	}
	serve := func(req *http.Request) {
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, req)
		record(rec)
	}
	serve(verifytest.TamperedBody(h.secret, "evt_l", h.now, "/webhooks/staircase", body))
	serve(verifytest.WrongSecret("evt_l", h.now, "/webhooks/staircase", body))
	serve(verifytest.StaleTimestamp(h.secret, "evt_l", h.now, verify.DefaultTolerance, "/webhooks/staircase", body))
	serve(sign("evt_l", []byte("not json")))
	serve(sign("evt_other", body))
	h.sink(riskJira).fail(errors.New("transient"), Permanent(errors.New("permanent")))
	serve(sign("evt_l", body))
	serve(sign("evt_l", body))
	dup := eventBody(t, event.TypeChurnRisk, "evt_dup", nil)
	serve(sign("evt_dup", dup))
	serve(sign("evt_dup", dup)) // answered and logged as a duplicate
	store.failReserve.Store(true)
	serve(sign("evt_l", body))

	out := seen.String() + h.logs.String()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(testSecret, "whsec_"))
	require.NoError(t, err)
	for _, s := range []string{testSecret, strings.TrimPrefix(testSecret, "whsec_"), string(key), fmt.Sprintf("%x", key)} {
		assert.NotContains(t, out, s)
	}
	for _, sig := range sigs {
		assert.NotContains(t, out, strings.TrimPrefix(sig, "v1,"))
	}
}

// BenchmarkServerDelivery measures deliveries through the whole handler:
// router, verify middleware with the memory store, decoding, routing, the
// ledger and the sinks of one route, for a ~1.3 KiB sample with a fresh id
// each time. "nop" sinks do nothing, isolating the server; "dry-run" are
// the zero-configuration default, writing a Jira request and a MIME message
// per event into a temporary outbox.
func BenchmarkServerDelivery(b *testing.B) {
	b.Run("sinks=nop", func(b *testing.B) {
		cfg := testConfig(b.TempDir())
		cfg.Webhooks[0].Routes = cfg.Webhooks[0].Routes[:1]
		benchDelivery(b, cfg, true)
	})
	b.Run("sinks=dry-run", func(b *testing.B) {
		benchDelivery(b, DefaultConfig(testSecret, "", b.TempDir()), false)
	})
}

func benchDelivery(b *testing.B, cfg *Config, nop bool) {
	srv, err := NewServer(cfg, ServerOptions{Inline: true, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(b, err)
	defer srv.Close()
	if nop {
		for _, rt := range srv.hooks["staircase"].routes {
			for i, s := range rt.sinks {
				rt.sinks[i] = nopSink(s.Name())
			}
		}
	}
	secret, err := verify.ParseSecret(testSecret)
	require.NoError(b, err)
	signer, err := verify.NewSigner(secret)
	require.NoError(b, err)
	sample, err := event.Sample(event.TypeChurnRisk)
	require.NoError(b, err)
	const oldID = `"evt_01JD3QX8M2A1B4C6D8E0F2G4H6"`
	require.Contains(b, string(sample), oldID)
	handler := srv.Handler()

	// Bodies and headers are made outside the timer; the timer covers the
	// server only.
	type item struct {
		body []byte
		hdr  http.Header
	}
	items := make([]item, b.N)
	now := time.Now()
	for i := range items {
		id := fmt.Sprintf("evt_bench_%012d", i)
		body := bytes.Replace(sample, []byte(oldID), []byte(`"`+id+`"`), 1)
		hdr, err := signer.Sign(id, now, body)
		require.NoError(b, err)
		items[i] = item{body, hdr}
	}
	b.SetBytes(int64(len(sample)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range items {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/staircase", bytes.NewReader(items[i].body))
		req.Header = items[i].hdr
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

type nopSink string

func (n nopSink) Name() string                                { return string(n) }
func (n nopSink) Deliver(context.Context, *event.Event) error { return nil }

// TestServerClientGone checks that a sender hanging up (its request
// context cancelled) does not cut a delivery short: the sinks finish and
// are recorded, so the retry is a duplicate rather than a second run.
func TestServerClientGone(t *testing.T) {
	h := newHarness(t, nil, ServerOptions{})
	hold, entered := make(chan struct{}), make(chan struct{}, 1)
	h.sink(riskJira).hold, h.sink(riskJira).entered = hold, entered
	body := eventBody(t, event.TypeChurnRisk, "evt_gone", nil)

	ctx, hangUp := context.WithCancel(context.Background())
	req := verifytest.NewRequest(h.secret, "evt_gone", h.now, "/webhooks/staircase", body).WithContext(ctx)
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		h.srv.Handler().ServeHTTP(rec, req)
		close(done)
	}()
	<-entered
	hangUp()
	close(hold)
	<-done
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	h.now = h.now.Add(time.Second)
	rec = h.post("evt_gone", body)
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader))
	assert.Len(t, h.sink(riskJira).ids(), 1)
}

// TestServerRedis runs the server on a real redis-server: ids and done
// sinks live there, a second server sharing it sees them, and with Redis
// down the server fails closed (503) until it is back.
func TestServerRedis(t *testing.T) {
	rs := testenv.StartRedis(t)

	cfg := testConfig(t.TempDir())
	cfg.Store.Redis = rs.URL()
	h := newHarness(t, cfg, ServerOptions{})
	health := func() int {
		rec := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		return rec.Code
	}
	assert.Equal(t, http.StatusOK, health())

	body := eventBody(t, event.TypeChurnRisk, "evt_redis", nil)
	h.sink(riskEmail).fail(errors.New("451"))
	rec := h.post("evt_redis", body)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())

	// A second instance on the same Redis (behind a load balancer) takes
	// the retry and runs only the sink that failed.
	h2 := newHarness(t, cfg, ServerOptions{})
	h2.now = h.now.Add(5 * time.Second)
	rec = h2.post("evt_redis", body)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, map[string]string{riskJira: "skipped", riskEmail: "delivered", peopleEmail: "skipped"}, outcomes(decodeResponse(t, rec)))
	h.now = h2.now.Add(time.Second)
	rec = h.post("evt_redis", body)
	assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader), "the first instance sees the event done")

	// Redis stops: fail closed.
	rs.Stop()
	assert.Equal(t, http.StatusServiceUnavailable, health())
	rec = h.post("evt_redis2", eventBody(t, event.TypeChurnRisk, "evt_redis2", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Empty(t, h.sink(riskJira).ids()[1:], "no sink ran without the store")

	// Redis is back: the retry is delivered once.
	rs.Start()
	require.Eventually(t, func() bool { return health() == http.StatusOK }, 10*time.Second, 50*time.Millisecond)
	rec = h.post("evt_redis2", eventBody(t, event.TypeChurnRisk, "evt_redis2", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, []string{"evt_redis", "evt_redis2"}, h.sink(riskJira).ids())
}

func TestServerListenAndServe(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Listen = testenv.Addr(testenv.FreePort(t))
	h := newHarness(t, cfg, ServerOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.srv.ListenAndServe(ctx) }()
	testenv.WaitTCP(t, cfg.Listen, 10*time.Second)
	resp, err := http.Get("http://" + cfg.Listen + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	cancel()
	require.NoError(t, <-done)

	// The address is taken: the error comes back at once.
	l, err := net.Listen("tcp", cfg.Listen)
	require.NoError(t, err)
	defer l.Close()
	assert.Error(t, h.srv.ListenAndServe(context.Background()))
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

// TestServerJiraRoutesDoNotCollide sends one event to two Jira routes of
// one webhook (projects CS and OPS) and to a second webhook with a route
// into CS: each route gets its own issue, although the three share the
// event id. A redelivery to a fresh server (empty record of done sinks, so
// only the Jira search can tell) creates nothing.
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
	assert.Equal(t, issues[0].Labels, issues[1].Labels, "the label depends on the event id only")

	r = post(srv, "/webhooks/second")
	assert.Equal(t, map[string]string{"second.cs.jira": "delivered"}, outcomes(r))
	assert.Len(t, js.Issues(), 2, "the second webhook's route into CS finds the CS issue")

	// A fresh server has no record of done sinks: the labels alone stop
	// every duplicate.
	srv = newServer()
	post(srv, "/webhooks/staircase")
	post(srv, "/webhooks/second")
	assert.Len(t, js.Issues(), 2, "redelivery created nothing")
	assert.Equal(t, 2, js.Requests("/rest/api/3/issue"), "two creates in all")
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
