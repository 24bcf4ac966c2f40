package verify_test

import (
	"fmt"
	"math"
	mathrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// fakeClock is a settable time source for stores.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestMemoryStoreStates(t *testing.T) {
	ctx := t.Context()
	clk := &fakeClock{now: mwNow}
	s := verify.NewMemoryStore(verify.MemoryStoreOptions{Now: clk.Now})

	r, st, err := s.Reserve(ctx, "evt_1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateNew, st)
	assert.Equal(t, "evt_1", r.Key)
	assert.NotEmpty(t, r.Token)

	r2, st, err := s.Reserve(ctx, "evt_1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateInFlight, st)
	assert.Zero(t, r2, "no reservation for a key in flight")

	require.NoError(t, s.Done(ctx, r, time.Hour))
	_, st, err = s.Reserve(ctx, "evt_1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateDone, st)

	// Done is final: the holder cannot release or finish it again.
	require.NoError(t, s.Release(ctx, r))
	_, st, _ = s.Reserve(ctx, "evt_1", time.Minute)
	assert.Equal(t, verify.StateDone, st, "release after done does nothing")
	assert.ErrorIs(t, s.Done(ctx, r, time.Hour), verify.ErrReservationLost)
}

func TestMemoryStoreExpiry(t *testing.T) {
	ctx := t.Context()
	clk := &fakeClock{now: mwNow}
	s := verify.NewMemoryStore(verify.MemoryStoreOptions{Now: clk.Now})

	r, _, err := s.Reserve(ctx, "evt_1", time.Minute)
	require.NoError(t, err)
	clk.Add(time.Minute - time.Nanosecond)
	_, st, _ := s.Reserve(ctx, "evt_1", time.Minute)
	assert.Equal(t, verify.StateInFlight, st, "just before expiry")
	clk.Add(time.Nanosecond)
	r2, st, err := s.Reserve(ctx, "evt_1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateNew, st, "an expired reservation frees the key")

	// The first holder lost its reservation: it can neither finish nor
	// release the new holder's.
	assert.ErrorIs(t, s.Done(ctx, r, time.Hour), verify.ErrReservationLost)
	require.NoError(t, s.Release(ctx, r))
	_, st, _ = s.Reserve(ctx, "evt_1", time.Minute)
	assert.Equal(t, verify.StateInFlight, st, "a stale release must not free the new holder's key")

	require.NoError(t, s.Done(ctx, r2, 10*time.Minute))
	clk.Add(10*time.Minute - time.Second)
	_, st, _ = s.Reserve(ctx, "evt_1", time.Minute)
	assert.Equal(t, verify.StateDone, st, "done is kept for its ttl")
	clk.Add(time.Second)
	_, st, _ = s.Reserve(ctx, "evt_1", time.Minute)
	assert.Equal(t, verify.StateNew, st, "and forgotten after it")
}

func TestMemoryStoreHugeTTL(t *testing.T) {
	ctx := t.Context()
	clk := &fakeClock{now: mwNow}
	s := verify.NewMemoryStore(verify.MemoryStoreOptions{Now: clk.Now})
	clk.Add(time.Hour)
	r, _, err := s.Reserve(ctx, "evt_1", math.MaxInt64)
	require.NoError(t, err)
	clk.Add(time.Hour)
	_, st, _ := s.Reserve(ctx, "evt_1", time.Minute)
	assert.Equal(t, verify.StateInFlight, st, "a huge ttl saturates instead of wrapping into the past")
	require.NoError(t, s.Done(ctx, r, math.MaxInt64))
	clk.Add(time.Hour)
	_, st, _ = s.Reserve(ctx, "evt_1", time.Minute)
	assert.Equal(t, verify.StateDone, st)
}

func TestMemoryStoreTokens(t *testing.T) {
	ctx := t.Context()
	s := verify.NewMemoryStore(verify.MemoryStoreOptions{})
	r, _, err := s.Reserve(ctx, "evt_1", time.Minute)
	require.NoError(t, err)

	forged := verify.Reservation{Key: r.Key, Token: r.Token + "x"}
	assert.ErrorIs(t, s.Done(ctx, forged, time.Minute), verify.ErrReservationLost)
	assert.ErrorIs(t, s.Done(ctx, verify.Reservation{Key: r.Key}, time.Minute), verify.ErrReservationLost, "empty token")
	require.NoError(t, s.Release(ctx, forged))
	_, st, _ := s.Reserve(ctx, "evt_1", time.Minute)
	assert.Equal(t, verify.StateInFlight, st, "a forged release does nothing")
	assert.ErrorIs(t, s.Done(ctx, verify.Reservation{Key: "other", Token: r.Token}, time.Minute), verify.ErrReservationLost, "token of another key")

	require.NoError(t, s.Release(ctx, r))
	r2, st, err := s.Reserve(ctx, "evt_1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateNew, st, "released by its holder")
	assert.NotEqual(t, r.Token, r2.Token, "tokens are not reused")
	assert.ErrorIs(t, s.Done(ctx, r, time.Minute), verify.ErrReservationLost, "the old token is dead")
}

func TestMemoryStoreBounded(t *testing.T) {
	ctx := t.Context()
	clk := &fakeClock{now: mwNow}
	const maxEntries = 100
	s := verify.NewMemoryStore(verify.MemoryStoreOptions{MaxEntries: maxEntries, Now: clk.Now})

	var full int
	for i := range 10_000 {
		r, st, err := s.Reserve(ctx, "flood_"+strconv.Itoa(i), time.Minute)
		if err != nil {
			require.ErrorIs(t, err, verify.ErrStoreFull)
			full++
			continue
		}
		require.Equal(t, verify.StateNew, st)
		require.NoError(t, s.Done(ctx, r, time.Minute))
		require.LessOrEqual(t, s.Len(), maxEntries)
	}
	assert.Equal(t, maxEntries, s.Len())
	assert.Equal(t, 10_000-maxEntries, full, "a full store refuses rather than forget an id early")

	// Known ids are still answered while full.
	_, st, err := s.Reserve(ctx, "flood_0", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateDone, st)

	// Once the entries expire, the space comes back.
	clk.Add(time.Minute + time.Second)
	_, st, err = s.Reserve(ctx, "after", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateNew, st)
	assert.Equal(t, 1, s.Len(), "expired entries were swept")
}

func TestMemoryStoreDropsExpired(t *testing.T) {
	ctx := t.Context()
	clk := &fakeClock{now: mwNow}
	s := verify.NewMemoryStore(verify.MemoryStoreOptions{MaxEntries: 1_000_000, Now: clk.Now})
	// Short-lived entries in a roomy store must not pile up for ever.
	for i := range 50_000 {
		_, _, err := s.Reserve(ctx, "k"+strconv.Itoa(i), time.Millisecond)
		require.NoError(t, err)
		clk.Add(time.Millisecond)
	}
	assert.Equal(t, 1, s.Len(), "only the last key is alive")
}

// TestMemoryStoreModel drives the store with random operations and random
// ttls against a plain map that expires by brute force, with and without
// EvictDone.
func TestMemoryStoreModel(t *testing.T) {
	for _, tc := range []struct {
		name       string
		evictDone  bool
		maxEntries int
		keys       int
		maxTick    int // seconds the clock moves at most in one step
	}{
		{"refuse when full", false, 12, 20, 30},
		{"evict done", true, 12, 20, 30},
		{"evict done, deep heap", true, 60, 400, 3},
	} {
		t.Run(tc.name, func(t *testing.T) { runMemoryStoreModel(t, tc.evictDone, tc.maxEntries, tc.keys, tc.maxTick) })
	}
}

func runMemoryStoreModel(t *testing.T, evictDone bool, maxEntries, keys, maxTick int) {
	ctx := t.Context()
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	clk := &fakeClock{now: mwNow}
	s := verify.NewMemoryStore(verify.MemoryStoreOptions{MaxEntries: maxEntries, EvictDone: evictDone, Now: clk.Now})
	type entry struct {
		state   verify.State
		token   string
		expires time.Time
	}
	model := map[string]entry{}
	expire := func() {
		for k, e := range model {
			if !clk.Now().Before(e.expires) {
				delete(model, k)
			}
		}
	}
	var held []verify.Reservation
	var evicted int
	for step := range 20_000 {
		// The clock moves in whole seconds and the step is added in
		// nanoseconds, so no two expiries are equal and the key to evict
		// is unambiguous.
		ttl := time.Duration(1+rng.IntN(100))*time.Second + time.Duration(step)
		switch op := rng.IntN(10); {
		case op < 4:
			key := "k" + strconv.Itoa(rng.IntN(keys))
			r, st, err := s.Reserve(ctx, key, ttl)
			expire()
			if e, ok := model[key]; ok {
				require.NoError(t, err, "step %d", step)
				require.Equal(t, e.state, st, "step %d", step)
				continue
			}
			if len(model) >= maxEntries {
				victim := ""
				for k, e := range model {
					if e.state == verify.StateDone && (victim == "" || e.expires.Before(model[victim].expires)) {
						victim = k
					}
				}
				if !evictDone || victim == "" {
					require.ErrorIs(t, err, verify.ErrStoreFull, "step %d", step)
					continue
				}
				delete(model, victim)
				evicted++
			}
			require.NoError(t, err, "step %d", step)
			require.Equal(t, verify.StateNew, st, "step %d", step)
			model[key] = entry{verify.StateInFlight, r.Token, clk.Now().Add(ttl)}
			held = append(held, r)
		case op < 6 && len(held) > 0:
			r := held[rng.IntN(len(held))]
			err := s.Done(ctx, r, ttl)
			expire()
			if e, ok := model[r.Key]; ok && e.token == r.Token && e.state == verify.StateInFlight {
				require.NoError(t, err, "step %d", step)
				model[r.Key] = entry{verify.StateDone, r.Token, clk.Now().Add(ttl)}
			} else {
				require.ErrorIs(t, err, verify.ErrReservationLost, "step %d", step)
			}
		case op < 8 && len(held) > 0:
			r := held[rng.IntN(len(held))]
			require.NoError(t, s.Release(ctx, r))
			if e, ok := model[r.Key]; ok && e.token == r.Token && e.state == verify.StateInFlight && clk.Now().Before(e.expires) {
				delete(model, r.Key)
			}
		default:
			clk.Add(time.Duration(rng.IntN(maxTick)) * time.Second)
		}
		require.LessOrEqual(t, s.Len(), maxEntries)
	}
	t.Logf("%d evictions", evicted)
	if evictDone {
		assert.Positive(t, evicted, "the run must exercise eviction")
	}
}

// TestMemoryStoreEvictDone fills a store with keys in flight whose expiries
// sit at the top of the heap and done keys below them, so that the done key
// to evict is found only by descending through keys in flight.
func TestMemoryStoreEvictDone(t *testing.T) {
	ctx := t.Context()
	clk := &fakeClock{now: mwNow}
	const maxEntries = 31
	s := verify.NewMemoryStore(verify.MemoryStoreOptions{MaxEntries: maxEntries, EvictDone: true, Now: clk.Now})

	// Keys in flight expire first, so they fill the top of the heap.
	for i := range 15 {
		_, st, err := s.Reserve(ctx, "busy_"+strconv.Itoa(i), time.Hour+time.Duration(i)*time.Second)
		require.NoError(t, err)
		require.Equal(t, verify.StateNew, st)
	}
	// Done keys expire later; done_9 first of all of them.
	for i := range 16 {
		r, _, err := s.Reserve(ctx, "done_"+strconv.Itoa(i), time.Minute)
		require.NoError(t, err)
		ttl := 3*time.Hour + time.Duration(i)*time.Second
		if i == 9 {
			ttl = 2 * time.Hour
		}
		require.NoError(t, s.Done(ctx, r, ttl))
	}
	require.Equal(t, maxEntries, s.Len())

	_, st, err := s.Reserve(ctx, "new_0", time.Hour)
	require.NoError(t, err, "a full store with EvictDone makes room")
	assert.Equal(t, verify.StateNew, st)
	assert.Equal(t, maxEntries, s.Len())

	for i := range 15 {
		_, st, err := s.Reserve(ctx, "busy_"+strconv.Itoa(i), time.Minute)
		require.NoError(t, err)
		assert.Equal(t, verify.StateInFlight, st, "a key in flight is never evicted")
	}
	for i := range 16 {
		if i == 9 {
			continue
		}
		_, st, err := s.Reserve(ctx, "done_"+strconv.Itoa(i), time.Minute)
		require.NoError(t, err)
		assert.Equal(t, verify.StateDone, st, "done_%d expires later than done_9", i)
	}
	// The evicted key is forgotten: it reserves as new, evicting the next
	// done key in expiry order, done_0.
	r, st, err := s.Reserve(ctx, "done_9", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateNew, st, "the done key nearest to expiry was evicted")
	require.NoError(t, s.Release(ctx, r))
	_, st, err = s.Reserve(ctx, "done_0", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateNew, st)
}

func TestMemoryStoreEvictDoneAllInFlight(t *testing.T) {
	ctx := t.Context()
	clk := &fakeClock{now: mwNow}
	const maxEntries = 8
	s := verify.NewMemoryStore(verify.MemoryStoreOptions{MaxEntries: maxEntries, EvictDone: true, Now: clk.Now})
	for i := range maxEntries {
		_, _, err := s.Reserve(ctx, "busy_"+strconv.Itoa(i), time.Minute)
		require.NoError(t, err)
	}
	_, _, err := s.Reserve(ctx, "one_more", time.Minute)
	require.ErrorIs(t, err, verify.ErrStoreFull, "keys in flight are never evicted")
	assert.Equal(t, maxEntries, s.Len())
	for i := range maxEntries {
		_, st, err := s.Reserve(ctx, "busy_"+strconv.Itoa(i), time.Minute)
		require.NoError(t, err)
		assert.Equal(t, verify.StateInFlight, st)
	}
}

func TestMemoryStoreConcurrentReserve(t *testing.T) {
	ctx := t.Context()
	s := verify.NewMemoryStore(verify.MemoryStoreOptions{})
	const n = 64
	var news atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, st, err := s.Reserve(ctx, "same", time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			if st == verify.StateNew {
				news.Add(1)
				if err := s.Done(ctx, r, time.Minute); err != nil {
					t.Error(err)
				}
			}
			// Distinct keys in parallel, for the race detector.
			r, _, err = s.Reserve(ctx, "own_"+strconv.Itoa(i), time.Minute)
			if err == nil {
				_ = s.Release(ctx, r)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), news.Load(), "exactly one StateNew")
}

func TestMiddlewareFullMemoryStore(t *testing.T) {
	store := verify.NewMemoryStore(verify.MemoryStoreOptions{MaxEntries: 2, Now: func() time.Time { return mwNow }})
	var rejected []error
	f := newFixture(t, func(o *verify.Options) {
		o.Store = store
		o.OnError = func(_ *http.Request, err error) { rejected = append(rejected, err) }
	})
	h := f.v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusServiceUnavailable} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, f.request("evt_"+strconv.Itoa(i), nil))
		assert.Equal(t, want, rec.Code, "request %d", i)
	}
	require.Len(t, rejected, 1)
	assert.ErrorIs(t, rejected[0], verify.ErrStoreUnavailable)
	assert.ErrorIs(t, rejected[0], verify.ErrStoreFull)
}

func TestStateString(t *testing.T) {
	assert.Equal(t, "new", verify.StateNew.String())
	assert.Equal(t, "in-flight", verify.StateInFlight.String())
	assert.Equal(t, "done", verify.StateDone.String())
	assert.Equal(t, "State(7)", verify.State(7).String())
}

// TestMemoryStoreFull: Full agrees with what Reserve of a new key would
// answer, counts expired keys out, and with EvictDone is false while a done
// key could make room.
func TestMemoryStoreFull(t *testing.T) {
	ctx := t.Context()
	for _, evict := range []bool{false, true} {
		t.Run(fmt.Sprintf("EvictDone=%v", evict), func(t *testing.T) {
			clk := &fakeClock{now: mwNow}
			s := verify.NewMemoryStore(verify.MemoryStoreOptions{MaxEntries: 2, EvictDone: evict, Now: clk.Now})
			assert.False(t, s.Full())
			r, _, err := s.Reserve(ctx, "a", time.Minute)
			require.NoError(t, err)
			_, _, err = s.Reserve(ctx, "b", time.Hour)
			require.NoError(t, err)
			assert.True(t, s.Full(), "two keys in flight")

			require.NoError(t, s.Done(ctx, r, time.Minute))
			assert.Equal(t, !evict, s.Full(), "a done key makes room only with EvictDone")

			clk.now = clk.now.Add(2 * time.Minute)
			assert.False(t, s.Full(), "an expired key is no longer held")
			_, _, err = s.Reserve(ctx, "c", time.Minute)
			require.NoError(t, err)
			assert.True(t, s.Full())
			_, _, err = s.Reserve(ctx, "d", time.Minute)
			assert.ErrorIs(t, err, verify.ErrStoreFull, "Full said so")
		})
	}
}

func TestMemoryStoreContract(t *testing.T) {
	verifytest.TestStore(t, func(*testing.T) verify.Store {
		return verify.NewMemoryStore(verify.MemoryStoreOptions{})
	})
	verifytest.TestStoreWallClock(t, func(_ *testing.T, now func() time.Time) verify.Store {
		return verify.NewMemoryStore(verify.MemoryStoreOptions{Now: now})
	})
}
