package verify_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/verify"
)

// heldBody is a signed body that arrives only when the test says so: its
// first Read reports itself on reading, waits for send, then returns the
// body.
type heldBody struct {
	body    []byte
	reading chan struct{}
	send    chan struct{}
	sent    bool
}

func newHeldBody(body []byte) *heldBody {
	return &heldBody{body: body, reading: make(chan struct{}), send: make(chan struct{})}
}

func (b *heldBody) Read(p []byte) (int, error) {
	if !b.sent {
		close(b.reading)
		<-b.send
		b.sent = true
	}
	n := copy(p, b.body)
	b.body = b.body[n:]
	if len(b.body) == 0 {
		return n, io.EOF
	}
	return n, nil
}

func (b *heldBody) Close() error { return nil }

// budgetFixture is a verifier whose BodyBudget is exactly its body cap, so
// that one body being read spends it. edit, if any, changes its options.
func budgetFixture(t *testing.T, edit func(*verify.Options)) (*fixture, http.Handler) {
	const maxBody = 4096
	budget, err := verify.NewBodyBudget(maxBody)
	require.NoError(t, err)
	f := newFixture(t, func(o *verify.Options) {
		o.MaxBodyBytes = maxBody
		o.BodyBudget = budget
		if edit != nil {
			edit(o)
		}
	})
	return f, f.v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
}

// hold starts a request whose body, as long as its cap, is held back, and
// returns once the Middleware is reading it, with a function that sends
// the body and returns the answer.
func hold(t *testing.T, f *fixture, h http.Handler, id string, chunked bool) func() int {
	body := make([]byte, 4096)
	req := f.request(id, body)
	hb := newHeldBody(body)
	req.Body = hb
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
	<-hb.reading
	var once bool
	finish := func() int {
		if !once {
			once = true
			close(hb.send)
			<-done
		}
		return rec.Code
	}
	t.Cleanup(func() { finish() })
	return finish
}

func TestMiddlewareBodyBudget(t *testing.T) {
	for _, chunked := range []bool{false, true} {
		name := "held body with Content-Length"
		if chunked {
			name = "held chunked body, which takes the cap"
		}
		t.Run(name, func(t *testing.T) {
			f, h := budgetFixture(t, nil)
			finish := hold(t, f, h, "evt_held", chunked)

			// The budget is spent: a small signed request is answered 503
			// busy at once, its body unread.
			stalled := newStallingBody(t)
			req := f.request("evt_small", []byte(`{}`))
			req.Body = stalled
			rec := httptest.NewRecorder()
			served := make(chan struct{})
			go func() {
				defer close(served)
				h.ServeHTTP(rec, req)
			}()
			select {
			case <-served:
			case <-stalled.read:
				t.Fatal("read the body of a request the budget should turn away")
			}
			assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
			assert.Equal(t, "1", rec.Header().Get("Retry-After"))
			var fb failureBody
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &fb))
			assert.Equal(t, "busy", fb.Error.Code)
			errs := f.errors()
			require.Len(t, errs, 1)
			assert.ErrorIs(t, errs[0], verify.ErrBusy)

			// A request its headers condemn is answered for them, budget or
			// not: it costs no body.
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", newStallingBody(t)))
			assert.Equal(t, http.StatusBadRequest, rec.Code)

			// Once the held body is in, its cost is given back.
			assert.Equal(t, http.StatusOK, finish())
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, f.request("evt_small", []byte(`{}`)))
			assert.Equal(t, http.StatusOK, rec.Code)
		})
	}
}

// A body that fails mid-read gives its cost back too.
func TestMiddlewareBodyBudgetGivenBackOnFailure(t *testing.T) {
	f, h := budgetFixture(t, nil)
	for i := range 3 {
		req := f.request("evt_broken", make([]byte, 4096))
		req.Body = io.NopCloser(&errReader{})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusBadRequest, rec.Code, "attempt %d", i+1)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, f.request("evt_whole", make([]byte, 4096)))
	assert.Equal(t, http.StatusOK, rec.Code)
}

// One budget shared by two verifiers bounds them together.
func TestMiddlewareBodyBudgetShared(t *testing.T) {
	budget, err := verify.NewBodyBudget(4096)
	require.NoError(t, err)
	share := func(o *verify.Options) { o.BodyBudget = budget }
	f1, h1 := budgetFixture(t, share)
	f2, h2 := budgetFixture(t, share)
	finish := hold(t, f1, h1, "evt_held", false)
	rec := httptest.NewRecorder()
	h2.ServeHTTP(rec, f2.request("evt_other", []byte(`{}`)))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "the other verifier finds the budget spent")
	assert.Equal(t, http.StatusOK, finish())
	rec = httptest.NewRecorder()
	h2.ServeHTTP(rec, f2.request("evt_other", []byte(`{}`)))
	assert.Equal(t, http.StatusOK, rec.Code)
}

func TestMiddlewareBodyBudgetBelowTheCap(t *testing.T) {
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	budget, err := verify.NewBodyBudget(verify.DefaultMaxBodyBytes - 1)
	require.NoError(t, err)
	_, err = verify.NewVerifier(verify.Options{Keys: []verify.Key{{Secret: secret}}, BodyBudget: budget})
	require.ErrorIs(t, err, verify.ErrInvalidOptions)
	assert.Contains(t, err.Error(), "BodyBudget")
	_, err = verify.NewBodyBudget(0)
	assert.ErrorIs(t, err, verify.ErrInvalidOptions)
}
