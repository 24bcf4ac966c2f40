package forward_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/forward"
	"github.com/stairhook/stairhook/receiver/internal/sinktest"
	"github.com/stairhook/stairhook/receiver/sink"
	"github.com/stairhook/stairhook/verify"
)

const (
	// destSecret is the destination's secret, which the sink signs with.
	destSecret = "whsec_ZtN8DOeQ+whydP/Kid9Ly13y1m3NCppKBdlxdc5G7os="
	// otherSecret is a secret the destination does not hold.
	otherSecret = "whsec_3cboz5ntuEFvV96ZoSLON3Atx3sHVK1z4xilmsIcEdo="
)

// oddBody is an event whose bytes any re-encoding would change: CRLF and
// tabs between tokens, spaces around colons, \u escapes (of é, of a
// line separator, a surrogate pair), an escaped slash and quote, a raw
// multi-byte string, an exponent number, an empty array and trailing
// newlines.
var oddBody = "{ \"id\" : \"evt_odd_1\",\r\n\t\"type\":\"churn_risk\" ,  " +
	`"account":{"id":"acc_1","name":"Acme \u00e9 \u2028 \ud83d\ude00 \"q\" \/ slash"},` + "\n" +
	`"signal":{"title":"café 😀","summary":"<b>&amp;</b>"}, "n": 1.50e+01, "unknown": [ ] }` + "\n\n"

func oddEvent(t *testing.T) *event.Event {
	t.Helper()
	ev, err := event.Decode([]byte(oddBody))
	require.NoError(t, err)
	require.Equal(t, "evt_odd_1", ev.ID)
	return ev
}

// clock is a settable clock the sink and the destination's verifier share.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_795_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// received is one request the destination let through its verifier.
type received struct {
	header http.Header
	body   []byte
	result verify.Result
}

// destination is the next hop: a verify.Verifier's Middleware holding
// destSecret in front of a handler that records what got through and
// answers status (200 when nil) for the n-th request it sees.
type destination struct {
	*httptest.Server
	mu       sync.Mutex
	got      []received
	rejected []error
	status   func(n int) int
}

func newDestination(t *testing.T, now func() time.Time) *destination {
	t.Helper()
	secret, err := verify.ParseSecret(destSecret)
	require.NoError(t, err)
	d := &destination{}
	v, err := verify.NewVerifier(verify.Options{
		Keys: []verify.Key{{Label: "current", Secret: secret}},
		Now:  now,
		OnError: func(_ *http.Request, err error) {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.rejected = append(d.rejected, err)
		},
	})
	require.NoError(t, err)
	d.Server = httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		res, ok := verify.FromContext(r.Context())
		require.True(t, ok)
		d.mu.Lock()
		n := len(d.got)
		d.got = append(d.got, received{header: r.Header.Clone(), body: body, result: res})
		status := d.status
		d.mu.Unlock()
		if status != nil {
			w.WriteHeader(status(n))
		}
	})))
	t.Cleanup(d.Close)
	return d
}

func (d *destination) requests() []received {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]received(nil), d.got...)
}

func (d *destination) rejections() []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]error(nil), d.rejected...)
}

// newSink builds the sink of route, its clock set to now when not nil.
func newSink(t *testing.T, route forward.Route, client *http.Client, log *slog.Logger, now func() time.Time) *forward.Sink {
	t.Helper()
	s, err := forward.New("staircase.fwd.forward", route, client, log)
	require.NoError(t, err)
	if now != nil {
		forward.SetNow(s, now)
	}
	return s
}

