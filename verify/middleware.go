package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// DefaultMaxBodyBytes is the body cap of the Middleware when
// Options.MaxBodyBytes is zero: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// DuplicateHeader is set to "true" on the 200 answer the Middleware gives,
// without calling the next handler, to a request whose id was already
// processed successfully.
const DuplicateHeader = "X-Stairhook-Duplicate"

// storeRetryAfter is the Retry-After, in seconds, of a 503 for a failed store.
const storeRetryAfter = "5"

// middlewareConfig is filled from Options by initMiddleware.
type middlewareConfig struct {
	maxBody   int64
	store     Store
	retention time.Duration
	allow     string // the Allow header of a 405
	onError   func(*http.Request, error)
}

func (v *Verifier) initMiddleware() error {
	o := &v.opts
	if o.MaxBodyBytes < 0 {
		return withHint(ErrInvalidOptions, "negative MaxBodyBytes")
	}
	if o.Retention < 0 {
		return withHint(ErrInvalidOptions, "negative Retention")
	}
	// Saturated: twice a tolerance above MaxInt64/2 would wrap to a
	// retention of zero or less, and turn replay protection off.
	minRetention := addSaturated(v.tolerance, v.tolerance)
	m := middlewareConfig{
		maxBody:   o.MaxBodyBytes,
		store:     o.Store,
		retention: max(o.Retention, minRetention),
		allow:     http.MethodPost,
		onError:   o.OnError,
	}
	if m.maxBody == 0 {
		m.maxBody = DefaultMaxBodyBytes
	}
	if m.store == nil {
		m.store = NewMemoryStore(MemoryStoreOptions{})
	}
	if o.AllowPUT {
		m.allow = "POST, PUT"
	}
	if m.onError == nil {
		m.onError = logRejection
	}
	v.mw = m
	return nil
}

// Middleware returns a handler that lets through to next only requests that
// verify, each at most once. It has the func(http.Handler) http.Handler
// shape, so it fits mux.Router.Use, chi and plain http.Handle.
//
// For each request, in this order, it
//   - answers 405 (with an Allow header) to any method but POST, or PUT with
//     Options.AllowPUT;
//   - reads the body once, capped at Options.MaxBodyBytes: 413 when over,
//     400 when reading fails;
//   - verifies the raw bytes (see Verify): 400 for a missing or malformed
//     header, 401 for no matching signature or a timestamp out of tolerance;
//   - reserves the signed id in Options.Store, only now that the request is
//     authentic: an id already processed is answered 200 with the header
//     X-Stairhook-Duplicate: true, and next is not called, so the sender
//     stops retrying; an id in flight is answered 409 with Retry-After: 1; a
//     failing store is answered 503 with Retry-After (fail closed);
//   - calls next with a request whose Body reads the same bytes from the
//     start and whose context carries the Result (see FromContext);
//   - marks the id done, kept for Options.Retention, when next answered 2xx
//     (or wrote nothing, which net/http sends as 200), and releases it
//     otherwise, so that the sender's retry is processed again. When next
//     panics, the id is released and the panic goes on.
//
// Requests verified by a legacy scheme (Options.AllowBodySignature,
// Options.AllowSecretDigest) carry no signed id, so the store is skipped:
// they have neither replay protection nor de-duplication.
//
// A reservation lives for the retention too: if the process dies while next
// runs, the id answers 409 until the reservation expires.
//
// Rejections are answered with a JSON body {"error":{"code":…,"message":…}}
// whose code is stable (missing_signature, malformed_header,
// timestamp_too_old, timestamp_too_new, no_matching_signature,
// body_too_large, bad_body, method_not_allowed, in_flight,
// store_unavailable) and whose message is generic: the cause, with hints,
// goes to Options.OnError, never to the client. OnError is also called when
// marking an id done or releasing it fails after next answered or panicked.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.serve(w, r, next)
	})
}

// request holds what the Middleware allocates per request, in one piece.
type request struct {
	res  Result
	rw   statusWriter
	body bodyReader
}

