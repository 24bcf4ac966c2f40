package redisstore_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/redisstore"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// client returns a client of srv. Its timeouts are generous for a loaded
// machine (the pool waits ReadTimeout+1s for a free connection), but it does
// not retry, so a stopped server fails a call at once.
func client(t *testing.T, srv *testenv.Redis) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:         srv.Addr,
		DialTimeout:  5 * time.Second,
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
		MaxRetries:   -1,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStates(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := t.Context()
	c := client(t, srv)
	s := redisstore.New(c, redisstore.Options{})

	r, st, err := s.Reserve(ctx, "evt_1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateNew, st)
	assert.Equal(t, "evt_1", r.Key)
	assert.Len(t, r.Token, 26, "crypto/rand.Text: 128 bits")

	_, st, err = s.Reserve(ctx, "evt_1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateInFlight, st)

	val, err := c.Get(ctx, redisstore.DefaultPrefix+"evt_1").Result()
	require.NoError(t, err)
	assert.Equal(t, "f:"+r.Token, val)

	require.NoError(t, s.Done(ctx, r, time.Hour))
	_, st, err = s.Reserve(ctx, "evt_1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateDone, st)
	ttl, err := c.PTTL(ctx, redisstore.DefaultPrefix+"evt_1").Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 59*time.Minute, "done keeps the key for the new ttl")

	// Done is final.
	require.NoError(t, s.Release(ctx, r))
	_, st, _ = s.Reserve(ctx, "evt_1", time.Minute)
	assert.Equal(t, verify.StateDone, st, "release after done does nothing")
	assert.ErrorIs(t, s.Done(ctx, r, time.Hour), verify.ErrReservationLost)

	// Release by the holder frees the key.
	r2, _, err := s.Reserve(ctx, "evt_2", time.Minute)
	require.NoError(t, err)
	require.NoError(t, s.Release(ctx, r2))
	r3, st, err := s.Reserve(ctx, "evt_2", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateNew, st)
	assert.NotEqual(t, r2.Token, r3.Token)
}

func TestPrefix(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := t.Context()
	c := client(t, srv)
	a := redisstore.New(c, redisstore.Options{Prefix: "hook-a:"})
	b := redisstore.New(c, redisstore.Options{Prefix: "hook-b:"})
	_, st, err := a.Reserve(ctx, "evt_1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateNew, st)
	_, st, err = b.Reserve(ctx, "evt_1", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateNew, st, "prefixes keep webhooks apart")
	n, err := c.Exists(ctx, "hook-a:evt_1", "hook-b:evt_1").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
}

func TestUnexpectedValue(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := t.Context()
	c := client(t, srv)
	require.NoError(t, c.Set(ctx, redisstore.DefaultPrefix+"evt_1", "someone else's", 0).Err())
	_, _, err := redisstore.New(c, redisstore.Options{}).Reserve(ctx, "evt_1", time.Minute)
	assert.ErrorIs(t, err, redisstore.ErrUnexpectedValue)
}

func TestConcurrentReserveAcrossInstances(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := t.Context()
	// Two instances, each with its own connection pool, as on two machines.
	stores := []*redisstore.Store{
		redisstore.New(client(t, srv), redisstore.Options{}),
		redisstore.New(client(t, srv), redisstore.Options{}),
	}
	for round := range 20 {
		key := "evt_" + strconv.Itoa(round)
		var news, inFlight atomic.Int32
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, st, err := stores[i%2].Reserve(ctx, key, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				switch st {
				case verify.StateNew:
					news.Add(1)
				case verify.StateInFlight:
					inFlight.Add(1)
				}
			}()
		}
		wg.Wait()
		require.Equal(t, int32(1), news.Load(), "round %d: exactly one StateNew", round)
		require.Equal(t, int32(31), inFlight.Load(), "round %d", round)
	}
}

func TestOneInstanceCannotTouchAnothersReservation(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := t.Context()
	a := redisstore.New(client(t, srv), redisstore.Options{})
	b := redisstore.New(client(t, srv), redisstore.Options{})

	ra, st, err := a.Reserve(ctx, "evt_1", time.Minute)
	require.NoError(t, err)
	require.Equal(t, verify.StateNew, st)

	// b knows the key but not a's token.
	for _, forged := range []verify.Reservation{
		{Key: "evt_1"},
		{Key: "evt_1", Token: "AAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{Key: "evt_1", Token: ra.Token + "x"},
	} {
		assert.ErrorIs(t, b.Done(ctx, forged, time.Hour), verify.ErrReservationLost, "forged %q", forged.Token)
		require.NoError(t, b.Release(ctx, forged))
		_, st, err := b.Reserve(ctx, "evt_1", time.Minute)
		require.NoError(t, err)
		assert.Equal(t, verify.StateInFlight, st, "a's reservation survives %q", forged.Token)
	}

	// a's reservation expires and b takes the key: a can no longer finish
	// or release it.
	ra, _, err = a.Reserve(ctx, "evt_2", 20*time.Millisecond)
	require.NoError(t, err)
	rb := waitReservable(t, b, "evt_2")
	assert.ErrorIs(t, a.Done(ctx, ra, time.Hour), verify.ErrReservationLost)
	require.NoError(t, a.Release(ctx, ra))
	_, st, err = a.Reserve(ctx, "evt_2", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, verify.StateInFlight, st, "b still holds it")
	require.NoError(t, b.Done(ctx, rb, time.Minute))
}

func TestExpiry(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := t.Context()
	c := client(t, srv)
	s := redisstore.New(c, redisstore.Options{})

	// A ttl long enough that no stall of this process lets it run out
	// before PTTL reads it.
	_, _, err := s.Reserve(ctx, "evt_1", 2*time.Second)
	require.NoError(t, err)
	ttl, err := c.PTTL(ctx, redisstore.DefaultPrefix+"evt_1").Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Duration(0))
	assert.LessOrEqual(t, ttl, 2*time.Second)

	// A short one, only to see the key expire.
	_, _, err = s.Reserve(ctx, "evt_short", 50*time.Millisecond)
	require.NoError(t, err)
	waitReservable(t, s, "evt_short")

	// A sub-millisecond ttl is rounded up, not refused by PX.
	_, st, err := s.Reserve(ctx, "evt_tiny", time.Microsecond)
	require.NoError(t, err)
	assert.Equal(t, verify.StateNew, st)
}

// waitReservable polls until s can reserve key, that is until the current
// holder's reservation expired.
func waitReservable(t *testing.T, s *redisstore.Store, key string) verify.Reservation {
	t.Helper()
	var r verify.Reservation
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got, st, err := s.Reserve(t.Context(), key, time.Minute)
		require.NoError(c, err)
		require.Equal(c, verify.StateNew, st, "%s has not expired", key)
		r = got
	}, 20*time.Second, 10*time.Millisecond)
	return r
}