// standardSignature is the Standard Webhooks signature computed here with
// crypto/hmac alone: v1,base64(HMAC-SHA256(key, id.ts.body)), the key
// being the secret's decoded bytes.
func standardSignature(t *testing.T, secret, id, ts string, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// The forwarded request verifies with package verify in both header
// families, carries the body byte for byte, and is signed with the event's
// id at the sink's clock.
func TestForwardVerifies(t *testing.T) {
	for _, tc := range []struct {
		headers      string
		want, absent [3]string
	}{
		{"", [3]string{"X-Staircase-Id", "X-Staircase-Timestamp", "X-Staircase-Signature"}, [3]string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"}},
		{forward.HeadersStaircase, [3]string{"X-Staircase-Id", "X-Staircase-Timestamp", "X-Staircase-Signature"}, [3]string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"}},
		{forward.HeadersStandard, [3]string{"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"}, [3]string{"X-Staircase-Id", "X-Staircase-Timestamp", "X-Staircase-Signature"}},
	} {
		t.Run("headers="+tc.headers, func(t *testing.T) {
			clk := newClock()
			dest := newDestination(t, clk.Now)
			s := newSink(t, forward.Route{URL: dest.URL + "/in", Secret: destSecret, Headers: tc.headers}, nil, nil, clk.Now)
			ev := oddEvent(t)
			require.NoError(t, s.Deliver(sinktest.Context(t), ev))

			got := dest.requests()
			require.Len(t, got, 1)
			r := got[0]
			assert.Equal(t, oddBody, string(r.body), "the body byte for byte")
			assert.Equal(t, verify.Result{ID: "evt_odd_1", Timestamp: clk.Now(), KeyLabel: "current", Scheme: verify.SchemeV1}, r.result)
			for _, h := range tc.absent {
				assert.Empty(t, r.header.Values(h), h)
			}
			id, ts, sig := r.header.Get(tc.want[0]), r.header.Get(tc.want[1]), r.header.Get(tc.want[2])
			assert.Equal(t, "evt_odd_1", id)
			assert.Equal(t, strconv.FormatInt(clk.Now().Unix(), 10), ts)
			// The same signature computed without package verify, as a
			// Standard Webhooks library does (after renaming the headers
			// for the x-staircase family).
			assert.Equal(t, standardSignature(t, destSecret, id, ts, []byte(oddBody)), sig)
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
			assert.Equal(t, "evt_odd_1", r.header.Get("Idempotency-Key"))
			assert.Equal(t, forward.UserAgent, r.header.Get("User-Agent"))
		})
	}
}

// One sink serves several events at once.
func TestConcurrentDeliveries(t *testing.T) {
	clk := newClock()
	dest := newDestination(t, clk.Now)
	s := newSink(t, forward.Route{URL: dest.URL, Secret: destSecret, Headers: forward.HeadersStandard,
		ExtraHeaders: map[string]string{"X-Tenant": "acme"}}, nil, nil, clk.Now)
	var wg sync.WaitGroup
	want := map[string]string{}
	for i := range 16 {
		id := "evt_c" + strconv.Itoa(i)
		body := strings.Replace(oddBody, "evt_odd_1", id, 1)
		want[id] = body
		ev, err := event.Decode([]byte(body))
		require.NoError(t, err)
		wg.Go(func() { assert.NoError(t, s.Deliver(sinktest.Context(t), ev)) })
	}
	wg.Wait()
	got := map[string]string{}
	for _, r := range dest.requests() {
		assert.Equal(t, "acme", r.header.Get("X-Tenant"))
		got[r.result.ID] = string(r.body)
	}
	assert.Equal(t, want, got)
}

// Every attempt is signed at its own time: a retry an hour later is
// within the destination's tolerance, with the same id.
func TestFreshTimestampPerAttempt(t *testing.T) {
	clk := newClock()
	dest := newDestination(t, clk.Now)
	dest.status = func(n int) int {
		if n == 0 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	s := newSink(t, forward.Route{URL: dest.URL, Secret: destSecret}, nil, nil, clk.Now)
	ev := oddEvent(t)
	first := clk.Now()
	err := s.Deliver(sinktest.Context(t), ev)
	require.ErrorIs(t, err, forward.ErrUnavailable)

	clk.Add(time.Hour) // far past the 5 minute tolerance of the first signature
	require.NoError(t, s.Deliver(sinktest.Context(t), ev))
	got := dest.requests()
	require.Len(t, got, 2)
	assert.Equal(t, first, got[0].result.Timestamp)
	assert.Equal(t, clk.Now(), got[1].result.Timestamp)
	assert.Equal(t, "evt_odd_1", got[0].result.ID)
	assert.Equal(t, "evt_odd_1", got[1].result.ID)
	assert.NotEqual(t, got[0].header.Get("X-Staircase-Signature"), got[1].header.Get("X-Staircase-Signature"))
	assert.Empty(t, dest.rejections())
}

// A hop signed with a secret the destination does not hold is refused 401,
// and that is permanent: the same signature would be refused again.
func TestTamperedHopIsPermanent(t *testing.T) {
	for _, headers := range []string{forward.HeadersStaircase, forward.HeadersStandard} {
		t.Run(headers, func(t *testing.T) {
			clk := newClock()
			dest := newDestination(t, clk.Now)
			s := newSink(t, forward.Route{URL: dest.URL, Secret: otherSecret, Headers: headers}, nil, nil, clk.Now)
			err := s.Deliver(sinktest.Context(t), oddEvent(t))
			require.Error(t, err)
			assert.ErrorIs(t, err, forward.ErrRejected)
			assert.ErrorIs(t, err, sink.ErrPermanent)
			assert.Equal(t, "forward 401", sink.ReasonClass(err))
			assert.Contains(t, err.Error(), "401 Unauthorized")
			assert.Empty(t, dest.requests(), "nothing got past the verifier")
			rej := dest.rejections()
			require.Len(t, rej, 1)
			assert.ErrorIs(t, rej[0], verify.ErrNoMatchingSignature)
			assert.NotContains(t, err.Error(), otherSecret)
		})
	}
}

// A redirect is not followed, even with a client that would follow it,
// and is permanent.
func TestRedirectNotFollowed(t *testing.T) {
	var hits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer elsewhere.Close()
	for _, code := range []int{301, 302, 303, 307, 308} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, elsewhere.URL+"/stolen", code)
			}))
			defer srv.Close()
			follows := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
			s := newSink(t, forward.Route{URL: srv.URL, Secret: destSecret}, follows, nil, nil)
			err := s.Deliver(sinktest.Context(t), oddEvent(t))
			require.ErrorIs(t, err, forward.ErrRedirect)
			assert.ErrorIs(t, err, sink.ErrPermanent)
			assert.Equal(t, "forward "+strconv.Itoa(code), sink.ReasonClass(err))
			assert.NotContains(t, err.Error(), "stolen", "the Location is not quoted")
			assert.Zero(t, hits.Load())
		})
	}
}

