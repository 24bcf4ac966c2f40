package receiver

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// minimalEvent is the smallest body event.Decode accepts.
const minimalEvent = `{"id":"evt_1","type":"churn_risk","account":{"id":"acc_1"}}`

// withField returns minimalEvent with extra top-level JSON members.
func withField(members string) string {
	return strings.TrimSuffix(minimalEvent, "}") + "," + members + "}"
}

// nested returns JSON arrays nested depth deep.
func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

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
	h.fakeSinks()
	return h
}

// fakeSinks replaces every sink the server built with a fakeSink of its
// name, in the routes and in the webhooks' index the workers use.
func (h *harness) fakeSinks() {
	for _, wh := range h.srv.hooks {
		for i := range wh.routes {
			for j, s := range wh.routes[i].sinks {
				f := &fakeSink{name: s.Name()}
				h.sinks[f.name] = f
				wh.routes[i].sinks[j] = f
				wh.sinks[f.name] = f
			}
		}
	}
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