// newVerifier returns a verifier whose middleware keeps ids in store, and a
// handler behind it that counts the requests it gets.
func newVerifier(t *testing.T, secret verify.Secret, store verify.Store, onError func(*http.Request, error)) (http.Handler, *atomic.Int32) {
	t.Helper()
	v, err := verify.NewVerifier(verify.Options{
		Keys:    []verify.Key{{Secret: secret}},
		Store:   store,
		OnError: onError,
	})
	require.NoError(t, err)
	var calls atomic.Int32
	return v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) })), &calls
}

func TestMiddlewareAcrossInstances(t *testing.T) {
	srv := testenv.StartRedis(t)
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	quiet := func(*http.Request, error) {}
	h1, calls1 := newVerifier(t, secret, redisstore.New(client(t, srv), redisstore.Options{}), quiet)
	h2, calls2 := newVerifier(t, secret, redisstore.New(client(t, srv), redisstore.Options{}), quiet)

	body := []byte(`{"type":"signal"}`)
	rec := httptest.NewRecorder()
	h1.ServeHTTP(rec, verifytest.NewRequest(secret, "evt_1", time.Now(), "/", body))
	assert.Equal(t, http.StatusOK, rec.Code)

	// The sender's retry lands on the other instance.
	rec = httptest.NewRecorder()
	h2.ServeHTTP(rec, verifytest.NewRequest(secret, "evt_1", time.Now(), "/", body))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader))
	assert.Equal(t, int32(1), calls1.Load())
	assert.Zero(t, calls2.Load(), "processed once across both instances")
}