// countingTransport counts the response body bytes its caller reads.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if resp != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// endless answers status with a body that never ends: "x" then "é"
// repeated, so the snippet's cut falls inside a two-byte character.
func endless(status int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		chunk := []byte("x" + strings.Repeat("é", 16<<10))
		if _, err := w.Write(chunk[:1]); err != nil {
			return
		}
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk[1:]); err != nil {
				return
			}
		}
	})
}

// A response body is read up to the bound and no further, whether the
// answer is a success or a failure, and an error quotes only a clipped,
// valid UTF-8 start of it.
func TestResponseBodyBounded(t *testing.T) {
	for _, tc := range []struct {
		status int
		check  func(t *testing.T, err error)
	}{
		{http.StatusOK, func(t *testing.T, err error) { assert.NoError(t, err) }},
		{http.StatusInternalServerError, func(t *testing.T, err error) {
			require.ErrorIs(t, err, forward.ErrUnavailable)
			_, quoted, ok := strings.Cut(err.Error(), "500 Internal Server Error: ")
			require.True(t, ok, err.Error())
			assert.True(t, utf8.ValidString(quoted))
			assert.True(t, strings.HasPrefix(quoted, "xéé"), quoted)
			assert.True(t, strings.HasSuffix(quoted, "é…"), quoted)
			assert.LessOrEqual(t, len(quoted), forward.MaxSnippetBytes+len("…"))
			assert.GreaterOrEqual(t, len(quoted), forward.MaxSnippetBytes-1)
		}},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			srv := httptest.NewServer(endless(tc.status))
			defer srv.Close()
			ct := &countingTransport{}
			s := newSink(t, forward.Route{URL: srv.URL, Secret: destSecret, Timeout: 5 * time.Second}, &http.Client{Transport: ct}, nil, nil)
			tc.check(t, s.Deliver(sinktest.Context(t), oddEvent(t)))
			assert.Equal(t, int64(forward.MaxResponseBytes), ct.n.Load(), "read up to the bound, not one byte past it")
		})
	}
}

