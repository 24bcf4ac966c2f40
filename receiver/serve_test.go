package receiver

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

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

// limits.max_connections: the connections beyond it wait in the kernel's
// accept queue until one of those being served closes.
func TestServerMaxConnections(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Limits.MaxConnections = 2
	h := newHarness(t, cfg, ServerOptions{})
	url, _, _ := h.serve()
	addr := strings.TrimPrefix(url, "http://")

	// Two idle connections take both places.
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		held = append(held, c)
		t.Cleanup(func() { c.Close() })
	}
	// A third connects (the kernel accepts it) but is not served.
	third, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { third.Close() })
	_, err = io.WriteString(third, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	r := bufio.NewReader(third)
	require.NoError(t, third.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err = http.ReadResponse(r, nil)
	var ne net.Error
	require.ErrorAs(t, err, &ne, "served beyond the limit")
	require.True(t, ne.Timeout(), "%v", err)

	// Once one closes, the third is served.
	require.NoError(t, held[0].Close())
	require.NoError(t, third.SetReadDeadline(time.Now().Add(10*time.Second)))
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestLimitsConfigChecked(t *testing.T) {
	for _, tc := range []struct {
		limits LimitsConfig
		path   string
	}{
		{LimitsConfig{MaxConnections: -1}, "limits.max_connections"},
		{LimitsConfig{MaxBodyBytesInFlight: -1}, "limits.max_body_bytes_in_flight"},
		{LimitsConfig{MaxBodyBytesInFlight: verify.DefaultMaxBodyBytes - 1}, "limits.max_body_bytes_in_flight"},
	} {
		cfg := testConfig(t.TempDir())
		cfg.Limits = tc.limits
		_, err := NewServer(cfg, ServerOptions{Inline: true})
		require.ErrorIs(t, err, ErrInvalidConfig)
		assert.Contains(t, err.Error(), tc.path)
	}
}

// An outbox others can write to is refused at start, whatever the sinks:
// it holds the dry runs and an earlier version's dead letters.
func TestServerRefusesUnsafeOutbox(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o777))
	cfg := testConfig(dir)
	_, err := NewServer(cfg, ServerOptions{Inline: true})
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "outbox")

	require.NoError(t, os.Chmod(dir, 0o700))
	srv, err := NewServer(cfg, ServerOptions{Inline: true})
	require.NoError(t, err)
	srv.Close()
}
