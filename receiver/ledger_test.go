package receiver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
)

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
