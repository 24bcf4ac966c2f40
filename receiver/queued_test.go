package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/queue"
	"github.com/stairhook/stairhook/verify"
)

// newQueuedHarness is newHarness on the queued path: a SQLite database in
// a temporary folder, fake sinks, and (unless noWorkers) the workers
// running, polling every 10 ms.
func newQueuedHarness(t *testing.T, cfg *Config, opts ServerOptions, noWorkers bool) *harness {
	t.Helper()
	h := &harness{t: t, now: time.Now(), logs: &testenv.Buffer{}, outbox: t.TempDir(), sinks: map[string]*fakeSink{}}
	if cfg == nil {
		cfg = testConfig(h.outbox)
	}
	if cfg.Store.SQLite == "" && cfg.Store.Postgres == "" {
		cfg.Store.SQLite = filepath.Join(t.TempDir(), "stairhook.db")
	}
	var err error
	h.secret, err = verify.ParseSecret(testSecret)
	require.NoError(t, err)
	opts.Logger = slog.New(slog.NewJSONHandler(h.logs, nil))
	opts.pollInterval = 10 * time.Millisecond
	h.srv, err = NewServer(cfg, opts)
	require.NoError(t, err)
	t.Cleanup(func() { h.srv.Close() })
	h.fakeSinks()
	if !noWorkers {
		require.NoError(t, h.srv.queue.Start(context.Background()))
	}
	return h
}

// waitCalls waits until the sink was called n times, then a little longer
// to catch an extra call.
func waitCalls(t *testing.T, f *fakeSink, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(f.ids()) < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("sink %s: %d calls, want %d", f.name, len(f.ids()), n)
		}
	}
	time.Sleep(100 * time.Millisecond)
	assert.Len(t, f.ids(), n, "sink %s", f.name)
}

type queuedResponse struct {
	Status string   `json:"status"`
	ID     string   `json:"id"`
	Sinks  []string `json:"sinks"`
	Error  struct {
		Code string `json:"code"`
	} `json:"error"`
}

func decodeQueued(t *testing.T, body []byte) queuedResponse {
	t.Helper()
	var r queuedResponse
	require.NoError(t, json.Unmarshal(body, &r), string(body))
	return r
}

func TestQueuedAccept(t *testing.T) {
	h := newQueuedHarness(t, nil, ServerOptions{}, false)
	body := eventBody(t, event.TypeChurnRisk, "evt_q1", func(m map[string]any) { delete(m, "people") })
	rec := h.post("evt_q1", body)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	r := decodeQueued(t, rec.Body.Bytes())
	assert.Equal(t, queuedResponse{Status: "queued", ID: "evt_q1", Sinks: []string{riskJira, riskEmail}}, r)
	waitCalls(t, h.sink(riskJira), 1)
	waitCalls(t, h.sink(riskEmail), 1)
	assert.Empty(t, h.sink(peopleEmail).ids())

	// The sender's retry is a duplicate: answered as before, nothing runs.
	rec = h.post("evt_q1", body)
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader))
	waitCalls(t, h.sink(riskJira), 1)

	// An event no route selects is recorded and answered 202, no sinks.
	rec = h.post("evt_q2", eventBody(t, event.TypeRenewal, "evt_q2", func(m map[string]any) { delete(m, "people") }))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	r = decodeQueued(t, rec.Body.Bytes())
	assert.Equal(t, "queued", r.Status)
	assert.Empty(t, r.Sinks)
	assert.Contains(t, rec.Body.String(), `"sinks":[]`, "an empty list, not null")
}

// A request whose sink fails permanently is still an accepted event: a
// replay of it runs nothing and writes nothing (it used to re-run the
// failing sink and append a dead letter on every replay).
func TestQueuedPermanentFailureIsStillAccepted(t *testing.T) {
	h := newQueuedHarness(t, nil, ServerOptions{}, false)
	h.sink(riskJira).fail(Permanent(errors.New("jira 400: no such project")))
	body := eventBody(t, event.TypeChurnRisk, "evt_p1", nil)
	require.Equal(t, http.StatusAccepted, h.post("evt_p1", body).Code)
	waitCalls(t, h.sink(riskJira), 1)
	for range 30 {
		rec := h.post("evt_p1", body)
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader))
	}
	waitCalls(t, h.sink(riskJira), 1)
	// River records the dead job just after the attempt returns.
	var dead []*queue.DeadLetter
	for deadline := time.Now().Add(10 * time.Second); len(dead) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		require.NoError(t, h.srv.Queue().DeadLetters(context.Background(), "", func(d *queue.DeadLetter) error {
			dead = append(dead, d)
			return nil
		}))
	}
	require.Len(t, dead, 1)
	assert.Equal(t, riskJira, dead[0].Sink)
}

