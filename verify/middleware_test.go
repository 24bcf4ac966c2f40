package verify_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

var mwNow = time.Unix(1_764_115_200, 0)

// countingStore wraps a MemoryStore, counts calls and can be told to fail.
type countingStore struct {
	inner *verify.MemoryStore

	mu                     sync.Mutex
	reserves, dones, rels  int
	ttls                   []time.Duration
	reserveErr, doneErr    error
	releaseErr             error
	lastRelease, lastDoneR verify.Reservation
}

func newCountingStore() *countingStore {
	return &countingStore{inner: verify.NewMemoryStore(verify.MemoryStoreOptions{Now: func() time.Time { return mwNow }})}
}

func (s *countingStore) Reserve(ctx context.Context, key string, ttl time.Duration) (verify.Reservation, verify.State, error) {
	s.mu.Lock()
	s.reserves++
	s.ttls = append(s.ttls, ttl)
	err := s.reserveErr
	s.mu.Unlock()
	if err != nil {
		return verify.Reservation{}, verify.StateNew, err
	}
	return s.inner.Reserve(ctx, key, ttl)
}

func (s *countingStore) Done(ctx context.Context, r verify.Reservation, ttl time.Duration) error {
	s.mu.Lock()
	s.dones++
	s.ttls = append(s.ttls, ttl)
	s.lastDoneR = r
	err := s.doneErr
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.inner.Done(ctx, r, ttl)
}

func (s *countingStore) Release(ctx context.Context, r verify.Reservation) error {
	s.mu.Lock()
	s.rels++
	s.lastRelease = r
	err := s.releaseErr
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.inner.Release(ctx, r)
}

func (s *countingStore) calls() (reserves, dones, releases int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reserves, s.dones, s.rels
}

// fixture is one verifier with its middleware, a counting store and the
// errors OnError received.
type fixture struct {
	secret verify.Secret
	store  *countingStore
	v      *verify.Verifier

	mu   sync.Mutex
	errs []error
	dups []duplicate
}

// duplicate is one call of Options.OnDuplicate.
type duplicate struct {
	res   verify.Result
	state verify.State
}

func newFixture(t *testing.T, edit func(*verify.Options)) *fixture {
	t.Helper()
	secret, err := verify.ParseSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	require.NoError(t, err)
	f := &fixture{secret: secret, store: newCountingStore()}
	opts := verify.Options{
		Keys:  []verify.Key{{Label: "current", Secret: secret}},
		Now:   func() time.Time { return mwNow },
		Store: f.store,
		OnError: func(r *http.Request, err error) {
			f.mu.Lock()
			f.errs = append(f.errs, err)
			f.mu.Unlock()
		},
		OnDuplicate: func(r *http.Request, res verify.Result, state verify.State) {
			f.mu.Lock()
			f.dups = append(f.dups, duplicate{res, state})
			f.mu.Unlock()
		},
	}
	if edit != nil {
		edit(&opts)
	}
	f.v, err = verify.NewVerifier(opts)
	require.NoError(t, err)
	return f
}

func (f *fixture) errors() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]error(nil), f.errs...)
}

func (f *fixture) duplicates() []duplicate {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]duplicate(nil), f.dups...)
}

func (f *fixture) request(id string, body []byte) *http.Request {
	return verifytest.NewRequest(f.secret, id, mwNow, "/webhooks/staircase", body)
}

// failureBody is the JSON the middleware answers a rejection with.
type failureBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// errReader returns some bytes, then an error, like a client that drops
// the connection mid-body.
type errReader struct{ sent bool }

var errBrokenPipe = errors.New("connection reset by peer")

func (r *errReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		return copy(p, `{"type":`), nil
	}
	return 0, errBrokenPipe
}

// chunked makes r look like a request sent with Transfer-Encoding: chunked.
func chunked(r *http.Request) *http.Request {
	r.ContentLength = -1
	r.TransferEncoding = []string{"chunked"}
	r.Body = io.NopCloser(struct{ io.Reader }{r.Body})
	return r
}

