package receiver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/console"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/queue"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// destination is an HTTP server standing for a sink's destination: it
// answers from a script (then 200) and records each request's traceparent.
type destination struct {
	*httptest.Server
	mu      sync.Mutex
	answers []int
	parents []string
}

func newDestination(t *testing.T, answers ...int) *destination {
	d := &destination{answers: answers}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		d.mu.Lock()
		d.parents = append(d.parents, r.Header.Get("Traceparent"))
		status := http.StatusOK
		if len(d.answers) > 0 {
			status, d.answers = d.answers[0], d.answers[1:]
		}
		d.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *destination) seen() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.parents...)
}

// tracedServer is a queued server with a forward route (to fwd) and a
// Teams route (to teams), whose spans go to the returned recorder.
func tracedServer(t *testing.T, fwdURL, teamsURL string, logs io.Writer) (*Server, *tracetest.SpanRecorder) {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := &Config{
		Outbox:   t.TempDir(),
		Store:    StoreConfig{SQLite: filepath.Join(t.TempDir(), "stairhook.db")},
		Delivery: DeliveryConfig{FirstRetry: 20 * time.Millisecond, MaxRetry: 20 * time.Millisecond},
		Teams:    &TeamsConfig{WebhookURL: teamsURL},
		Webhooks: []WebhookConfig{{
			Name:    "staircase",
			Secrets: []SecretConfig{{Label: "current", Secret: testSecret}},
			Routes: []RouteConfig{{
				Name:    "all",
				Forward: &ForwardRoute{URL: fwdURL, Secret: forwardSecret},
				Teams:   &TeamsRoute{},
			}},
		}},
	}
	srv, err := NewServer(cfg, ServerOptions{
		Logger:         slog.New(slog.NewJSONHandler(logs, nil)),
		TracerProvider: tp,
		pollInterval:   10 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	return srv, sr
}

// forwardSecret is the forward sink's signing secret in these tests.
const forwardSecret = "whsec_dGhlIGZvcndhcmQgc2lua3Mgc2VjcmV0IGtleSAzMiBieXRlcw=="

// One event is one trace: the accept span, one deliver span per attempt
// under it (a failed attempt and the retry that succeeds, and the other
// sink's), and one client span per HTTP request under each attempt. The
// forward destination sees the traceparent of its request's span; Teams,
// a third party, sees none. No attribute holds a secret, a signature, the
// body or a destination's path or query.
func TestTraceOfAnEvent(t *testing.T) {
	fwd := newDestination(t, http.StatusServiceUnavailable) // then 200
	teams := newDestination(t)
	fwdURL := fwd.URL + "/relay?token=fwd-token-in-query"
	teamsURL := teams.URL + "/workflows/teams-path-secret?sig=teams-signature"
	logs := &testenv.Buffer{}
	srv, sr := tracedServer(t, fwdURL, teamsURL, logs)
	require.NoError(t, srv.queue.Start(context.Background()))

	secret, err := verify.ParseSecret(testSecret)
	require.NoError(t, err)
	body := eventBody(t, event.TypeChurnRisk, "evt_traced", nil)
	req := verifytest.NewRequest(secret, "evt_traced", time.Now(), "/webhooks/staircase", body)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())

	// 1 accept, 3 attempts (forward twice, Teams once), 3 requests.
	var spans []sdktrace.ReadOnlySpan
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if spans = sr.Ended(); len(spans) >= 7 {
			break
		}
		require.False(t, time.Now().After(deadline), "%d spans ended, want 7", len(spans))
	}
	time.Sleep(100 * time.Millisecond) // an eighth would be a bug
	spans = sr.Ended()
	require.Len(t, spans, 7)

	byName := map[string][]sdktrace.ReadOnlySpan{}
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = append(byName[s.Name()], s)
		byID[s.SpanContext().SpanID()] = s
	}
	require.Len(t, byName[spanAccept], 1)
	acc := byName[spanAccept][0]
	traceID := acc.SpanContext().TraceID()
	assert.False(t, acc.Parent().IsValid(), "the accept span starts the trace")
	assert.Equal(t, trace.SpanKindServer, acc.SpanKind())
	assert.Equal(t, map[attribute.Key]attribute.Value{
		attrWebhook:                 attribute.StringValue("staircase"),
		attrEventID:                 attribute.StringValue("evt_traced"),
		attrEventType:               attribute.StringValue(event.TypeChurnRisk),
		attrSinks:                   attribute.IntValue(2),
		attrOutcome:                 attribute.StringValue("accepted"),
		"http.response.status_code": attribute.IntValue(http.StatusAccepted),
	}, attrMap(acc))

	type attempt struct {
		sink    string
		attempt int64
		outcome string
	}
	var attempts []attempt
	require.Len(t, byName[spanDeliver], 3)
	for _, d := range byName[spanDeliver] {
		assert.Equal(t, traceID, d.SpanContext().TraceID(), "one trace")
		assert.Equal(t, acc.SpanContext().SpanID(), d.Parent().SpanID(), "an attempt's parent is the accept span")
		assert.True(t, d.Parent().IsRemote(), "the parent comes from the job")
		assert.Equal(t, trace.SpanKindConsumer, d.SpanKind())
		a := attrMap(d)
		attempts = append(attempts, attempt{a[attrSink].AsString(), a[attrAttempt].AsInt64(), a[attrOutcome].AsString()})
		if a[attrOutcome].AsString() == "retry" {
			assert.Equal(t, codes.Error, d.Status().Code)
			assert.Equal(t, "forward 503", a[attrReason].AsString())
		}
	}
	assert.ElementsMatch(t, []attempt{
		{"staircase.all.forward", 1, "retry"},
		{"staircase.all.forward", 2, "delivered"},
		{"staircase.all.teams", 1, "delivered"},
	}, attempts)

	var clientIDs []string
	for _, s := range spans {
		if s.SpanKind() != trace.SpanKindClient {
			continue
		}
		parent, ok := byID[s.Parent().SpanID()]
		require.True(t, ok, "client span %s has a parent in the trace", s.Name())
		assert.Equal(t, spanDeliver, parent.Name(), "a request's parent is its attempt")
		assert.Equal(t, traceID, s.SpanContext().TraceID())
		a := attrMap(s)
		assert.Equal(t, "POST", s.Name())
		assert.Equal(t, "127.0.0.1", a["server.address"].AsString())
		assert.NotZero(t, a["http.response.status_code"].AsInt64())
		if strings.HasSuffix(attrMap(parent)[attrSink].AsString(), ".forward") {
			clientIDs = append(clientIDs, fmt.Sprintf("00-%s-%s-01", traceID, s.SpanContext().SpanID()))
		}
	}
	assert.Len(t, clientIDs, 2)
	assert.ElementsMatch(t, clientIDs, fwd.seen(), "the forward destination continues the trace")
	assert.Equal(t, []string{""}, teams.seen(), "a third party gets no traceparent")

	// Nothing secret in any span: attributes, status, events.
	secrets := []string{testSecret, forwardSecret, "fwd-token-in-query", "/relay", "teams-path-secret", "teams-signature",
		req.Header.Get("X-Staircase-Signature"), string(body), `"account"`}
	for _, s := range spans {
		b, err := json.Marshal(struct {
			Attrs  []attribute.KeyValue
			Status sdktrace.Status
			Events []sdktrace.Event
			Links  []sdktrace.Link
		}{s.Attributes(), s.Status(), s.Events(), s.Links()})
		require.NoError(t, err)
		for _, sec := range secrets {
			assert.NotContains(t, string(b), sec, "span %s", s.Name())
		}
	}

	// The log lines name the trace.
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m))
		if m["msg"] == "accepted" || m["msg"] == "delivered" || m["msg"] == "sink failed" {
			assert.Equal(t, traceID.String(), m["trace_id"], line)
		}
	}
}

