package sender_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/sender"
	"github.com/stairhook/stairhook/verify"
)

// clock is a fake clock that the fake sleep advances, so that schedules of
// hours run instantly and signed timestamps follow the waits.
type clock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newClock() *clock { return &clock{now: time.Unix(1_764_115_200, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func (c *clock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

func mustSecret(t testing.TB) verify.Secret {
	t.Helper()
	s, err := verify.NewSecret()
	require.NoError(t, err)
	return s
}

// captured is one request as the test receiver saw it.
type captured struct {
	header http.Header
	body   []byte
}

// receiver is an httptest server running this module's verify middleware
// in front of a handler that answers the scripted statuses in turn (then
// 200), counting the requests that reached it.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	script   []int
	headers  map[string]string // extra response headers per call index "i:name"
	reached  []captured        // requests that passed verification
	arrived  int               // every request, verified or not
	rejected []error
}

func newReceiver(t *testing.T, clk *clock, keys []verify.Key, script ...int) *receiver {
	t.Helper()
	r := &receiver{script: script, headers: map[string]string{}}
	v, err := verify.NewVerifier(verify.Options{
		Keys:  keys,
		Now:   clk.Now,
		Store: verify.NewMemoryStore(verify.MemoryStoreOptions{Now: clk.Now}),
		OnError: func(_ *http.Request, err error) {
			r.mu.Lock()
			r.rejected = append(r.rejected, err)
			r.mu.Unlock()
		},
	})
	require.NoError(t, err)
	next := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		i := len(r.reached)
		r.reached = append(r.reached, captured{req.Header.Clone(), body})
		status := http.StatusOK
		if i < len(r.script) {
			status = r.script[i]
		}
		for k, val := range r.headers {
			if strings.HasPrefix(k, fmt.Sprintf("%d:", i)) {
				w.Header().Set(strings.TrimPrefix(k, fmt.Sprintf("%d:", i)), val)
			}
		}
		r.mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprintf(w, "answer %d", i+1)
	})
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.arrived++
		r.mu.Unlock()
		v.Middleware(next).ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) Reached() []captured {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]captured(nil), r.reached...)
}

func (r *receiver) Arrived() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.arrived
}

func newSender(clk *clock, opts sender.Options) *sender.Sender {
	opts.Now = clk.Now
	opts.Sleep = clk.Sleep
	return sender.New(opts)
}

func TestSendDeliversSignedRequest(t *testing.T) {
	clk := newClock()
	sec := mustSecret(t)
	rcv := newReceiver(t, clk, []verify.Key{{Label: "current", Secret: sec}})
	s := newSender(clk, sender.Options{})
	body := []byte(`{"id":"evt_1","type":"churn_risk"}`)

	rep, err := s.Send(context.Background(), sender.Endpoint{URL: rcv.srv.URL, Secrets: []verify.Secret{sec}}, "evt_1", body)
	require.NoError(t, err)
	assert.True(t, rep.Delivered())
	require.Len(t, rep.Attempts, 1)
	a := rep.Attempts[0]
	assert.Equal(t, 1, a.Number)
	assert.Equal(t, http.StatusOK, a.Status)
	assert.Equal(t, "answer 1", string(a.Body))
	assert.NoError(t, a.Err)
	assert.Zero(t, a.Waited)

	got := rcv.Reached()
	require.Len(t, got, 1)
	assert.Equal(t, body, got[0].body)
	assert.Equal(t, "evt_1", got[0].header.Get("X-Staircase-Id"))
	assert.Equal(t, "1764115200", got[0].header.Get("X-Staircase-Timestamp"))
	assert.Equal(t, sender.UserAgent, got[0].header.Get("User-Agent"))
	assert.Equal(t, "application/json", got[0].header.Get("Content-Type"))
	assert.Empty(t, clk.Sleeps(), "the first attempt goes out immediately")
}

func TestSendOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		script   []int
		attempts int
		err      error
	}{
		{"2xx at once", []int{http.StatusAccepted}, 1, nil},
		{"500 then 200", []int{500, 200}, 2, nil},
		{"retryable 4xx: 408, 409, 429", []int{408, 409, 429, 204}, 4, nil},
		{"5xx until the schedule runs out", []int{500, 502, 503, 504, 500}, 5, sender.ErrGaveUp},
		{"3xx is retried, not followed", []int{302, 200}, 2, nil},
		{"400 is permanent", []int{400}, 1, sender.ErrPermanentRejection},
		{"401 is permanent", []int{500, 401}, 2, sender.ErrPermanentRejection},
		{"404 is permanent", []int{404}, 1, sender.ErrPermanentRejection},
		{"422 is permanent", []int{422}, 1, sender.ErrPermanentRejection},
		// 1xx cannot be scripted through net/http; 418 stands for "other 4xx".
		{"418 is permanent", []int{418}, 1, sender.ErrPermanentRejection},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			sec := mustSecret(t)
			rcv := newReceiver(t, clk, []verify.Key{{Secret: sec}}, tc.script...)
			s := newSender(clk, sender.Options{Jitter: -1})
			rep, err := s.Send(context.Background(), sender.Endpoint{URL: rcv.srv.URL, Secrets: []verify.Secret{sec}}, "evt_outcome", []byte(`{}`))
			if tc.err == nil {
				require.NoError(t, err)
				assert.True(t, rep.Delivered())
			} else {
				require.ErrorIs(t, err, tc.err)
				assert.False(t, rep.Delivered())
			}
			assert.Len(t, rep.Attempts, tc.attempts)
			assert.Len(t, rcv.Reached(), tc.attempts)
			for i, a := range rep.Attempts {
				assert.Equal(t, tc.script[i], a.Status, "attempt %d", i+1)
				assert.Equal(t, i+1, a.Number)
			}
		})
	}
}

func TestSendSameIDFreshSignatureEachAttempt(t *testing.T) {
	clk := newClock()
	sec := mustSecret(t)
	rcv := newReceiver(t, clk, []verify.Key{{Secret: sec}}, 503, 500, 200)
	s := newSender(clk, sender.Options{Jitter: -1})
	_, err := s.Send(context.Background(), sender.Endpoint{URL: rcv.srv.URL, Secrets: []verify.Secret{sec}}, "evt_same", []byte(`{"a":1}`))
	require.NoError(t, err)
	got := rcv.Reached()
	require.Len(t, got, 3)
	ts := map[string]bool{}
	sigs := map[string]bool{}
	for _, c := range got {
		assert.Equal(t, "evt_same", c.header.Get("X-Staircase-Id"))
		ts[c.header.Get("X-Staircase-Timestamp")] = true
		sigs[c.header.Get("X-Staircase-Signature")] = true
	}
	assert.Len(t, ts, 3, "a new timestamp on every attempt")
	assert.Len(t, sigs, 3, "a new signature on every attempt")
	// The schedule's waits are 5 s then 5 min, and the signed timestamps follow.
	assert.Equal(t, []string{"1764115200", "1764115205", "1764115505"},
		[]string{got[0].header.Get("X-Staircase-Timestamp"), got[1].header.Get("X-Staircase-Timestamp"), got[2].header.Get("X-Staircase-Timestamp")})
}