func TestMiddleware(t *testing.T) {
	const maxBody = 1024
	body := []byte(`{"type":"signal","signal":{"title":"Churn risk"}}`)
	atCap := bytes.Repeat([]byte("a"), maxBody)
	overCap := bytes.Repeat([]byte("a"), maxBody+1)

	tests := []struct {
		name      string
		opts      func(*verify.Options)
		req       func(f *fixture) *http.Request
		status    int
		code      string            // failure code; empty for a request let through
		err       error             // sentinel OnError must see
		header    map[string]string // response headers expected
		wantBody  []byte            // body next must read, when let through
		wantStore bool              // whether the store is consulted
	}{
		{
			name:      "valid",
			req:       func(f *fixture) *http.Request { return f.request("evt_1", body) },
			status:    http.StatusOK,
			wantBody:  body,
			wantStore: true,
		},
		{
			name:      "valid with an empty body",
			req:       func(f *fixture) *http.Request { return f.request("evt_1", nil) },
			status:    http.StatusOK,
			wantBody:  []byte{},
			wantStore: true,
		},
		{
			name: "hand-built request without a Body",
			req: func(f *fixture) *http.Request {
				r := f.request("evt_1", nil)
				r.Body = nil
				return r
			},
			status:    http.StatusOK,
			wantBody:  []byte{},
			wantStore: true,
		},
		{
			name: "GET is not allowed",
			req: func(f *fixture) *http.Request {
				r := f.request("evt_1", body)
				r.Method = http.MethodGet
				return r
			},
			status: http.StatusMethodNotAllowed,
			code:   "method_not_allowed",
			err:    verify.ErrMethodNotAllowed,
			header: map[string]string{"Allow": "POST"},
		},
		{
			name: "PUT is not allowed by default",
			req: func(f *fixture) *http.Request {
				r := f.request("evt_1", body)
				r.Method = http.MethodPut
				return r
			},
			status: http.StatusMethodNotAllowed,
			code:   "method_not_allowed",
			err:    verify.ErrMethodNotAllowed,
			header: map[string]string{"Allow": "POST"},
		},
		{
			name: "PUT with AllowPUT",
			opts: func(o *verify.Options) { o.AllowPUT = true },
			req: func(f *fixture) *http.Request {
				r := f.request("evt_1", body)
				r.Method = http.MethodPut
				return r
			},
			status:    http.StatusOK,
			wantBody:  body,
			wantStore: true,
		},
		{
			name: "DELETE with AllowPUT",
			opts: func(o *verify.Options) { o.AllowPUT = true },
			req: func(f *fixture) *http.Request {
				r := f.request("evt_1", body)
				r.Method = http.MethodDelete
				return r
			},
			status: http.StatusMethodNotAllowed,
			code:   "method_not_allowed",
			err:    verify.ErrMethodNotAllowed,
			header: map[string]string{"Allow": "POST, PUT"},
		},
		{
			name: "missing signature",
			req: func(f *fixture) *http.Request {
				r := f.request("evt_1", body)
				r.Header.Del("X-Staircase-Signature")
				return r
			},
			status: http.StatusBadRequest,
			code:   "missing_signature",
			err:    verify.ErrMissingSignature,
		},
		{
			name: "empty signature",
			req: func(f *fixture) *http.Request {
				r := f.request("evt_1", body)
				r.Header.Set("X-Staircase-Signature", "")
				return r
			},
			status: http.StatusBadRequest,
			code:   "missing_signature",
			err:    verify.ErrMissingSignature,
		},
		{
			name: "malformed signature",
			req: func(f *fixture) *http.Request {
				r := f.request("evt_1", body)
				r.Header.Set("X-Staircase-Signature", "v1,not-base64!")
				return r
			},
			status: http.StatusBadRequest,
			code:   "malformed_header",
			err:    verify.ErrMalformedHeader,
		},
		{
			name: "missing id",
			req: func(f *fixture) *http.Request {
				r := f.request("evt_1", body)
				r.Header.Del("X-Staircase-Id")
				return r
			},
			status: http.StatusBadRequest,
			code:   "malformed_header",
			err:    verify.ErrMalformedHeader,
		},
		{
			name: "stale timestamp",
			req: func(f *fixture) *http.Request {
				return verifytest.StaleTimestamp(f.secret, "evt_1", mwNow, f.v.Tolerance(), "/", body)
			},
			status: http.StatusUnauthorized,
			code:   "timestamp_too_old",
			err:    verify.ErrTimestampTooOld,
		},
		{
			name: "future timestamp",
			req: func(f *fixture) *http.Request {
				return verifytest.FutureTimestamp(f.secret, "evt_1", mwNow, f.v.Tolerance(), "/", body)
			},
			status: http.StatusUnauthorized,
			code:   "timestamp_too_new",
			err:    verify.ErrTimestampTooNew,
		},
		{
			name:   "tampered body",
			req:    func(f *fixture) *http.Request { return verifytest.TamperedBody(f.secret, "evt_1", mwNow, "/", body) },
			status: http.StatusUnauthorized,
			code:   "no_matching_signature",
			err:    verify.ErrNoMatchingSignature,
		},
		{
			name:   "wrong secret",
			req:    func(f *fixture) *http.Request { return verifytest.WrongSecret("evt_1", mwNow, "/", body) },
			status: http.StatusUnauthorized,
			code:   "no_matching_signature",
			err:    verify.ErrNoMatchingSignature,
		},
		{
			name:      "body exactly at the cap",
			opts:      func(o *verify.Options) { o.MaxBodyBytes = maxBody },
			req:       func(f *fixture) *http.Request { return f.request("evt_1", atCap) },
			status:    http.StatusOK,
			wantBody:  atCap,
			wantStore: true,
		},
		{
			name:   "body one byte over the cap",
			opts:   func(o *verify.Options) { o.MaxBodyBytes = maxBody },
			req:    func(f *fixture) *http.Request { return f.request("evt_1", overCap) },
			status: http.StatusRequestEntityTooLarge,
			code:   "body_too_large",
			err:    verify.ErrBodyTooLarge,
		},
		{
			name:      "chunked body exactly at the cap",
			opts:      func(o *verify.Options) { o.MaxBodyBytes = maxBody },
			req:       func(f *fixture) *http.Request { return chunked(f.request("evt_1", atCap)) },
			status:    http.StatusOK,
			wantBody:  atCap,
			wantStore: true,
		},
		{
			name:   "chunked body one byte over the cap",
			opts:   func(o *verify.Options) { o.MaxBodyBytes = maxBody },
			req:    func(f *fixture) *http.Request { return chunked(f.request("evt_1", overCap)) },
			status: http.StatusRequestEntityTooLarge,
			code:   "body_too_large",
			err:    verify.ErrBodyTooLarge,
		},
		{
			name: "Content-Length lower than the body",
			opts: func(o *verify.Options) { o.MaxBodyBytes = maxBody },
			req: func(f *fixture) *http.Request {
				r := f.request("evt_1", overCap)
				r.ContentLength = 10 // a liar: the cap still holds
				return r
			},
			status: http.StatusRequestEntityTooLarge,
			code:   "body_too_large",
			err:    verify.ErrBodyTooLarge,
		},
		{
			name:      "chunked body without Content-Length",
			req:       func(f *fixture) *http.Request { return chunked(f.request("evt_1", body)) },
			status:    http.StatusOK,
			wantBody:  body,
			wantStore: true,
		},
		{
			name: "body fails mid-read",
			req: func(f *fixture) *http.Request {
				r := chunked(f.request("evt_1", body))
				r.Body = io.NopCloser(&errReader{})
				return r
			},
			status: http.StatusBadRequest,
			code:   "bad_body",
			err:    verify.ErrBodyRead,
		},
		{
			name: "store failure fails closed",
			req: func(f *fixture) *http.Request {
				f.store.reserveErr = errors.New("connection refused")
				return f.request("evt_1", body)
			},
			status:    http.StatusServiceUnavailable,
			code:      "store_unavailable",
			err:       verify.ErrStoreUnavailable,
			header:    map[string]string{"Retry-After": "5"},
			wantStore: true,
		},
		{
			name: "full store fails closed",
			req: func(f *fixture) *http.Request {
				f.store.reserveErr = verify.ErrStoreFull
				return f.request("evt_1", body)
			},
			status:    http.StatusServiceUnavailable,
			code:      "store_unavailable",
			err:       verify.ErrStoreFull,
			header:    map[string]string{"Retry-After": "5"},
			wantStore: true,
		},
		{
			name: "legacy body signature skips the store",
			opts: func(o *verify.Options) { o.AllowBodySignature = true },
			req: func(f *fixture) *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
				r.Header.Set("X-Staircase-Signature", legacyBodySignature(f.secret, body))
				return r
			},
			status:   http.StatusOK,
			wantBody: body,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.opts)
			var called int
			var got []byte
			var res verify.Result
			var resOK bool
			var gotLen int64
			h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called++
				gotLen = r.ContentLength
				got, _ = io.ReadAll(r.Body)
				res, resOK = verify.FromContext(r.Context())
			}))
			req := tc.req(f)
			sig := req.Header.Get("X-Staircase-Signature")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			assert.Equal(t, tc.status, rec.Code)
			for k, v := range tc.header {
				assert.Equal(t, v, rec.Header().Get(k), "header %s", k)
			}
			reserves, _, _ := f.store.calls()
			if tc.wantStore {
				assert.Equal(t, 1, reserves, "store reserves")
			} else {
				assert.Zero(t, reserves, "the store must not be touched")
			}
			if tc.code == "" {
				require.Equal(t, 1, called, "next called once")
				assert.Equal(t, tc.wantBody, got)
				assert.Equal(t, int64(len(tc.wantBody)), gotLen, "ContentLength seen by next")
				require.True(t, resOK, "FromContext")
				assert.Equal(t, "current", res.KeyLabel)
				assert.Empty(t, f.errors())
				_, dones, _ := f.store.calls()
				if tc.wantStore {
					assert.Equal(t, "evt_1", res.ID)
					assert.Equal(t, 1, dones)
				}
				return
			}
			assert.Zero(t, called, "next must not be called")
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			var fb failureBody
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &fb), "body %q", rec.Body.String())
			assert.Equal(t, tc.code, fb.Error.Code)
			assert.NotEmpty(t, fb.Error.Message)
			if sig != "" {
				assert.NotContains(t, rec.Body.String(), sig, "the answer must not echo the signature")
			}
			errs := f.errors()
			require.Len(t, errs, 1, "OnError calls")
			assert.ErrorIs(t, errs[0], tc.err)
			if sig != "" {
				assert.NotContains(t, errs[0].Error(), sig)
			}
		})
	}
}