type outcome int

const (
	done outcome = iota
	transient
	permanent
	wait
)

// Each status class is classified as package sink asks.
func TestStatusClasses(t *testing.T) {
	clk := newClock()
	for _, tc := range []struct {
		status     int
		retryAfter string
		want       outcome
		sentinel   error
		after      time.Duration
	}{
		{status: 200, want: done},
		{status: 201, want: done},
		{status: 202, want: done},
		{status: 204, want: done},
		{status: 299, want: done},
		{status: 300, want: permanent, sentinel: forward.ErrRedirect},
		{status: 304, want: permanent, sentinel: forward.ErrRedirect},
		{status: 400, want: permanent, sentinel: forward.ErrRejected},
		{status: 401, want: permanent, sentinel: forward.ErrRejected},
		{status: 403, want: permanent, sentinel: forward.ErrRejected},
		{status: 404, want: permanent, sentinel: forward.ErrRejected},
		{status: 405, want: permanent, sentinel: forward.ErrRejected},
		{status: 410, want: permanent, sentinel: forward.ErrRejected},
		{status: 413, want: permanent, sentinel: forward.ErrRejected},
		{status: 422, want: permanent, sentinel: forward.ErrRejected},
		{status: 499, want: permanent, sentinel: forward.ErrRejected},
		{status: 408, want: transient, sentinel: forward.ErrUnavailable},
		{status: 409, want: transient, sentinel: forward.ErrUnavailable},
		{status: 429, want: transient, sentinel: forward.ErrUnavailable},
		{status: 500, want: transient, sentinel: forward.ErrUnavailable},
		{status: 501, want: transient, sentinel: forward.ErrUnavailable},
		{status: 502, want: transient, sentinel: forward.ErrUnavailable},
		{status: 503, want: transient, sentinel: forward.ErrUnavailable},
		{status: 504, want: transient, sentinel: forward.ErrUnavailable},
		{status: 599, want: transient, sentinel: forward.ErrUnavailable},
		// Retry-After, on 429 and 503 only.
		{status: 429, retryAfter: "7", want: wait, sentinel: forward.ErrUnavailable, after: 7 * time.Second},
		{status: 503, retryAfter: "120", want: wait, sentinel: forward.ErrUnavailable, after: 2 * time.Minute},
		{status: 503, retryAfter: clk.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat), want: wait, sentinel: forward.ErrUnavailable, after: 90 * time.Second},
		{status: 429, retryAfter: "3600", want: wait, sentinel: forward.ErrUnavailable, after: time.Hour},
		{status: 429, retryAfter: "3601", want: wait, sentinel: forward.ErrUnavailable, after: time.Hour}, // capped
		{status: 429, retryAfter: "99999999999999999999", want: transient, sentinel: forward.ErrUnavailable},
		{status: 429, retryAfter: "0", want: transient, sentinel: forward.ErrUnavailable},
		{status: 429, retryAfter: "-5", want: transient, sentinel: forward.ErrUnavailable},
		{status: 429, retryAfter: "soon", want: transient, sentinel: forward.ErrUnavailable},
		{status: 503, retryAfter: clk.Now().Add(-time.Minute).UTC().Format(http.TimeFormat), want: transient, sentinel: forward.ErrUnavailable},
		{status: 500, retryAfter: "7", want: transient, sentinel: forward.ErrUnavailable},
		{status: 409, retryAfter: "7", want: transient, sentinel: forward.ErrUnavailable},
	} {
		t.Run(fmt.Sprintf("%d %s", tc.status, tc.retryAfter), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, `{"error":"nope"}`)
			}))
			defer srv.Close()
			s := newSink(t, forward.Route{URL: srv.URL, Secret: destSecret}, nil, nil, clk.Now)
			err := s.Deliver(sinktest.Context(t), oddEvent(t))
			if tc.want == done {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.sentinel)
			assert.Equal(t, "forward "+strconv.Itoa(tc.status), sink.ReasonClass(err))
			var ra *sink.RetryAfterError
			assert.Equal(t, tc.want == permanent, errors.Is(err, sink.ErrPermanent), "permanent")
			if assert.Equal(t, tc.want == wait, errors.As(err, &ra), "a RetryAfterError") && ra != nil {
				assert.Equal(t, tc.after, ra.After)
			}
			if tc.sentinel != forward.ErrRedirect {
				assert.Contains(t, err.Error(), `: {"error":"nope"}`, "a snippet of the answer")
			}
		})
	}
}