func TestSendSchedule(t *testing.T) {
	t.Run("default schedule without jitter", func(t *testing.T) {
		clk := newClock()
		sec := mustSecret(t)
		rcv := newReceiver(t, clk, []verify.Key{{Secret: sec}}, 500, 500, 500, 500, 500)
		s := newSender(clk, sender.Options{Jitter: -1})
		rep, err := s.Send(context.Background(), sender.Endpoint{URL: rcv.srv.URL, Secrets: []verify.Secret{sec}}, "evt_sched", nil)
		require.ErrorIs(t, err, sender.ErrGaveUp)
		assert.Equal(t, sender.DefaultSchedule()[1:], clk.Sleeps())
		for i, a := range rep.Attempts {
			assert.Equal(t, sender.DefaultSchedule()[i], a.Waited)
		}
	})
	t.Run("default jitter stays within 10 percent", func(t *testing.T) {
		sec := mustSecret(t)
		distinct := map[time.Duration]bool{}
		for range 20 {
			clk := newClock()
			rcv := newReceiver(t, clk, []verify.Key{{Secret: sec}}, 500, 500, 500, 500, 500)
			s := newSender(clk, sender.Options{})
			_, err := s.Send(context.Background(), sender.Endpoint{URL: rcv.srv.URL, Secrets: []verify.Secret{sec}}, "evt_jitter", nil)
			require.ErrorIs(t, err, sender.ErrGaveUp)
			sleeps := clk.Sleeps()
			require.Len(t, sleeps, 4, "the immediate attempt has no wait")
			for i, d := range sleeps {
				step := sender.DefaultSchedule()[i+1]
				assert.GreaterOrEqual(t, d, step*9/10, "step %v", step)
				assert.LessOrEqual(t, d, step*11/10, "step %v", step)
			}
			distinct[sleeps[3]] = true
			rcv.srv.Close()
		}
		assert.Greater(t, len(distinct), 1, "jitter varies the delays")
	})
	t.Run("custom schedule sets the number of attempts", func(t *testing.T) {
		clk := newClock()
		sec := mustSecret(t)
		rcv := newReceiver(t, clk, []verify.Key{{Secret: sec}}, 500, 500, 500)
		s := newSender(clk, sender.Options{Schedule: []time.Duration{0, time.Second}, Jitter: -1})
		rep, err := s.Send(context.Background(), sender.Endpoint{URL: rcv.srv.URL, Secrets: []verify.Secret{sec}}, "evt_custom", nil)
		require.ErrorIs(t, err, sender.ErrGaveUp)
		assert.Contains(t, err.Error(), "last status 500")
		assert.Len(t, rep.Attempts, 2)
		assert.Equal(t, []time.Duration{time.Second}, clk.Sleeps())
	})
}

func TestSendRetryAfter(t *testing.T) {
	base := time.Unix(1_764_115_200, 0)
	tests := []struct {
		name       string
		status     int
		retryAfter string
		want       time.Duration // the wait before attempt 2; the step is 5 s
	}{
		{"503 longer than the step", 503, "600", 600 * time.Second},
		{"429 longer than the step", 429, "60", time.Minute},
		{"shorter than the step keeps the step", 503, "1", 5 * time.Second},
		{"HTTP date", 503, base.Add(90 * time.Second).UTC().Format(http.TimeFormat), 90 * time.Second},
		{"capped", 429, "99999999", sender.MaxRetryAfter},
		{"unreadable ignored", 503, "soon", 5 * time.Second},
		{"ignored on a 500", 500, "600", 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			sec := mustSecret(t)
			rcv := newReceiver(t, clk, []verify.Key{{Secret: sec}}, tc.status, 200)
			rcv.headers["0:Retry-After"] = tc.retryAfter
			s := newSender(clk, sender.Options{Jitter: -1})
			rep, err := s.Send(context.Background(), sender.Endpoint{URL: rcv.srv.URL, Secrets: []verify.Secret{sec}}, "evt_ra", nil)
			require.NoError(t, err)
			require.Len(t, rep.Attempts, 2)
			assert.Equal(t, []time.Duration{tc.want}, clk.Sleeps())
			assert.Equal(t, tc.want, rep.Attempts[1].Waited)
		})
	}
}