// legacyBodySignature is the legacy header value HMAC-SHA256(key, body) in
// hex, which the Signer does not produce.
func legacyBodySignature(s verify.Secret, body []byte) string {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s.Encode(), verify.SecretPrefix))
	if err != nil {
		panic(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func TestMiddlewareDuplicateAfterSuccess(t *testing.T) {
	f := newFixture(t, nil)
	var called atomic.Int32
	h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	body := []byte(`{"n":1}`)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, f.request("evt_dup", body))
	assert.Equal(t, http.StatusAccepted, rec.Code)
	assert.Empty(t, rec.Header().Get(verify.DuplicateHeader))

	// The sender retries (it did not see the answer): a new timestamp, the
	// same id.
	retry := verifytest.NewRequest(f.secret, "evt_dup", mwNow.Add(time.Second), "/", body)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, retry)
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader))
	assert.Equal(t, int32(1), called.Load(), "next must not see the duplicate")
	assert.Empty(t, f.errors(), "a duplicate is not a rejection")
	dups := f.duplicates()
	require.Len(t, dups, 1, "OnDuplicate calls")
	assert.Equal(t, verify.StateDone, dups[0].state)
	assert.Equal(t, "evt_dup", dups[0].res.ID)
	assert.Equal(t, "current", dups[0].res.KeyLabel)
	assert.Equal(t, mwNow.Add(time.Second).Unix(), dups[0].res.Timestamp.Unix(), "the Result of the retry")
}