func (v *Verifier) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	m := &v.mw
	if r.Method != http.MethodPost && (r.Method != http.MethodPut || m.allow == http.MethodPost) {
		w.Header().Set("Allow", m.allow)
		v.reject(w, r, withHint(ErrMethodNotAllowed, "method "+truncate(r.Method, 32)))
		return
	}
	if r.ContentLength > m.maxBody {
		v.reject(w, r, withHint(ErrBodyTooLarge, fmt.Sprintf("Content-Length %d over the %d-byte cap", r.ContentLength, m.maxBody)))
		return
	}
	src := r.Body
	if src == nil { // a hand-built request; servers always set Body
		src = http.NoBody
	}
	body, err := readBody(http.MaxBytesReader(w, src, m.maxBody), r.ContentLength)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			v.reject(w, r, withHint(ErrBodyTooLarge, fmt.Sprintf("body over the %d-byte cap", m.maxBody)))
		} else {
			v.reject(w, r, fmt.Errorf("%w: %w", ErrBodyRead, err))
		}
		return
	}
	res, err := v.Verify(r.Header, body)
	if err != nil {
		v.reject(w, r, err)
		return
	}

	var rsv Reservation
	if res.ID != "" {
		var state State
		rsv, state, err = m.store.Reserve(r.Context(), res.ID, m.retention)
		switch {
		case err != nil:
			v.reject(w, r, fmt.Errorf("%w: reserve: %w", ErrStoreUnavailable, err))
			return
		case state == StateDone:
			w.Header().Set(DuplicateHeader, "true")
			w.WriteHeader(http.StatusOK)
			return
		case state == StateInFlight:
			v.reject(w, r, ErrInFlight)
			return
		case state != StateNew:
			v.reject(w, r, fmt.Errorf("%w: reserve answered %v", ErrStoreUnavailable, state))
			return
		}
	}

	st := &request{res: res}
	st.rw.ResponseWriter = w
	st.body.b = body
	r2 := r.WithContext(context.WithValue(r.Context(), resultKey{}, &st.res))
	r2.Body = &st.body
	r2.ContentLength = int64(len(body))
	if res.ID == "" {
		next.ServeHTTP(&st.rw, r2)
		return
	}

	// The store calls after next must not fail because the client went
	// away: the outcome of next is what they record.
	ctx := context.WithoutCancel(r.Context())
	finished := false
	defer func() {
		if !finished {
			// next panicked (or called runtime.Goexit): release, report a
			// failure as the other path does, and let the panic go on with
			// its original stack (nothing here recovers it).
			if err := m.store.Release(ctx, rsv); err != nil {
				m.onError(r, fmt.Errorf("%w: release after the handler panicked: %w", ErrStoreUnavailable, err))
			}
		}
	}()
	next.ServeHTTP(&st.rw, r2)
	finished = true

	if status := st.rw.status; status == 0 || (status >= 200 && status < 300) {
		if err := m.store.Done(ctx, rsv, m.retention); err != nil {
			m.onError(r, fmt.Errorf("%w: mark done after status %d: %w", ErrStoreUnavailable, max(status, 200), err))
		}
		return
	}
	if err := m.store.Release(ctx, rsv); err != nil {
		m.onError(r, fmt.Errorf("%w: release: %w", ErrStoreUnavailable, err))
	}
}

// readBody reads all of r, sizing the buffer from the declared length (at
// most 64 KiB up front, so a false Content-Length cannot make the receiver
// reserve the whole cap before a byte arrives).
func readBody(r io.Reader, contentLength int64) ([]byte, error) {
	n := 512
	if contentLength >= 0 {
		n = int(min(contentLength, 64<<10)) + 1 // +1 to see io.EOF without growing
	}
	b := make([]byte, 0, n)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		k, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+k]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// failure is the fixed answer to one kind of rejection.
type failure struct {
	status int
	body   string
}

func newFailure(status int, code, message string) failure {
	return failure{status, `{"error":{"code":"` + code + `","message":"` + message + `"}}` + "\n"}
}