func TestSendRefusesBeforeSending(t *testing.T) {
	sec := mustSecret(t)
	tests := []struct {
		name string
		ep   func(url string) sender.Endpoint
		id   string
		err  error
	}{
		{"disabled", func(u string) sender.Endpoint {
			return sender.Endpoint{URL: u, Secrets: []verify.Secret{sec}, Disabled: true}
		}, "evt_1", sender.ErrDisabled},
		{"no secret", func(u string) sender.Endpoint { return sender.Endpoint{URL: u} }, "evt_1", verify.ErrInvalidSecret},
		{"zero secret", func(u string) sender.Endpoint {
			return sender.Endpoint{URL: u, Secrets: []verify.Secret{{}}}
		}, "evt_1", verify.ErrInvalidSecret},
		{"relative URL", func(string) sender.Endpoint {
			return sender.Endpoint{URL: "/webhooks/x", Secrets: []verify.Secret{sec}}
		}, "evt_1", sender.ErrInvalidEndpoint},
		{"ftp URL", func(string) sender.Endpoint {
			return sender.Endpoint{URL: "ftp://127.0.0.1/x", Secrets: []verify.Secret{sec}}
		}, "evt_1", sender.ErrInvalidEndpoint},
		{"empty id", func(u string) sender.Endpoint {
			return sender.Endpoint{URL: u, Secrets: []verify.Secret{sec}}
		}, "", sender.ErrInvalidID}, // and the body {} has none
		{"id with a space", func(u string) sender.Endpoint {
			return sender.Endpoint{URL: u, Secrets: []verify.Secret{sec}}
		}, "evt 1", sender.ErrInvalidID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			rcv := newReceiver(t, clk, []verify.Key{{Secret: sec}})
			rep, err := newSender(clk, sender.Options{}).Send(context.Background(), tc.ep(rcv.srv.URL), tc.id, []byte(`{}`))
			require.ErrorIs(t, err, tc.err)
			require.NotNil(t, rep)
			assert.Empty(t, rep.Attempts)
			assert.Zero(t, rcv.Arrived(), "nothing may be sent")
		})
	}
}

func TestSendRotationSignsWithEverySecret(t *testing.T) {
	oldSec, newSec := mustSecret(t), mustSecret(t)
	for _, keys := range [][]verify.Key{
		{{Label: "old", Secret: oldSec}},
		{{Label: "new", Secret: newSec}},
	} {
		t.Run(keys[0].Label, func(t *testing.T) {
			clk := newClock()
			rcv := newReceiver(t, clk, keys)
			rep, err := newSender(clk, sender.Options{}).Send(context.Background(),
				sender.Endpoint{URL: rcv.srv.URL, Secrets: []verify.Secret{oldSec, newSec}}, "evt_rot", []byte(`{}`))
			require.NoError(t, err)
			assert.Len(t, rep.Attempts, 1)
			require.Len(t, rcv.Reached(), 1)
			assert.Len(t, strings.Fields(rcv.Reached()[0].header.Get("X-Staircase-Signature")), 2)
		})
	}
	t.Run("a receiver without either secret rejects", func(t *testing.T) {
		clk := newClock()
		rcv := newReceiver(t, clk, []verify.Key{{Secret: mustSecret(t)}})
		_, err := newSender(clk, sender.Options{}).Send(context.Background(),
			sender.Endpoint{URL: rcv.srv.URL, Secrets: []verify.Secret{oldSec, newSec}}, "evt_rot", []byte(`{}`))
		require.ErrorIs(t, err, sender.ErrPermanentRejection)
		assert.Contains(t, err.Error(), "status 401")
	})
}