// Failing to get an answer is transient: a refused connection, a timeout.
func TestNetworkErrorsAreTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + l.Addr().String() + "/in"
	require.NoError(t, l.Close())

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer slow.Close()
	defer close(release)

	for name, route := range map[string]forward.Route{
		"refused": {URL: closed, Secret: destSecret},
		"timeout": {URL: slow.URL, Secret: destSecret, Timeout: 50 * time.Millisecond},
	} {
		t.Run(name, func(t *testing.T) {
			s := newSink(t, route, nil, nil, nil)
			err := s.Deliver(sinktest.Context(t), oddEvent(t))
			require.ErrorIs(t, err, forward.ErrUnreachable)
			assert.NotErrorIs(t, err, sink.ErrPermanent)
			var ra *sink.RetryAfterError
			assert.False(t, errors.As(err, &ra))
			assert.Equal(t, "forward unreachable", sink.ReasonClass(err))
			if name == "timeout" {
				assert.Contains(t, err.Error(), "timed out")
			}
		})
	}
}

// The extra headers are sent as they are, beside the signature; a
// User-Agent among them replaces the sink's.
func TestExtraHeadersSent(t *testing.T) {
	clk := newClock()
	dest := newDestination(t, clk.Now)
	s := newSink(t, forward.Route{URL: dest.URL, Secret: destSecret, ExtraHeaders: map[string]string{
		"authorization": "Bearer internal-token",
		"X-Tenant":      "acme",
		"User-Agent":    "cs-bridge/2",
	}}, nil, nil, clk.Now)
	require.NoError(t, s.Deliver(sinktest.Context(t), oddEvent(t)))
	got := dest.requests()
	require.Len(t, got, 1)
	assert.Equal(t, []string{"Bearer internal-token"}, got[0].header.Values("Authorization"))
	assert.Equal(t, []string{"acme"}, got[0].header.Values("X-Tenant"))
	assert.Equal(t, []string{"cs-bridge/2"}, got[0].header.Values("User-Agent"))
	assert.Equal(t, "evt_odd_1", got[0].result.ID)
}

// An event without raw bytes, or whose id cannot be signed, cannot be
// forwarded, now or later. (Which error of package verify the signer gives
// for the id is its own business: only ErrSign is checked.)
func TestUnforwardableEvents(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	defer srv.Close()
	s := newSink(t, forward.Route{URL: srv.URL, Secret: destSecret}, nil, nil, nil)

	err := s.Deliver(sinktest.Context(t), &event.Event{ID: "evt_1", Type: "churn_risk", Account: event.Account{ID: "acc_1"}})
	assert.ErrorIs(t, err, forward.ErrNoBody)
	assert.ErrorIs(t, err, sink.ErrPermanent)

	ev := oddEvent(t)
	ev.ID = "evt with spaces"
	err = s.Deliver(sinktest.Context(t), ev)
	assert.ErrorIs(t, err, forward.ErrSign)
	assert.ErrorIs(t, err, sink.ErrPermanent)
	assert.Equal(t, "forward sign", sink.ReasonClass(err))
	assert.Zero(t, calls.Load())
}