// failures maps each rejection, by sentinel, to its answer; the first match
// wins.
var failures = []struct {
	err error
	failure
}{
	{ErrMissingSignature, newFailure(http.StatusBadRequest, "missing_signature", "the request carries no signature header")},
	{ErrMalformedHeader, newFailure(http.StatusBadRequest, "malformed_header", "the signature headers are malformed")},
	{ErrTimestampTooOld, newFailure(http.StatusUnauthorized, "timestamp_too_old", "the signed timestamp is too old")},
	{ErrTimestampTooNew, newFailure(http.StatusUnauthorized, "timestamp_too_new", "the signed timestamp is too far in the future")},
	{ErrNoMatchingSignature, newFailure(http.StatusUnauthorized, "no_matching_signature", "the signature does not match")},
	{ErrBodyTooLarge, newFailure(http.StatusRequestEntityTooLarge, "body_too_large", "the request body is too large")},
	{ErrBodyRead, newFailure(http.StatusBadRequest, "bad_body", "the request body could not be read")},
	{ErrMethodNotAllowed, newFailure(http.StatusMethodNotAllowed, "method_not_allowed", "the method is not allowed")},
	{ErrInFlight, newFailure(http.StatusConflict, "in_flight", "a request with this id is being processed; retry later")},
	{ErrStoreUnavailable, newFailure(http.StatusServiceUnavailable, "store_unavailable", "the request cannot be processed now; retry later")},
}

// failureFor returns the answer to err. Every error the Middleware rejects
// with wraps one of the sentinels above; anything else would be a bug, and is
// answered like a store failure so that the sender retries.
func failureFor(err error) failure {
	for _, f := range failures {
		if errors.Is(err, f.err) {
			return f.failure
		}
	}
	return failures[len(failures)-1].failure
}

func (v *Verifier) reject(w http.ResponseWriter, r *http.Request, err error) {
	v.mw.onError(r, err)
	f := failureFor(err)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	switch f.status {
	case http.StatusConflict:
		h.Set("Retry-After", "1")
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", storeRetryAfter)
	}
	w.WriteHeader(f.status)
	_, _ = io.WriteString(w, f.body)
}

// maxLoggedID bounds each request value (id, request id, path) copied into
// the default log line: they are unauthenticated input.
const maxLoggedID = 256

// logRejection is the default Options.OnError.
func logRejection(r *http.Request, err error) {
	attrs := []slog.Attr{
		slog.String("reason", err.Error()),
		slog.String("method", r.Method),
		slog.String("path", truncate(r.URL.Path, maxLoggedID)),
		slog.String("remote", r.RemoteAddr),
	}
	for _, name := range [...]string{"X-Staircase-Id", "Webhook-Id"} {
		if id := r.Header.Get(name); id != "" {
			attrs = append(attrs, slog.String("id", truncate(id, maxLoggedID)))
			break
		}
	}
	if rid := r.Header.Get("X-Request-Id"); rid != "" {
		attrs = append(attrs, slog.String("request_id", truncate(rid, maxLoggedID)))
	}
	slog.Default().LogAttrs(r.Context(), slog.LevelWarn, "stairhook: webhook request rejected", attrs...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// statusWriter records the status next answers with. Unwrap keeps
// http.ResponseController working for the other optional interfaces.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher for handlers that assert it directly.
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the underlying ResponseWriter, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bodyReader replays the verified body to next.
type bodyReader struct {
	b []byte
	i int
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.i >= len(b.b) {
		return 0, io.EOF
	}
	n := copy(p, b.b[b.i:])
	b.i += n
	return n, nil
}

// WriteTo lets io.Copy and io.ReadAll-like callers skip a buffer.
func (b *bodyReader) WriteTo(w io.Writer) (int64, error) {
	if b.i >= len(b.b) {
		return 0, nil
	}
	n, err := w.Write(b.b[b.i:])
	b.i += n
	return int64(n), err
}

func (b *bodyReader) Close() error { return nil }