// A refused request and a duplicate are answered in an accept span of
// their own, which records the answer; a refusal of the sender's request
// is not an error of the server.
func TestTraceOfRefusedAndDuplicate(t *testing.T) {
	fwd := newDestination(t)
	teams := newDestination(t)
	srv, sr := tracedServer(t, fwd.URL, teams.URL, io.Discard)
	secret, err := verify.ParseSecret(testSecret)
	require.NoError(t, err)
	body := eventBody(t, event.TypeChurnRisk, "evt_dup", nil)
	serve := func(req *http.Request) int {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	require.Equal(t, http.StatusAccepted, serve(verifytest.NewRequest(secret, "evt_dup", time.Now(), "/webhooks/staircase", body)))
	require.Equal(t, http.StatusOK, serve(verifytest.NewRequest(secret, "evt_dup", time.Now(), "/webhooks/staircase", body)))
	wrong, err := verify.NewSecret()
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, serve(verifytest.NewRequest(wrong, "evt_bad", time.Now(), "/webhooks/staircase", body)))

	spans := sr.Ended()
	require.Len(t, spans, 3, "no worker runs: the accept spans only")
	var got []string
	traces := map[trace.TraceID]bool{}
	for _, s := range spans {
		traces[s.SpanContext().TraceID()] = true
		a := attrMap(s)
		got = append(got, fmt.Sprintf("%s %s %d", a[attrOutcome].AsString(), a[attrReason].AsString(), a["http.response.status_code"].AsInt64()))
		assert.Equal(t, codes.Unset, s.Status().Code)
	}
	assert.Equal(t, []string{"accepted  202", "duplicate  200", "refused no_matching_signature 401"}, got)
	assert.Len(t, traces, 3, "a trace each")
}

