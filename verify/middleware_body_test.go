package verify_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// stallingBody is the body of a client that declared a length and stalls:
// its first Read reports itself on read, then blocks until the test ends.
type stallingBody struct {
	read    chan struct{}
	once    sync.Once
	release <-chan struct{}
}

func newStallingBody(t *testing.T) *stallingBody {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	return &stallingBody{read: make(chan struct{}), release: release}
}

func (b *stallingBody) Read([]byte) (int, error) {
	b.once.Do(func() { close(b.read) })
	<-b.release
	return 0, io.ErrUnexpectedEOF
}

func (b *stallingBody) Close() error { return nil }

// The Middleware answers what the headers alone condemn without reading
// the body: a client that declares a 1 MiB body and never sends it gets
// its answer at once, and no buffer is allocated for it.
func TestMiddlewareRejectsOnHeadersBeforeReadingTheBody(t *testing.T) {
	body := []byte(`{"type":"signal"}`)
	signed := func(f *fixture, ts time.Time) http.Header {
		return verifytest.SignedHeaders(f.secret, "evt_1", ts, body)
	}
	tests := []struct {
		name   string
		header func(f *fixture) http.Header
		status int
		code   string
		err    error
	}{
		{"no signature header", func(*fixture) http.Header { return http.Header{} },
			http.StatusBadRequest, "missing_signature", verify.ErrMissingSignature},
		{"empty signature header", func(*fixture) http.Header { return http.Header{"X-Staircase-Signature": {" "}} },
			http.StatusBadRequest, "missing_signature", verify.ErrMissingSignature},
		{"malformed id", func(f *fixture) http.Header {
			h := signed(f, mwNow)
			h.Set("X-Staircase-Id", "evt 1")
			return h
		}, http.StatusBadRequest, "malformed_header", verify.ErrMalformedHeader},
		{"missing id", func(f *fixture) http.Header {
			h := signed(f, mwNow)
			h.Del("X-Staircase-Id")
			return h
		}, http.StatusBadRequest, "malformed_header", verify.ErrMalformedHeader},
		{"malformed timestamp", func(f *fixture) http.Header {
			h := signed(f, mwNow)
			h.Set("X-Staircase-Timestamp", "17641152OO")
			return h
		}, http.StatusBadRequest, "malformed_header", verify.ErrMalformedHeader},
		{"malformed signature entry", func(f *fixture) http.Header {
			h := signed(f, mwNow)
			h.Set("X-Staircase-Signature", "v1,not-base64")
			return h
		}, http.StatusBadRequest, "malformed_header", verify.ErrMalformedHeader},
		{"signature header over 4096 bytes", func(f *fixture) http.Header {
			h := signed(f, mwNow)
			h.Set("X-Staircase-Signature", h.Get("X-Staircase-Signature")+string(bytes.Repeat([]byte(" "), 4096)))
			return h
		}, http.StatusBadRequest, "malformed_header", verify.ErrMalformedHeader},
		{"unversioned value, legacy modes off", func(*fixture) http.Header { return http.Header{"X-Staircase-Signature": {"hello"}} },
			http.StatusBadRequest, "malformed_header", verify.ErrMalformedHeader},
		{"timestamp too old", func(f *fixture) http.Header { return signed(f, mwNow.Add(-verify.DefaultTolerance-time.Second)) },
			http.StatusUnauthorized, "timestamp_too_old", verify.ErrTimestampTooOld},
		{"timestamp too new", func(f *fixture) http.Header { return signed(f, mwNow.Add(verify.DefaultTolerance+time.Second)) },
			http.StatusUnauthorized, "timestamp_too_new", verify.ErrTimestampTooNew},
		{"entries of unknown versions only", func(*fixture) http.Header { return http.Header{"X-Staircase-Signature": {"v2,abc"}} },
			http.StatusUnauthorized, "no_matching_signature", verify.ErrNoMatchingSignature},
	}
	for _, tc := range tests {
		for _, chunked := range []bool{false, true} {
			name := tc.name + "/Content-Length"
			if chunked {
				name = tc.name + "/chunked"
			}
			t.Run(name, func(t *testing.T) {
				f := newFixture(t, nil)
				h := f.v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("next called") }))
				b := newStallingBody(t)
				req := httptest.NewRequest(http.MethodPost, "/webhooks/staircase", nil)
				req.Header = tc.header(f)
				req.Body = b
				req.ContentLength = verify.DefaultMaxBodyBytes - 1 // all but one byte of the cap, never sent
				if chunked {
					req.ContentLength = -1
					req.TransferEncoding = []string{"chunked"}
				}
				rec := httptest.NewRecorder()
				done := make(chan struct{})
				go func() {
					defer close(done)
					h.ServeHTTP(rec, req)
				}()
				select {
				case <-done:
				case <-b.read:
					t.Fatal("the Middleware read the body of a request its headers condemn")
				}
				select {
				case <-b.read:
					t.Fatal("the Middleware read the body of a request its headers condemn")
				default:
				}
				assert.Equal(t, tc.status, rec.Code)
				var fb failureBody
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &fb))
				assert.Equal(t, tc.code, fb.Error.Code)
				errs := f.errors()
				require.Len(t, errs, 1)
				assert.ErrorIs(t, errs[0], tc.err)
				reserves, _, _ := f.store.calls()
				assert.Zero(t, reserves)
			})
		}
	}
}

