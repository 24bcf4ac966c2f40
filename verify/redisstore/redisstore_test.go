package redisstore_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
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

// redisServer is a redis-server of this test, on a free loopback port,
// without persistence, in a temporary directory.
type redisServer struct {
	t    *testing.T
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	s := &redisServer{
		t:    t,
		bin:  testenv.Binary(t, "redis-server", "apt-get install -y redis-server"),
		dir:  t.TempDir(),
		addr: testenv.Addr(testenv.FreePort(t)),
	}
	s.start()
	return s
}

func (s *redisServer) start() {
	s.t.Helper()
	_, port, _ := strings.Cut(s.addr, ":")
	s.cmd = exec.Command(s.bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir)
	testenv.Start(s.t, s.cmd)
	testenv.WaitTCP(s.t, s.addr, 10*time.Second)
}

// stop kills the server by its process id.
func (s *redisServer) stop() {
	s.t.Helper()
	require.NoError(s.t, s.cmd.Process.Kill())
	_ = s.cmd.Wait()
}

func (s *redisServer) client(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:        s.addr,
		DialTimeout: time.Second,
		ReadTimeout: time.Second,
		MaxRetries:  -1, // fail at once when the server is gone
	})
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStates(t *testing.T) {
	srv := startRedis(t)
	ctx := t.Context()
	c := srv.client(t)
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
	srv := startRedis(t)
	ctx := t.Context()
	c := srv.client(t)
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
	srv := startRedis(t)
	ctx := t.Context()
	c := srv.client(t)
	require.NoError(t, c.Set(ctx, redisstore.DefaultPrefix+"evt_1", "someone else's", 0).Err())
	_, _, err := redisstore.New(c, redisstore.Options{}).Reserve(ctx, "evt_1", time.Minute)
	assert.ErrorIs(t, err, redisstore.ErrUnexpectedValue)
}

func TestConcurrentReserveAcrossInstances(t *testing.T) {
	srv := startRedis(t)
	ctx := t.Context()
	// Two instances, each with its own connection pool, as on two machines.
	stores := []*redisstore.Store{
		redisstore.New(srv.client(t), redisstore.Options{}),
		redisstore.New(srv.client(t), redisstore.Options{}),
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
	srv := startRedis(t)
	ctx := t.Context()
	a := redisstore.New(srv.client(t), redisstore.Options{})
	b := redisstore.New(srv.client(t), redisstore.Options{})

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
	srv := startRedis(t)
	ctx := t.Context()
	c := srv.client(t)
	s := redisstore.New(c, redisstore.Options{})

	_, _, err := s.Reserve(ctx, "evt_1", 100*time.Millisecond)
	require.NoError(t, err)
	ttl, err := c.PTTL(ctx, redisstore.DefaultPrefix+"evt_1").Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, time.Duration(0))
	assert.LessOrEqual(t, ttl, 100*time.Millisecond)
	waitReservable(t, s, "evt_1")

	// A sub-millisecond ttl is rounded up, not refused by PX.
	_, st, err := s.Reserve(ctx, "evt_tiny", time.Microsecond)
	require.NoError(t, err)
	assert.Equal(t, verify.StateNew, st)
}

// waitReservable polls until s can reserve key, that is until the current
// holder's reservation expired.
func waitReservable(t *testing.T, s *redisstore.Store, key string) verify.Reservation {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, st, err := s.Reserve(t.Context(), key, time.Minute)
		require.NoError(t, err)
		if st == verify.StateNew {
			return r
		}
		require.True(t, time.Now().Before(deadline), "%s never expired", key)
		time.Sleep(5 * time.Millisecond)
	}
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
	srv := startRedis(t)
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	quiet := func(*http.Request, error) {}
	h1, calls1 := newVerifier(t, secret, redisstore.New(srv.client(t), redisstore.Options{}), quiet)
	h2, calls2 := newVerifier(t, secret, redisstore.New(srv.client(t), redisstore.Options{}), quiet)

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
	srv := startRedis(t)
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	var mu sync.Mutex
	var rejected []error
	h, calls := newVerifier(t, secret, redisstore.New(srv.client(t), redisstore.Options{}), func(_ *http.Request, err error) {
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

	srv.stop()
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
	s := redisstore.New(srv.client(t), redisstore.Options{})
	_, _, err = s.Reserve(t.Context(), "evt_direct", time.Minute)
	assert.Error(t, err)
	assert.Error(t, s.Done(t.Context(), verify.Reservation{Key: "evt_direct", Token: "t"}, time.Minute))
	assert.Error(t, s.Release(t.Context(), verify.Reservation{Key: "evt_direct", Token: "t"}))

	// Back on the same address, the same client recovers.
	srv.start()
	deadline := time.Now().Add(10 * time.Second)
	for send("evt_during").Code != http.StatusOK {
		require.True(t, time.Now().Before(deadline), "no recovery after restart")
		time.Sleep(50 * time.Millisecond)
	}
	assert.Equal(t, int32(2), calls.Load())
}