// With a provider that records nothing (the default), an event is
// accepted with no traceparent for its jobs, and a sink's request goes
// out as it was made: not copied, no header added.
func TestTracingOff(t *testing.T) {
	var base roundTripFunc = func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	}
	s := &Server{tracer: noop.NewTracerProvider().Tracer("")}
	c := s.tracedClient(&http.Client{Transport: base}, true)
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/x", nil)
	require.NoError(t, err)
	resp, err := c.Transport.RoundTrip(req)
	require.NoError(t, err)
	assert.Same(t, req, resp.Request)
	assert.Empty(t, req.Header)

	ctx, span := s.startAccept(context.Background(), "staircase")
	assert.Equal(t, context.Background(), ctx, "no new context")
	assert.Empty(t, traceparent(ctx))
	span.End()
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func attrMap(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// BenchmarkTracingOff is what tracing costs when no provider is set (the
// default, and `stairhook serve` without OTEL_EXPORTER_OTLP_ENDPOINT): a
// webhook request's span and its notes, an attempt's span, and a sink's
// request through the traced transport.
func BenchmarkTracingOff(b *testing.B) {
	s := &Server{tracer: otel.GetTracerProvider().Tracer(tracerName)}
	ev := &event.Event{ID: "evt_1", Type: event.TypeChurnRisk}
	h := s.traceRequests("staircase", http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		traceEvent(ctx, ev, 2)
		_ = traceparent(ctx)
		_ = traceLog(ctx, nil)
		traceAnswer(ctx, console.OutcomeAccepted, "", http.StatusAccepted)
	}))
	req := httptest.NewRequest(http.MethodPost, "/webhooks/staircase", nil)
	b.Run("request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(nil, req)
		}
	})
	d := &queue.Delivery{Webhook: "staircase", EventID: "evt_1", Sink: "staircase.all.forward", Attempt: 1}
	b.Run("attempt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, span := s.startDeliver(context.Background(), d)
			endDeliver(span, queue.Result{})
		}
	})
	resp := &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}
	c := s.tracedClient(&http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return resp, nil })}, true)
	out := httptest.NewRequest(http.MethodPost, "https://hooks.example.com/x", nil)
	b.Run("sink request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = c.Transport.RoundTrip(out)
		}
	})
}