// Credentials never reach an error or a log line: not the secret, not the
// signature, not the URL's password or query, not an extra header's
// value, even when the destination echoes them back in its answer.
func TestCredentialsNeverShown(t *testing.T) {
	const (
		password = "pa55-w0rd-Secret"
		token    = "tok_9f8e7d6c5b4a"
		apiKey   = "key-0123456789abcdef"
	)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+password))
	// Each case is what a destination (or a proxy in front of it) echoes
	// first in a 400 body, where the error's snippet would show it.
	for name, echo := range map[string]func(r *http.Request) string{
		"authorization": func(r *http.Request) string { return r.Header.Get("Authorization") },
		"password":      func(*http.Request) string { return password },
		"query":         func(r *http.Request) string { return r.URL.RawQuery },
		"token":         func(r *http.Request) string { return r.URL.Query().Get("token") },
		"extra header":  func(r *http.Request) string { return r.Header.Get("X-Api-Key") },
		"signature":     func(r *http.Request) string { return r.Header.Get("X-Staircase-Signature") },
		"mac":           func(r *http.Request) string { return strings.TrimPrefix(r.Header.Get("X-Staircase-Signature"), "v1,") },
		"secret":        func(*http.Request) string { return destSecret },
		"secret base64": func(*http.Request) string { return strings.TrimPrefix(destSecret, "whsec_") },
	} {
		t.Run(name, func(t *testing.T) {
			var echoed string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				echoed = echo(r)
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, "bad request %s from %s", echoed, r.RemoteAddr)
			}))
			defer srv.Close()
			logs := &bytes.Buffer{}
			log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			target := strings.Replace(srv.URL, "http://", "http://user:"+password+"@", 1) + "/in?token=" + token
			s := newSink(t, forward.Route{URL: target, Secret: destSecret, ExtraHeaders: map[string]string{"X-Api-Key": apiKey}}, nil, log, nil)
			err := s.Deliver(sinktest.Context(t), oddEvent(t))
			require.ErrorIs(t, err, forward.ErrRejected)
			require.NotEmpty(t, echoed)
			text := err.Error() + fmt.Sprint(s) + logs.String()
			assert.Contains(t, err.Error(), ": 400 Bad Request: bad request ")
			assert.Contains(t, err.Error(), "[redacted]")
			for _, secret := range []string{echoed, password, token, apiKey, destSecret, strings.TrimPrefix(destSecret, "whsec_"), basic[len("Basic "):]} {
				assert.NotContains(t, text, secret)
			}
			assert.Contains(t, err.Error(), "http://user:xxxxx@127.0.0.1:")
			assert.Contains(t, err.Error(), "/in?redacted: 400 Bad Request")
		})
	}
}

// A password is removed from a quoted answer however short it is, and
// however it was written in the URL; short header values are left alone.
func TestShortPasswordRedacted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, "user %s with password 'p;w' refused, region eu", r.Header.Get("X-Region"))
	}))
	defer srv.Close()
	s := newSink(t, forward.Route{URL: strings.Replace(srv.URL, "http://", "http://user:p%3Bw@", 1), Secret: destSecret,
		ExtraHeaders: map[string]string{"X-Region": "eu"}}, nil, nil, nil)
	err := s.Deliver(sinktest.Context(t), oddEvent(t))
	require.ErrorIs(t, err, forward.ErrRejected)
	assert.Contains(t, err.Error(), ": 403 Forbidden: user eu with password '[redacted]' refused, region eu")
	assert.NotContains(t, err.Error(), "p;w")
	assert.NotContains(t, err.Error(), "p%3Bw")
}

// The URL's password and query stay out of the log line of a success and
// of the error of a failed connection too (net/http's own error quotes the
// query).
func TestURLRedactedInLogsAndNetworkErrors(t *testing.T) {
	clk := newClock()
	dest := newDestination(t, clk.Now)
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	withCreds := func(base string) string {
		return strings.Replace(base, "http://", "http://user:pa55word@", 1) + "/in?token=tok_secret_1"
	}
	s := newSink(t, forward.Route{URL: withCreds(dest.URL), Secret: destSecret}, nil, log, clk.Now)
	require.NoError(t, s.Deliver(sinktest.Context(t), oddEvent(t)))
	assert.Contains(t, logs.String(), `msg="event forwarded"`)
	assert.Contains(t, logs.String(), "event_id=evt_odd_1")
	assert.Contains(t, logs.String(), "url=http://user:xxxxx@127.0.0.1:")
	assert.Contains(t, logs.String(), "/in?redacted")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := withCreds("http://" + l.Addr().String())
	require.NoError(t, l.Close())
	s = newSink(t, forward.Route{URL: closed, Secret: destSecret}, nil, log, nil)
	err = s.Deliver(sinktest.Context(t), oddEvent(t))
	require.ErrorIs(t, err, forward.ErrUnreachable)
	assert.Contains(t, err.Error(), "connection refused")
	for _, text := range []string{err.Error(), logs.String()} {
		assert.NotContains(t, text, "pa55word")
		assert.NotContains(t, text, "tok_secret_1")
		assert.NotContains(t, text, destSecret)
	}
}