// When the middleware's id record is gone (expired, or lost in a crash
// between the commit and the record) the events table still answers the
// redelivery as a duplicate.
func TestQueuedDuplicateByEventRow(t *testing.T) {
	db := filepath.Join(t.TempDir(), "shared.db")
	cfg := func() *Config {
		c := testConfig(t.TempDir())
		c.Store.SQLite = db
		return c
	}
	// Each server's ids in a memory store of its own: the second has no
	// record of the first's.
	first := newQueuedHarness(t, cfg(), ServerOptions{Store: verify.NewMemoryStore(verify.MemoryStoreOptions{})}, true)
	body := eventBody(t, event.TypeChurnRisk, "evt_d1", nil)
	require.Equal(t, http.StatusAccepted, first.post("evt_d1", body).Code)
	second := newQueuedHarness(t, cfg(), ServerOptions{Store: verify.NewMemoryStore(verify.MemoryStoreOptions{})}, false)
	rec := second.post("evt_d1", body)
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader))
	assert.Equal(t, "duplicate", decodeQueued(t, rec.Body.Bytes()).Status)
	waitCalls(t, second.sink(riskJira), 1) // the first acceptance's job, once
}

func TestQueuedStoreUnavailable(t *testing.T) {
	h := newQueuedHarness(t, nil, ServerOptions{}, true)
	require.NoError(t, h.srv.queue.Close())
	rec := h.post("evt_u1", eventBody(t, event.TypeChurnRisk, "evt_u1", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.NotEmpty(t, rec.Header().Get("Retry-After"))
	assert.Equal(t, "store_unavailable", decodeQueued(t, rec.Body.Bytes()).Error.Code)
}

func TestQueuedRoles(t *testing.T) {
	db := filepath.Join(t.TempDir(), "shared.db")
	cfg := func() *Config {
		c := testConfig(t.TempDir())
		c.Store.SQLite = db
		return c
	}
	work := newQueuedHarness(t, cfg(), ServerOptions{Role: RoleWork}, false)
	rec := work.post("evt_r1", eventBody(t, event.TypeChurnRisk, "evt_r1", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "not_accepting", decodeQueued(t, rec.Body.Bytes()).Error.Code)

	accept := newQueuedHarness(t, cfg(), ServerOptions{Role: RoleAccept}, true)
	rec = accept.post("evt_r1", eventBody(t, event.TypeChurnRisk, "evt_r1", nil))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	// The work instance runs what the accept instance queued.
	waitCalls(t, work.sink(riskJira), 1)
	assert.Empty(t, accept.sink(riskJira).ids())
	assert.Error(t, accept.srv.queue.Start(context.Background()), "an accept instance has no workers")

	_, err := NewServer(cfg(), ServerOptions{Role: "both", Logger: slog.New(slog.DiscardHandler)})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

func TestQueuedRefusesRedis(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Store.Redis = "redis://127.0.0.1:6379/0"
	_, err := NewServer(cfg, ServerOptions{Logger: slog.New(slog.DiscardHandler)})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "store.redis")
	assert.Contains(t, err.Error(), "postgres")

	cfg.Store.Redis = ""
	cfg.Store.SQLite, cfg.Store.Postgres = "a.db", "postgres://127.0.0.1/x"
	_, err = NewServer(cfg, ServerOptions{Logger: slog.New(slog.DiscardHandler)})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "not both")
}

func TestQueuedWaitAndRetry(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Delivery = DeliveryConfig{FirstRetry: 50 * time.Millisecond, MaxRetry: 100 * time.Millisecond}
	h := newQueuedHarness(t, cfg, ServerOptions{}, false)
	h.sink(riskJira).fail(errors.New("connection reset"), &RetryAfterError{Err: errors.New("jira 429"), After: 300 * time.Millisecond})
	require.Equal(t, http.StatusAccepted, h.post("evt_w1", eventBody(t, event.TypeChurnRisk, "evt_w1", nil)).Code)
	waitCalls(t, h.sink(riskJira), 3)
	logs := h.logs.String()
	assert.Contains(t, logs, `"outcome":"retry"`)
	assert.Contains(t, logs, `"outcome":"wait"`)
	assert.Equal(t, 1, strings.Count(logs, `"msg":"delivered","job":1,`), logs)
}