// TestSendFullLoopIdempotency runs sign → HTTP → verify middleware → store:
// a retry after a 500 is processed again, a redelivery after success gets
// the duplicate answer without reaching the handler.
func TestSendFullLoopIdempotency(t *testing.T) {
	clk := newClock()
	sec := mustSecret(t)
	rcv := newReceiver(t, clk, []verify.Key{{Secret: sec}}, 500, 200)
	s := newSender(clk, sender.Options{Jitter: -1})
	ep := sender.Endpoint{URL: rcv.srv.URL, Secrets: []verify.Secret{sec}}

	rep, err := s.Send(context.Background(), ep, "evt_loop", []byte(`{"id":"evt_loop"}`))
	require.NoError(t, err)
	require.Len(t, rep.Attempts, 2)
	assert.Len(t, rcv.Reached(), 2, "the retry after the 500 is processed")
	assert.False(t, rep.Attempts[1].Duplicate)

	// The sender redelivers the same event, for example after losing the
	// answer: the receiver says 200 duplicate and does not process it again.
	var dup http.Header
	s2 := sender.New(sender.Options{Now: clk.Now, Sleep: clk.Sleep, Client: &http.Client{Transport: headerTap{&dup}}})
	rep, err = s2.Send(context.Background(), ep, "evt_loop", []byte(`{"id":"evt_loop"}`))
	require.NoError(t, err)
	require.Len(t, rep.Attempts, 1)
	assert.Equal(t, http.StatusOK, rep.Attempts[0].Status)
	assert.Equal(t, "true", dup.Get(verify.DuplicateHeader))
	assert.True(t, rep.Attempts[0].Duplicate)
	assert.Len(t, rcv.Reached(), 2, "a duplicate never reaches the handler")

	// A tampered body with the same id is rejected, not deduplicated.
	rcv.mu.Lock()
	rcv.rejected = nil
	rcv.mu.Unlock()
	evil := sender.New(sender.Options{Now: clk.Now, Sleep: clk.Sleep, Client: &http.Client{Transport: tamper{}}})
	_, err = evil.Send(context.Background(), ep, "evt_loop", []byte(`{"id":"evt_loop"}`))
	require.ErrorIs(t, err, sender.ErrPermanentRejection)
	rcv.mu.Lock()
	require.Len(t, rcv.rejected, 1)
	assert.ErrorIs(t, rcv.rejected[0], verify.ErrNoMatchingSignature)
	rcv.mu.Unlock()
}

// headerTap records the response headers.
type headerTap struct{ h *http.Header }

func (t headerTap) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		*t.h = resp.Header.Clone()
	}
	return resp, err
}

// tamper changes the body after signing, as a man in the middle would.
type tamper struct{}

func (tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	b = append(b, ' ')
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(strings.NewReader(string(b)))
	r2.ContentLength = int64(len(b))
	return http.DefaultTransport.RoundTrip(r2)
}

func TestSendTimeoutPerAttempt(t *testing.T) {
	clk := newClock()
	sec := mustSecret(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	s := newSender(clk, sender.Options{Timeout: 20 * time.Millisecond, Schedule: []time.Duration{0, time.Minute}})
	rep, err := s.Send(context.Background(), sender.Endpoint{URL: srv.URL, Secrets: []verify.Secret{sec}}, "evt_slow", nil)
	require.ErrorIs(t, err, sender.ErrGaveUp)
	require.Len(t, rep.Attempts, 2)
	for _, a := range rep.Attempts {
		assert.Zero(t, a.Status)
		assert.ErrorIs(t, a.Err, context.DeadlineExceeded)
	}
}

func TestSendBoundsResponseBody(t *testing.T) {
	sec := mustSecret(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", sender.MaxResponseBytes+1000)))
	}))
	defer srv.Close()
	rep, err := newSender(newClock(), sender.Options{}).Send(context.Background(), sender.Endpoint{URL: srv.URL, Secrets: []verify.Secret{sec}}, "evt_big", nil)
	require.NoError(t, err)
	assert.Len(t, rep.Attempts[0].Body, sender.MaxResponseBytes)
	assert.True(t, rep.Attempts[0].Truncated)
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	sec := mustSecret(t)
	var elsewhere int
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere++ }))
	defer other.Close()
	srv := httptest.NewServer(http.RedirectHandler(other.URL, http.StatusTemporaryRedirect))
	defer srv.Close()
	rep, err := newSender(newClock(), sender.Options{Schedule: []time.Duration{0}}).Send(context.Background(),
		sender.Endpoint{URL: srv.URL, Secrets: []verify.Secret{sec}}, "evt_redir", []byte(`{}`))
	require.ErrorIs(t, err, sender.ErrGaveUp)
	assert.Equal(t, http.StatusTemporaryRedirect, rep.Attempts[0].Status)
	assert.Zero(t, elsewhere, "the signed body must not follow a redirect")
}