func TestNewRefusesBadRoute(t *testing.T) {
	_, err := forward.New("x", forward.Route{URL: "https://user:hunter22@example.com/x", Secret: "whsec_hunter22"}, nil, nil)
	require.ErrorIs(t, err, forward.ErrInvalidRoute)
	assert.Contains(t, err.Error(), "forward.secret:")
	assert.NotContains(t, err.Error(), "hunter22")
}

func TestCheck(t *testing.T) {
	valid := func() forward.Route {
		return forward.Route{URL: "https://hooks.example.com/in?token=abc", Secret: destSecret}
	}
	headers := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	many := func(n, valueLen int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("X-H%02d", i)] = strings.Repeat("v", valueLen)
		}
		return m
	}
	for _, tc := range []struct {
		name string
		edit func(r *forward.Route)
		want []string // the errors, in order; none for a valid route
	}{
		{"valid", func(*forward.Route) {}, nil},
		{"standard", func(r *forward.Route) { r.Headers = "standard" }, nil},
		{"staircase", func(r *forward.Route) { r.Headers = "staircase" }, nil},
		{"loopback http", func(r *forward.Route) { r.URL = "http://127.0.0.1:8081/webhooks/staircase" }, nil},
		{"localhost http", func(r *forward.Route) { r.URL = "http://localhost:8081/x" }, nil},
		{"ipv6 loopback http", func(r *forward.Route) { r.URL = "http://[::1]:8081/x" }, nil},
		{"https with user and password", func(r *forward.Route) { r.URL = "https://u:p@hooks.example.com/x" }, nil},
		{"authorization without a url password", func(r *forward.Route) { r.ExtraHeaders = headers("Authorization", "Bearer x") }, nil},
		{"secret without prefix", func(r *forward.Route) { r.Secret = strings.TrimPrefix(destSecret, "whsec_") }, nil},
		{"at the header count bound", func(r *forward.Route) { r.ExtraHeaders = many(forward.MaxExtraHeaders, 1) }, nil},
		{"at the header bytes bound", func(r *forward.Route) {
			r.ExtraHeaders = headers("X-Big", strings.Repeat("v", forward.MaxExtraHeaderBytes-len("X-Big")))
		}, nil},

		{"no url", func(r *forward.Route) { r.URL = "" }, []string{"p.url: required"}},
		{"relative url", func(r *forward.Route) { r.URL = "/webhooks/x" }, []string{"p.url: must be an absolute http(s) URL"}},
		{"ftp", func(r *forward.Route) { r.URL = "ftp://example.com/x" }, []string{"p.url: must be an absolute http(s) URL"}},
		{"opaque", func(r *forward.Route) { r.URL = "https:example.com" }, []string{"p.url: must be an absolute http(s) URL"}},
		{"port without a host", func(r *forward.Route) { r.URL = "https://:8443/x" }, []string{"p.url: must be an absolute http(s) URL"}},
		{"plain http", func(r *forward.Route) { r.URL = "http://hooks.example.com/x" }, []string{"p.url: must be https"}},
		{"plain http to a private address", func(r *forward.Route) { r.URL = "http://10.0.0.1/x" }, []string{"p.url: must be https"}},
		{"fragment", func(r *forward.Route) { r.URL = "https://example.com/x#frag" }, []string{"p.url: must not have a fragment"}},
		{"no secret", func(r *forward.Route) { r.Secret = " " }, []string{"p.secret: required"}},
		{"short secret", func(r *forward.Route) { r.Secret = "whsec_c2hvcnQ=" }, []string{"p.secret: must be"}},
		{"unknown headers", func(r *forward.Route) { r.Headers = "Standard" }, []string{"p.headers: must be"}},
		{"negative timeout", func(r *forward.Route) { r.Timeout = -time.Second }, []string{"p.timeout: must not be negative"}},
		{"one header past the count", func(r *forward.Route) { r.ExtraHeaders = many(forward.MaxExtraHeaders+1, 1) }, []string{"p.extra_headers: at most 32 headers"}},
		{"one byte past the size", func(r *forward.Route) {
			r.ExtraHeaders = headers("X-Big", strings.Repeat("v", forward.MaxExtraHeaderBytes-len("X-Big")+1))
		}, []string{"p.extra_headers: names and values together must be at most 8192 bytes"}},
		{"bad name", func(r *forward.Route) { r.ExtraHeaders = headers("X Space", "v") }, []string{"p.extra_headers: a header name must be"}},
		{"empty name", func(r *forward.Route) { r.ExtraHeaders = headers("", "v") }, []string{"p.extra_headers: a header name must be"}},
		{"line break in a value", func(r *forward.Route) { r.ExtraHeaders = headers("X-A", "v\r\nX-Injected: 1") }, []string{"p.extra_headers.X-A: the value must be"}},
		{"non-ASCII value", func(r *forward.Route) { r.ExtraHeaders = headers("X-A", "café") }, []string{"p.extra_headers.X-A: the value must be"}},
		{"same header twice", func(r *forward.Route) { r.ExtraHeaders = headers("X-Tenant", "a", "x-tenant", "b") }, []string{"p.extra_headers.x-tenant: names the same header as X-Tenant"}},
		{"authorization with a url password", func(r *forward.Route) {
			r.URL = "https://u:p@hooks.example.com/x"
			r.ExtraHeaders = headers("authorization", "Bearer x")
		}, []string{"p.extra_headers.authorization: clashes with the user and password of the url"}},
		{"everything at once", func(r *forward.Route) { *r = forward.Route{Timeout: -1, Headers: "x"} }, []string{
			"p.url: required", "p.secret: required", "p.headers: must be", "p.timeout: must not be negative",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := valid()
			tc.edit(&r)
			errs := r.Check("p")
			require.Len(t, errs, len(tc.want), "%v", errs)
			for i, want := range tc.want {
				assert.True(t, strings.HasPrefix(errs[i].Error(), want), "%q does not start with %q", errs[i], want)
			}
		})
	}
}

