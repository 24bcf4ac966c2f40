package verify_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// twoClocks is a machine's wall clock and its monotonic clock, which a
// clock step moves apart.
type twoClocks struct {
	mu   sync.Mutex
	wall time.Time
	mono time.Duration
}

func (c *twoClocks) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

func (c *twoClocks) Mono() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// Pass lets d go by on both clocks.
func (c *twoClocks) Pass(d time.Duration) {
	c.mu.Lock()
	c.wall = c.wall.Add(d)
	c.mono += d
	c.mu.Unlock()
}

// Step moves the wall clock alone.
func (c *twoClocks) Step(d time.Duration) {
	c.mu.Lock()
	c.wall = c.wall.Add(d)
	c.mu.Unlock()
}

// A captured request is replayed after the retention has run out on the
// monotonic clock, but after the wall clock stepped back by more than the
// tolerance: its timestamp is accepted again, so its id must still be held.
// A store on the monotonic clock alone forgot it and processed the replay.
func TestMemoryStoreHoldsIDsAcrossAWallClockStepBack(t *testing.T) {
	clk := &twoClocks{wall: mwNow}
	store := verify.NewMemoryStore(verify.MemoryStoreOptions{Now: clk.Now})
	verify.SetMonotonic(store, clk.Mono)
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	v, err := verify.NewVerifier(verify.Options{
		Keys:    []verify.Key{{Secret: secret}},
		Now:     clk.Now,
		Store:   store,
		OnError: func(*http.Request, error) {},
	})
	require.NoError(t, err)
	var processed int
	h := v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { processed++ }))
	captured := verifytest.SignedHeaders(secret, "evt_captured", mwNow, []byte(`{}`))
	send := func() *httptest.ResponseRecorder {
		req := verifytest.NewRequest(secret, "evt_captured", mwNow, "/", []byte(`{}`))
		req.Header = captured.Clone()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	require.Equal(t, http.StatusOK, send().Code)
	require.Equal(t, 1, processed)

	// The retention, twice the tolerance, passes on both clocks and a
	// second more; then NTP steps the wall clock back by the tolerance and
	// a minute.
	clk.Pass(2*verify.DefaultTolerance + time.Second)
	clk.Step(-verify.DefaultTolerance - time.Minute)
	rec := send()
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader), "the replay is a duplicate")
	assert.Equal(t, 1, processed, "the replay must not be processed")

	// Once the wall clock has caught up with the retention, the timestamp
	// is refused and the id is dropped.
	clk.Pass(verify.DefaultTolerance + time.Minute)
	assert.Equal(t, http.StatusUnauthorized, send().Code)
	store.Full() // drops what has expired
	assert.Zero(t, store.Len(), "the id is dropped once its time is up on both clocks")
}

// A wall clock stepped forward does not expire ids early: the monotonic
// clock still holds them for their ttl.
func TestMemoryStoreHoldsIDsAcrossAWallClockStepForward(t *testing.T) {
	clk := &twoClocks{wall: mwNow}
	store := verify.NewMemoryStore(verify.MemoryStoreOptions{Now: clk.Now})
	verify.SetMonotonic(store, clk.Mono)
	ctx := t.Context()
	r, st, err := store.Reserve(ctx, "evt_1", time.Hour)
	require.NoError(t, err)
	require.Equal(t, verify.StateNew, st)
	require.NoError(t, store.Done(ctx, r, time.Hour))

	clk.Step(24 * time.Hour)
	clk.Pass(time.Hour - time.Second)
	_, st, err = store.Reserve(ctx, "evt_1", time.Hour)
	require.NoError(t, err)
	assert.Equal(t, verify.StateDone, st, "an hour on the monotonic clock has not passed")

	clk.Pass(time.Second)
	_, st, err = store.Reserve(ctx, "evt_1", time.Hour)
	require.NoError(t, err)
	assert.Equal(t, verify.StateNew, st, "expired on both clocks")
}

// Keys held past their monotonic expiry by a stepped-back wall clock do
// not stop the keys behind them from expiring, and leave once the wall
// clock catches up.
func TestMemoryStoreWallHoldKeepsTheHeapMoving(t *testing.T) {
	clk := &twoClocks{wall: mwNow}
	store := verify.NewMemoryStore(verify.MemoryStoreOptions{Now: clk.Now})
	verify.SetMonotonic(store, clk.Mono)
	ctx := t.Context()
	_, _, err := store.Reserve(ctx, "held", time.Minute)
	require.NoError(t, err)
	clk.Step(-time.Hour) // the wall clock goes back an hour
	for _, k := range []string{"a", "b", "c"} {
		_, _, err := store.Reserve(ctx, k, 2*time.Minute)
		require.NoError(t, err)
	}
	require.Equal(t, 4, store.Len())

	clk.Pass(3 * time.Minute)
	store.Full()
	assert.Equal(t, 1, store.Len(), "a, b and c expired on both clocks; held has 58 minutes left on the wall clock")
	_, st, err := store.Reserve(ctx, "held", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateInFlight, st)

	clk.Pass(58*time.Minute + time.Second)
	store.Full()
	assert.Zero(t, store.Len())
}