func TestMiddlewareFailureThenRetry(t *testing.T) {
	f := newFixture(t, nil)
	statuses := []int{http.StatusInternalServerError, http.StatusNotFound, http.StatusOK}
	var calls int
	h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(statuses[calls])
		calls++
	}))
	for i, want := range statuses {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, verifytest.NewRequest(f.secret, "evt_retry", mwNow.Add(time.Duration(i)*time.Second), "/", []byte("x")))
		assert.Equal(t, want, rec.Code, "attempt %d", i+1)
	}
	assert.Equal(t, 3, calls, "every failed attempt is processed again")
	_, dones, rels := f.store.calls()
	assert.Equal(t, 1, dones)
	assert.Equal(t, 2, rels)

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, f.request("evt_retry", []byte("x")))
	assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader))
	assert.Equal(t, 3, calls)
}

func TestMiddlewareHandlerWritesNothing(t *testing.T) {
	f := newFixture(t, nil)
	h := f.v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, f.request("evt_silent", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	_, dones, rels := f.store.calls()
	assert.Equal(t, 1, dones, "no answer is a 200, so done")
	assert.Zero(t, rels)
}

func TestMiddlewarePanicReleases(t *testing.T) {
	f := newFixture(t, nil)
	panics := true
	h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if panics {
			panic("boom")
		}
	}))
	assert.PanicsWithValue(t, "boom", func() {
		h.ServeHTTP(httptest.NewRecorder(), f.request("evt_panic", nil))
	})
	_, dones, rels := f.store.calls()
	assert.Zero(t, dones)
	assert.Equal(t, 1, rels, "released before the panic goes on")
	assert.Equal(t, "evt_panic", f.store.lastRelease.Key)

	panics = false
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, f.request("evt_panic", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Empty(t, rec.Header().Get(verify.DuplicateHeader), "the retry is processed")
}