// The headers the sink sets, or that frame the body, are refused as extra
// headers in any case of their names.
func TestCheckRefusesClashingHeaders(t *testing.T) {
	for _, name := range []string{
		"X-Staircase-Id", "x-staircase-timestamp", "X-STAIRCASE-SIGNATURE",
		"Webhook-Id", "webhook-timestamp", "WEBHOOK-SIGNATURE",
		"Content-Type", "content-length", "Host", "Transfer-Encoding", "Content-Encoding",
		"Idempotency-Key", "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer",
		"Proxy-Connection", "Proxy-Authorization", "Expect",
	} {
		for _, headers := range []string{forward.HeadersStaircase, forward.HeadersStandard} {
			r := forward.Route{URL: "https://example.com/x", Secret: destSecret, Headers: headers, ExtraHeaders: map[string]string{name: "value-not-shown"}}
			errs := r.Check("forward")
			if assert.Len(t, errs, 1, name) {
				assert.True(t, strings.HasPrefix(errs[0].Error(), "forward.extra_headers."+name+": "), errs[0].Error())
				assert.Contains(t, errs[0].Error(), "cannot be set here")
				assert.NotContains(t, errs[0].Error(), "value-not-shown")
			}
		}
	}
}

// No Check error quotes the URL, the secret or a header value.
func TestCheckQuotesNoCredentials(t *testing.T) {
	for _, r := range []forward.Route{
		{URL: "http://user:hunter2-pw@example.com/x?token=hunter2-tok", Secret: "whsec_hunter2-secret"},
		{URL: "ftp://user:hunter2-pw@example.com/x?token=hunter2-tok#hunter2-frag", Secret: "hunter2-secret"},
		{URL: "https://example.com/%zz?hunter2-tok", Secret: "hunter2-secret=="},
		{URL: "https://u:p@example.com/x", Secret: destSecret, ExtraHeaders: map[string]string{"Authorization": "hunter2-bearer", "X-A": "hunter2\n", "hunter2 name": "v"}},
	} {
		errs := r.Check("forward")
		require.NotEmpty(t, errs)
		for _, err := range errs {
			assert.NotContains(t, err.Error(), "hunter2")
		}
	}
}