func TestSendStopsWhenContextEnds(t *testing.T) {
	sec := mustSecret(t)
	clk := newClock()
	rcv := newReceiver(t, clk, []verify.Key{{Secret: sec}}, 500, 500, 500)
	ctx, cancel := context.WithCancel(context.Background())
	s := sender.New(sender.Options{
		Now: clk.Now,
		Sleep: func(ctx context.Context, d time.Duration) error {
			if d > 0 {
				cancel()
			}
			return ctx.Err()
		},
	})
	rep, err := s.Send(ctx, sender.Endpoint{URL: rcv.srv.URL, Secrets: []verify.Secret{sec}}, "evt_cancel", nil)
	require.ErrorIs(t, err, context.Canceled)
	assert.Len(t, rep.Attempts, 1)
	assert.Len(t, rcv.Reached(), 1)
}

func TestSendOnAttempt(t *testing.T) {
	sec := mustSecret(t)
	clk := newClock()
	rcv := newReceiver(t, clk, []verify.Key{{Secret: sec}}, 503, 201)
	var seen []int
	s := newSender(clk, sender.Options{OnAttempt: func(a sender.Attempt) { seen = append(seen, a.Status) }})
	_, err := s.Send(context.Background(), sender.Endpoint{URL: rcv.srv.URL, Secrets: []verify.Secret{sec}}, "evt_cb", nil)
	require.NoError(t, err)
	assert.Equal(t, []int{503, 201}, seen)
}

// TestReportNeverHoldsSecrets checks every field of the report and the
// error, on success and failure paths, for the secret and the signature.
func TestReportNeverHoldsSecrets(t *testing.T) {
	sec := mustSecret(t)
	var sigs []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sigs = append(sigs, r.Header.Get("X-Staircase-Signature"))
		n := len(sigs)
		mu.Unlock()
		if n < 3 {
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(400)
	}))
	defer srv.Close()
	clk := newClock()
	rep, err := newSender(clk, sender.Options{}).Send(context.Background(), sender.Endpoint{URL: srv.URL, Secrets: []verify.Secret{sec}}, "evt_leak", []byte(`{}`))
	require.ErrorIs(t, err, sender.ErrPermanentRejection)
	dump := fmt.Sprintf("%+v %#v %v", rep, rep, err)
	for _, a := range rep.Attempts {
		dump += fmt.Sprintf("%+v %#v %s", a, a, a.Body)
	}
	require.Len(t, sigs, 3)
	secretText := sec.Encode()
	for _, needle := range append(sigs, secretText, strings.TrimPrefix(secretText, verify.SecretPrefix)) {
		assert.NotContains(t, dump, needle)
		for _, part := range strings.Fields(needle) {
			assert.NotContains(t, dump, strings.TrimPrefix(part, "v1,"))
		}
	}
}

func TestSendTransportError(t *testing.T) {
	sec := mustSecret(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	rep, err := newSender(newClock(), sender.Options{Schedule: []time.Duration{0, time.Second}}).Send(context.Background(),
		sender.Endpoint{URL: url, Secrets: []verify.Secret{sec}}, "evt_down", nil)
	require.ErrorIs(t, err, sender.ErrGaveUp)
	require.Len(t, rep.Attempts, 2)
	assert.Error(t, rep.Attempts[1].Err)
	assert.False(t, errors.Is(err, sender.ErrPermanentRejection))
}

// BenchmarkSend measures one signed POST over loopback to a receiver
// running the verify middleware with the memory store, each with a new id.
func BenchmarkSend(b *testing.B) {
	sec, err := verify.NewSecret()
	require.NoError(b, err)
	v, err := verify.NewVerifier(verify.Options{
		Keys:  []verify.Key{{Secret: sec}},
		Store: verify.NewMemoryStore(verify.MemoryStoreOptions{MaxEntries: 1 << 24}),
	})
	require.NoError(b, err)
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	defer srv.Close()
	s := sender.New(sender.Options{Schedule: []time.Duration{0}})
	ep := sender.Endpoint{URL: srv.URL, Secrets: []verify.Secret{sec}}
	body := []byte(strings.Repeat("x", 1024))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Send(context.Background(), ep, fmt.Sprintf("evt_bench_%d", i), body); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSendResendsOnAClosedKeptAliveConnection: a receiver that closes a
// kept-alive connection after reading a request, without answering (as
// one shutting down may), costs no attempt: the request carries the event
// id as Idempotency-Key, so net/http sends it again on a new connection.
func TestSendResendsOnAClosedKeptAliveConnection(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string // Idempotency-Key of every request read
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		seen = append(seen, r.Header.Get("Idempotency-Key"))
		n := len(seen)
		mu.Unlock()
		if n == 2 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	sec := mustSecret(t)
	s := sender.New(sender.Options{Schedule: []time.Duration{0}})
	ep := sender.Endpoint{URL: srv.URL, Secrets: []verify.Secret{sec}}

	rep, err := s.Send(context.Background(), ep, "evt_1", []byte(`{"id":"evt_1"}`))
	require.NoError(t, err)
	require.Len(t, rep.Attempts, 1)
	rep, err = s.Send(context.Background(), ep, "evt_2", []byte(`{"id":"evt_2"}`))
	require.NoError(t, err, "the cut request is sent again within the attempt")
	require.Len(t, rep.Attempts, 1)
	assert.Equal(t, http.StatusOK, rep.Attempts[0].Status)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"evt_1", "evt_2", "evt_2"}, seen)
}