func TestMiddlewareReleaseFailureIsReported(t *testing.T) {
	storeErr := errors.New("redis: i/o timeout")
	for _, tc := range []struct {
		name   string
		panics bool
	}{
		{"after an error answer", false},
		{"after a panic", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.store.releaseErr = storeErr
			h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tc.panics {
					panic("boom")
				}
				w.WriteHeader(http.StatusInternalServerError)
			}))
			serve := func() { h.ServeHTTP(httptest.NewRecorder(), f.request("evt_release_fails", nil)) }
			if tc.panics {
				assert.PanicsWithValue(t, "boom", serve, "the panic goes on after the report")
			} else {
				serve()
			}
			_, _, rels := f.store.calls()
			assert.Equal(t, 1, rels)
			errs := f.errors()
			require.Len(t, errs, 1)
			assert.ErrorIs(t, errs[0], verify.ErrStoreUnavailable)
			assert.ErrorIs(t, errs[0], storeErr)
		})
	}
}

func TestMiddlewareAbortHandlerReleases(t *testing.T) {
	f := newFixture(t, nil)
	h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		panic(http.ErrAbortHandler)
	}))
	assert.PanicsWithError(t, http.ErrAbortHandler.Error(), func() {
		h.ServeHTTP(httptest.NewRecorder(), f.request("evt_abort", nil))
	})
	_, dones, rels := f.store.calls()
	assert.Zero(t, dones, "a panic after a 2xx still releases")
	assert.Equal(t, 1, rels)
}

func TestMiddlewareConcurrentDuplicates(t *testing.T) {
	const n = 16
	f := newFixture(t, nil)
	var called atomic.Int32
	release := make(chan struct{})
	h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called.Add(1)
		<-release // hold the reservation until every other copy answered
	}))
	body := []byte(`{"n":1}`)
	answers := make(chan int, n)
	for range n {
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, f.request("evt_same", body))
			answers <- rec.Code
		}()
	}
	// Every copy but the one in next answers at once. Should a regression
	// let two copies into next, they would wait for release for ever:
	// bound the wait, then release them and count.
	var codes []int
	timeout := time.After(5 * time.Second)
wait:
	for len(codes) < n-1 {
		select {
		case c := <-answers:
			codes = append(codes, c)
		case <-timeout:
			t.Errorf("only %d of %d copies answered while one was in next", len(codes), n)
			break wait
		}
	}
	close(release)
	timeout = time.After(5 * time.Second)
	for len(codes) < n {
		select {
		case c := <-answers:
			codes = append(codes, c)
		case <-timeout:
			require.FailNow(t, "copies still running after release", "%d of %d answered", len(codes), n)
		}
	}

	assert.Equal(t, int32(1), called.Load(), "exactly one copy reaches next")
	var ok, conflict int
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
			conflict++
		}
	}
	assert.Equal(t, 1, ok)
	assert.Equal(t, n-1, conflict)
	for _, err := range f.errors() {
		assert.ErrorIs(t, err, verify.ErrInFlight)
	}
}

func TestMiddlewareConcurrentDuplicatesUnsynchronised(t *testing.T) {
	const n = 32
	f := newFixture(t, nil)
	var called atomic.Int32
	h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called.Add(1) }))
	var wg sync.WaitGroup
	var bad atomic.Int32
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, f.request("evt_race", []byte("x")))
			if rec.Code != http.StatusConflict && rec.Code != http.StatusOK {
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), called.Load(), "exactly one copy reaches next")
	assert.Zero(t, bad.Load(), "the others get 409 or the duplicate 200")
}