func TestOutageFailsClosed(t *testing.T) {
	srv := testenv.StartRedis(t)
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	var mu sync.Mutex
	var rejected []error
	h, calls := newVerifier(t, secret, redisstore.New(client(t, srv), redisstore.Options{}), func(_ *http.Request, err error) {
		mu.Lock()
		rejected = append(rejected, err)
		mu.Unlock()
	})
	send := func(id string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, verifytest.NewRequest(secret, id, time.Now(), "/", []byte("{}")))
		return rec
	}

	require.Equal(t, http.StatusOK, send("evt_before").Code)

	srv.Stop()
	rec := send("evt_during")
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.NotEmpty(t, rec.Header().Get("Retry-After"))
	var fb struct {
		Error struct{ Code string } `json:"error"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &fb))
	assert.Equal(t, "store_unavailable", fb.Error.Code)
	assert.Equal(t, int32(1), calls.Load(), "nothing reaches next without the store")
	mu.Lock()
	require.Len(t, rejected, 1)
	assert.ErrorIs(t, rejected[0], verify.ErrStoreUnavailable)
	mu.Unlock()

	// The store's own calls fail too, rather than answer a state.
	s := redisstore.New(client(t, srv), redisstore.Options{})
	_, _, err = s.Reserve(t.Context(), "evt_direct", time.Minute)
	assert.Error(t, err)
	assert.Error(t, s.Done(t.Context(), verify.Reservation{Key: "evt_direct", Token: "t"}, time.Minute))
	assert.Error(t, s.Release(t.Context(), verify.Reservation{Key: "evt_direct", Token: "t"}))

	// Back on the same address, the same client recovers.
	srv.Start()
	require.Eventually(t, func() bool { return send("evt_during").Code == http.StatusOK },
		20*time.Second, 50*time.Millisecond, "no recovery after restart")
	assert.Equal(t, int32(2), calls.Load())
}

func TestStoreContract(t *testing.T) {
	srv := testenv.StartRedis(t)
	c := client(t, srv)
	verifytest.TestStore(t, func(t *testing.T) verify.Store {
		// A key space of its own for each subtest, on the one server.
		return redisstore.New(c, redisstore.Options{Prefix: "contract:" + t.Name() + ":"})
	})
	verifytest.TestStoreWallClock(t, func(t *testing.T, now func() time.Time) verify.Store {
		return redisstore.New(c, redisstore.Options{Prefix: "contract:" + t.Name() + ":", Now: now})
	})
}

// The key is held until its ttl has passed on Redis's clock and, from
// Options.Now, on the receiver's: a receiver whose clock is ahead of
// Redis's (and may be stepped back) holds the key for longer; one whose
// clock is behind keeps Redis's ttl.
func TestExpiryOnTheReceiversWallClock(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := t.Context()
	c := client(t, srv)
	for _, tc := range []struct {
		name     string
		skew     time.Duration
		min, max time.Duration
	}{
		{"clock an hour ahead", time.Hour, time.Hour, time.Hour + 2*time.Second},
		{"clock an hour behind", -time.Hour, time.Second, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := redisstore.New(c, redisstore.Options{
				Prefix: "skew:" + t.Name() + ":",
				Now:    func() time.Time { return time.Now().Add(tc.skew) },
			})
			r, st, err := s.Reserve(ctx, "evt_1", 2*time.Second)
			require.NoError(t, err)
			require.Equal(t, verify.StateNew, st)
			key := "skew:" + t.Name() + ":evt_1"
			ttl, err := c.PTTL(ctx, key).Result()
			require.NoError(t, err)
			assert.GreaterOrEqual(t, ttl, tc.min, "reserved")
			assert.LessOrEqual(t, ttl, tc.max, "reserved")

			require.NoError(t, s.Done(ctx, r, 2*time.Second))
			ttl, err = c.PTTL(ctx, key).Result()
			require.NoError(t, err)
			assert.GreaterOrEqual(t, ttl, tc.min, "done")
			assert.LessOrEqual(t, ttl, tc.max, "done")
		})
	}
}

// A receiver's clock runs ahead of Redis's, and NTP steps it back after a
// request was processed. Once the retention has passed on Redis's clock, a
// replay of the captured request is within the tolerance again on the
// receiver's: its id must still be held.
func TestReplayAfterTheReceiversClockSteppedBack(t *testing.T) {
	srv := testenv.StartRedis(t)
	const (
		tolerance = 2 * time.Second
		ahead     = 3 * tolerance
	)
	var skew atomic.Int64
	skew.Store(int64(ahead))
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	v, err := verify.NewVerifier(verify.Options{
		Keys:      []verify.Key{{Secret: secret}},
		Tolerance: tolerance, // the retention is twice as long
		Now:       now,
		Store:     redisstore.New(client(t, srv), redisstore.Options{Now: now}),
		OnError:   func(*http.Request, error) {},
	})
	require.NoError(t, err)
	var calls atomic.Int32
	h := v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	signedAt := now()
	captured := verifytest.SignedHeaders(secret, "evt_captured", signedAt, []byte(`{}`))
	send := func() *httptest.ResponseRecorder {
		req := verifytest.NewRequest(secret, "evt_captured", signedAt, "/", []byte(`{}`))
		req.Header = captured.Clone()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	start := time.Now()
	require.Equal(t, http.StatusOK, send().Code)

	skew.Store(0) // NTP: the receiver's clock agrees with Redis's again
	// The retention, 2·tolerance, runs out on Redis's clock at start+4s;
	// the signed timestamp, at most start+6s, is accepted on the
	// receiver's clock from start+4s to start+8s.
	time.Sleep(time.Until(start.Add(2*tolerance + tolerance/4)))
	rec := send()
	if elapsed := time.Since(start); elapsed >= ahead+tolerance {
		t.Skipf("the replay was sent %v after the request, past the window it is accepted in: the machine is too slow for this check", elapsed)
	}
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader), "the replay is a duplicate")
	assert.Equal(t, int32(1), calls.Load(), "the replay must not be processed")
}