// TestEndpointZeroValueSends: an Endpoint with a URL and a secret sends
// without any flag set; Disabled stops it and clearing it sends again.
func TestEndpointZeroValueSends(t *testing.T) {
	clk := newClock()
	sec := mustSecret(t)
	rcv := newReceiver(t, clk, []verify.Key{{Secret: sec}})
	s := newSender(clk, sender.Options{})
	ep := sender.Endpoint{URL: rcv.srv.URL, Secrets: []verify.Secret{sec}}

	_, err := s.Send(context.Background(), ep, "evt_zero", nil)
	require.NoError(t, err)
	assert.Equal(t, 1, rcv.Arrived())

	ep.Disabled = true
	rep, err := s.Send(context.Background(), ep, "evt_off", nil)
	require.ErrorIs(t, err, sender.ErrDisabled)
	assert.Empty(t, rep.Attempts)
	assert.Equal(t, 1, rcv.Arrived(), "a disabled endpoint is not contacted")

	ep.Disabled = false
	_, err = s.Send(context.Background(), ep, "evt_on", nil)
	require.NoError(t, err)
	assert.Equal(t, 2, rcv.Arrived())
}

// TestSendEventIDFromBody: without an id Send signs the body's own, so the
// two cannot differ by accident; an id that differs from the body's is
// refused before anything is sent.
func TestSendEventIDFromBody(t *testing.T) {
	sec := mustSecret(t)
	tests := []struct {
		name   string
		id     string
		body   string
		sent   string // the signed id, "" when nothing may be sent
		wantIs error
	}{
		{"id from the body", "", `{"id":"evt_body","type":"churn_risk"}`, "evt_body", nil},
		{"id equal to the body's", "evt_body", `{"id":"evt_body"}`, "evt_body", nil},
		{"body without id keeps the given id", "evt_given", `{"type":"churn_risk"}`, "evt_given", nil},
		{"body that is not JSON keeps the given id", "evt_given", `not json`, "evt_given", nil},
		{"id differing from the body's", "evt_other", `{"id":"evt_body"}`, "", sender.ErrIDMismatch},
		{"no id anywhere", "", `{"type":"churn_risk"}`, "", sender.ErrInvalidID},
		{"body id of another case only", "", `{"ID":"evt_body"}`, "", sender.ErrInvalidID},
		{"body id that is no string", "", `{"id":42}`, "", sender.ErrInvalidID},
		{"body id that is no valid id", "", `{"id":"evt 1"}`, "", sender.ErrInvalidID},
		{"the last of repeated keys, as a receiver reads it", "", `{"id":"evt_first","id":"evt_last"}`, "evt_last", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			rcv := newReceiver(t, clk, []verify.Key{{Secret: sec}})
			rep, err := newSender(clk, sender.Options{}).Send(context.Background(),
				sender.Endpoint{URL: rcv.srv.URL, Secrets: []verify.Secret{sec}}, tc.id, []byte(tc.body))
			if tc.wantIs != nil {
				require.ErrorIs(t, err, tc.wantIs)
				assert.Empty(t, rep.Attempts)
				assert.Zero(t, rcv.Arrived(), "nothing may be sent")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.sent, rep.ID)
			got := rcv.Reached()
			require.Len(t, got, 1)
			assert.Equal(t, tc.sent, got[0].header.Get("X-Staircase-Id"))
		})
	}
}