func TestMiddlewareInFlightAnswer(t *testing.T) {
	f := newFixture(t, nil)
	_, _, err := f.store.inner.Reserve(t.Context(), "evt_busy", time.Minute)
	require.NoError(t, err)
	h := f.v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("next called") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, f.request("evt_busy", nil))
	assert.Equal(t, http.StatusConflict, rec.Code)
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	var fb failureBody
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &fb))
	assert.Equal(t, "in_flight", fb.Error.Code)
	require.Len(t, f.errors(), 1)
	assert.ErrorIs(t, f.errors()[0], verify.ErrInFlight)
	dups := f.duplicates()
	require.Len(t, dups, 1, "OnDuplicate calls")
	assert.Equal(t, verify.StateInFlight, dups[0].state)
	assert.Equal(t, "evt_busy", dups[0].res.ID)
}

func TestMiddlewareDoneFailureIsReported(t *testing.T) {
	f := newFixture(t, nil)
	storeErr := errors.New("redis: connection pool timeout")
	f.store.doneErr = storeErr
	h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, f.request("evt_done_fails", nil))
	assert.Equal(t, http.StatusOK, rec.Code, "next's answer stands")
	errs := f.errors()
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], verify.ErrStoreUnavailable)
	assert.ErrorIs(t, errs[0], storeErr)
}

func TestMiddlewareStoreErrorWrapsCause(t *testing.T) {
	f := newFixture(t, nil)
	cause := errors.New("dial tcp 127.0.0.1:6379: connection refused")
	f.store.reserveErr = cause
	h := f.v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("next called") }))
	h.ServeHTTP(httptest.NewRecorder(), f.request("evt_1", nil))
	errs := f.errors()
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], verify.ErrStoreUnavailable)
	assert.ErrorIs(t, errs[0], cause)
}

func TestMiddlewareRetention(t *testing.T) {
	tests := []struct {
		name      string
		tolerance time.Duration
		retention time.Duration
		want      time.Duration
	}{
		{"default is twice the default tolerance", 0, 0, 2 * verify.DefaultTolerance},
		{"exactly twice the tolerance is kept", time.Minute, 2 * time.Minute, 2 * time.Minute},
		{"longer is kept", time.Minute, 24 * time.Hour, 24 * time.Hour},
		{"twice a huge tolerance saturates instead of wrapping", math.MaxInt64/2 + 1, 0, math.MaxInt64},
		{"twice the largest tolerance saturates", math.MaxInt64, 0, math.MaxInt64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(o *verify.Options) {
				o.Tolerance = tc.tolerance
				o.Retention = tc.retention
			})
			h := f.v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			h.ServeHTTP(httptest.NewRecorder(), f.request("evt_1", nil))
			assert.Equal(t, []time.Duration{tc.want, tc.want}, f.store.ttls, "reserve and done ttl")
		})
	}
}

func TestMiddlewareInvalidOptions(t *testing.T) {
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	keys := []verify.Key{{Secret: secret}}
	_, err = verify.NewVerifier(verify.Options{Keys: keys, MaxBodyBytes: -1})
	assert.ErrorIs(t, err, verify.ErrInvalidOptions)
	_, err = verify.NewVerifier(verify.Options{Keys: keys, Retention: -time.Second})
	assert.ErrorIs(t, err, verify.ErrInvalidOptions)
}

// A Retention shorter than twice the tolerance would forget an id while a
// replay of its request is still accepted: it is refused, with a hint, not
// silently raised.
func TestMiddlewareRetentionBelowTwiceTheTolerance(t *testing.T) {
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	keys := []verify.Key{{Secret: secret}}
	for _, tc := range []struct {
		name                 string
		tolerance, retention time.Duration
	}{
		{"a nanosecond short", time.Minute, 2*time.Minute - 1},
		{"the tolerance itself", time.Minute, time.Minute},
		{"below twice the default tolerance", 0, 9 * time.Minute},
		{"an hour with the largest tolerance", math.MaxInt64, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verify.NewVerifier(verify.Options{Keys: keys, Tolerance: tc.tolerance, Retention: tc.retention})
			require.ErrorIs(t, err, verify.ErrInvalidOptions)
			assert.Contains(t, err.Error(), "twice the tolerance")
		})
	}
}