// A declared length over the cap is still answered 413 before the headers
// are looked at, as it was: an unsigned request that declares too much is
// body_too_large, not missing_signature.
func TestMiddlewareDeclaredLengthBeforeHeaders(t *testing.T) {
	f := newFixture(t, func(o *verify.Options) { o.MaxBodyBytes = 1024 })
	h := f.v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("next called") }))
	b := newStallingBody(t)
	req := httptest.NewRequest(http.MethodPost, "/webhooks/staircase", nil)
	req.Body = b
	req.ContentLength = 1025
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	errs := f.errors()
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], verify.ErrBodyTooLarge)
	select {
	case <-b.read:
		t.Fatal("read the body of a request declared over the cap")
	default:
	}
}

// The timestamp passed when the headers arrived, but the body took so long
// that it is out of tolerance once in: the request is answered as Verify
// would answer it then, timestamp_too_old, and next is not called.
func TestMiddlewareTimestampCheckedAgainAfterTheBody(t *testing.T) {
	var now atomic.Int64
	now.Store(mwNow.UnixNano())
	f := newFixture(t, func(o *verify.Options) {
		o.Now = func() time.Time { return time.Unix(0, now.Load()) }
	})
	h := f.v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("next called") }))
	body := []byte(`{"type":"signal"}`)
	req := f.request("evt_slow", body)
	req.Body = io.NopCloser(readFunc(func(p []byte) (int, error) {
		// The body arrives tolerance and a second after the headers.
		now.Store(mwNow.Add(verify.DefaultTolerance + time.Second).UnixNano())
		return copy(p, body), io.EOF
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	errs := f.errors()
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], verify.ErrTimestampTooOld)
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// The body buffer is allocated once, at the declared length: a 1 MiB body
// costs as many allocations as a 1 KiB one, and about 1 MiB more bytes,
// where growing the buffer by append took 18 more allocations and 5.3 MiB.
func TestMiddlewareBodyBufferSizedFromContentLength(t *testing.T) {
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	v, err := verify.NewVerifier(verify.Options{
		Keys:                 []verify.Key{{Secret: secret}},
		Now:                  func() time.Time { return mwNow },
		DisableDeduplication: true, // one signed request, sent again and again
	})
	require.NoError(t, err)
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	measure := func(n int) (allocs float64, bytesPerOp uint64) {
		body := bytes.Repeat([]byte("a"), n)
		tmpl := verifytest.NewRequest(secret, "evt_1", mwNow, "/webhooks/staircase", body)
		require.Equal(t, int64(n), tmpl.ContentLength)
		var rd bytes.Reader
		w := &discardWriter{h: make(http.Header)}
		serve := func() {
			req := *tmpl
			rd.Reset(body)
			req.Body = io.NopCloser(&rd)
			w.code = 0
			h.ServeHTTP(w, &req)
			if w.code != 0 {
				t.Fatalf("status %d", w.code)
			}
		}
		serve()
		allocs = testing.AllocsPerRun(20, serve)
		const runs = 20
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range runs {
			serve()
		}
		runtime.ReadMemStats(&after)
		return allocs, (after.TotalAlloc - before.TotalAlloc) / runs
	}
	smallAllocs, smallBytes := measure(1 << 10)
	bigAllocs, bigBytes := measure(1 << 20)
	t.Logf("1 KiB: %.0f allocs, %d B; 1 MiB: %.0f allocs, %d B", smallAllocs, smallBytes, bigAllocs, bigBytes)
	// Equal but for the pooled MAC states that the race detector's
	// sync.Pool drops at random; growing the buffer took 18 more.
	assert.InDelta(t, smallAllocs, bigAllocs, 3, "allocations for a 1 MiB body against a 1 KiB one")
	// The 1 MiB buffer and its spare byte, rounded up to whole pages.
	assert.LessOrEqual(t, bigBytes-smallBytes, uint64(1<<20+16<<10), "bytes for a 1 MiB body beyond a 1 KiB one")
}