func TestEventID(t *testing.T) {
	for body, want := range map[string]string{
		`{"id":"evt_1"}`:               "evt_1",
		` {"type":"x", "id":"evt_2"} `: "evt_2",
		`{"id":"a","id":"b"}`:          "b",
		`{"ID":"evt_1"}`:               "",
		`{"Id":"evt_1"}`:               "",
		`{"id":1}`:                     "",
		`{"id":null}`:                  "",
		`{"account":{"id":"acc_1"}}`:   "",
		`[{"id":"evt_1"}]`:             "",
		`"evt_1"`:                      "",
		`{"id":"evt_1"`:                "",
		``:                             "",
	} {
		assert.Equalf(t, want, sender.EventID([]byte(body)), "%s", body)
	}
}

// TestSendRedactsTheURLPassword: an endpoint URL with basic-auth
// credentials appears in errors in its redacted form only.
func TestSendRedactsTheURLPassword(t *testing.T) {
	sec := mustSecret(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	target := strings.Replace(srv.URL, "http://", "http://bot:S3cr3tPa55@", 1) + "/webhooks/staircase"
	srv.Close() // nothing listens there any more
	rep, err := newSender(newClock(), sender.Options{Schedule: []time.Duration{0}}).Send(context.Background(),
		sender.Endpoint{URL: target, Secrets: []verify.Secret{sec}}, "evt_pw", nil)
	require.ErrorIs(t, err, sender.ErrGaveUp)
	require.Len(t, rep.Attempts, 1)
	redacted := strings.Replace(target, "S3cr3tPa55", "xxxxx", 1)
	for _, text := range []string{err.Error(), rep.Attempts[0].Err.Error(), fmt.Sprintf("%+v %#v", rep, rep.Attempts[0])} {
		assert.NotContains(t, text, "S3cr3tPa55")
	}
	assert.Contains(t, rep.Attempts[0].Err.Error(), redacted)
	assert.Contains(t, err.Error(), redacted)
}

// TestSendLongestBlock backs the documented bound of a Send against an
// endpoint that keeps failing: the default schedule waits about 2 h 35 min
// in all, and at most about 8 h 12 min when every answer asks for the
// longest Retry-After.
func TestSendLongestBlock(t *testing.T) {
	sec := mustSecret(t)
	for _, tc := range []struct {
		name       string
		retryAfter string
		min, max   time.Duration
	}{
		// 2 h 35 min 5 s, each step within ±10%.
		{"default schedule", "", (2*time.Hour + 35*time.Minute + 5*time.Second) * 9 / 10, (2*time.Hour + 35*time.Minute + 5*time.Second) * 11 / 10},
		// MaxRetryAfter for the first three waits, the longer of it and
		// 2 h ±10% for the last.
		{"Retry-After at its cap each time", "86400", 8 * time.Hour, 8*time.Hour + 12*time.Minute + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			defer srv.Close()
			clk := newClock()
			rep, err := newSender(clk, sender.Options{}).Send(context.Background(),
				sender.Endpoint{URL: srv.URL, Secrets: []verify.Secret{sec}}, "evt_block", nil)
			require.ErrorIs(t, err, sender.ErrGaveUp)
			require.Len(t, rep.Attempts, 5)
			var total time.Duration
			for _, d := range clk.Sleeps() {
				total += d
			}
			assert.GreaterOrEqual(t, total, tc.min)
			assert.LessOrEqual(t, total, tc.max)
		})
	}
}