func TestMiddlewareDefaultBodyCap(t *testing.T) {
	f := newFixture(t, nil)
	h := f.v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	at := bytes.Repeat([]byte("a"), verify.DefaultMaxBodyBytes)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, f.request("evt_at", at))
	assert.Equal(t, http.StatusOK, rec.Code)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, f.request("evt_over", append(at, 'a')))
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
}

func TestMiddlewareFlusher(t *testing.T) {
	f := newFixture(t, nil)
	h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fl, ok := w.(http.Flusher)
		if assert.True(t, ok, "http.Flusher") {
			fl.Flush()
		}
		assert.NoError(t, http.NewResponseController(w).Flush(), "ResponseController")
		assert.NoError(t, http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)), "ResponseController reaches the server's writer")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	req := f.request("evt_flush", nil)
	req.RequestURI = ""
	req.URL, _ = req.URL.Parse(srv.URL)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	rec := httptest.NewRecorder()
	f2 := newFixture(t, nil)
	f2.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.(http.Flusher).Flush()
	})).ServeHTTP(rec, f2.request("evt_flush", nil))
	assert.True(t, rec.Flushed)
}

func TestMiddlewareOverRealServer(t *testing.T) {
	f := newFixture(t, func(o *verify.Options) { o.MaxBodyBytes = 64 })
	h := f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		res, _ := verify.FromContext(r.Context())
		fmt.Fprintf(w, "%s %s", res.ID, b)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	send := func(id string, body []byte, chunk bool) (*http.Response, string) {
		t.Helper()
		var rd io.Reader = bytes.NewReader(body)
		if chunk {
			rd = struct{ io.Reader }{rd} // unknown length: sent chunked
		}
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/hook", rd)
		require.NoError(t, err)
		for k, v := range verifytest.SignedHeaders(f.secret, id, mwNow, body) {
			req.Header[k] = v
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, got := send("evt_a", []byte("hello"), true)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "evt_a hello", got)
	resp, _ = send("evt_b", bytes.Repeat([]byte("a"), 65), true)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	resp, _ = send("evt_c", bytes.Repeat([]byte("a"), 65), false)
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	resp, got = send("evt_a", []byte("hello"), false)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "true", resp.Header.Get(verify.DuplicateHeader))
	assert.Empty(t, got)
}

func TestMiddlewareDefaultLogLine(t *testing.T) {
	var buf bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	secret, err := verify.NewSecret()
	require.NoError(t, err)
	v, err := verify.NewVerifier(verify.Options{Keys: []verify.Key{{Secret: secret}}, Now: func() time.Time { return mwNow }})
	require.NoError(t, err)
	h := v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("next called") }))

	req := verifytest.TamperedBody(secret, "evt_logged", mwNow, "/webhooks/staircase", []byte(`{"a":1}`))
	req.Header.Set("X-Request-Id", "req-42")
	sig := req.Header.Get("X-Staircase-Signature")
	h.ServeHTTP(httptest.NewRecorder(), req)

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 1, "one log line: %s", buf.String())
	var rec map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &rec))
	assert.Equal(t, "WARN", rec["level"])
	assert.Equal(t, "evt_logged", rec["id"])
	assert.Equal(t, "req-42", rec["request_id"])
	assert.Equal(t, req.RemoteAddr, rec["remote"])
	assert.Contains(t, rec["reason"], verify.ErrNoMatchingSignature.Error())
	assert.NotContains(t, buf.String(), sig)
	assert.NotContains(t, buf.String(), strings.TrimPrefix(sig, "v1,"))
	assert.NotContains(t, buf.String(), secret.Encode())

	// An oversized id header is cut, not copied whole into the log.
	buf.Reset()
	req = verifytest.TamperedBody(secret, "evt_logged", mwNow, "/", nil)
	req.Header.Set("X-Staircase-Id", strings.Repeat("i", 10_000))
	h.ServeHTTP(httptest.NewRecorder(), req)
	assert.Less(t, buf.Len(), 2000)
}

func TestFromContextOutsideMiddleware(t *testing.T) {
	_, ok := verify.FromContext(t.Context())
	assert.False(t, ok)
}
