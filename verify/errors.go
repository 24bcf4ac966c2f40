package verify

import "errors"

// Sentinel errors returned by [Verifier.Verify], [ParseSecret], [RawSecret],
// [NewSigner], [Signer.Sign], [NewVerifier] and [FromSecrets], reported by
// the [Verifier.Middleware] to Options.OnError, and returned by a [Store]. Returned errors may wrap a
// sentinel with a hint (for example "timestamp 312 s in the future"); test
// them with [errors.Is]. No error ever carries a secret, a computed MAC or the
// signature value that was received.
var (
	// ErrMissingSignature means the request carries no signature header, or
	// an empty one.
	ErrMissingSignature = errors.New("verify: missing signature header")

	// ErrMalformedHeader means a signature, id or timestamp header is present
	// but cannot be parsed, or exceeds the size limits of the scheme.
	ErrMalformedHeader = errors.New("verify: malformed signature header")

	// ErrTimestampTooOld means the signed timestamp is older than now minus
	// the tolerance: a late delivery or a replay.
	ErrTimestampTooOld = errors.New("verify: timestamp too old")

	// ErrTimestampTooNew means the signed timestamp is further in the future
	// than the tolerance allows: usually a clock that is off.
	ErrTimestampTooNew = errors.New("verify: timestamp too new")

	// ErrNoMatchingSignature means the headers are well formed but no
	// signature matches any active key: a wrong secret or a changed body.
	ErrNoMatchingSignature = errors.New("verify: no matching signature")

	// ErrInvalidSecret means a secret is not in the accepted format, is
	// shorter than 16 bytes, or is the zero Secret.
	ErrInvalidSecret = errors.New("verify: invalid secret")

	// ErrInvalidOptions means the options given to NewVerifier (no key, a
	// keyring whose keys have all expired, a negative tolerance, a
	// Retention below twice the tolerance) or NewSQLStore (no dialect, a
	// bad table name) are unusable.
	ErrInvalidOptions = errors.New("verify: invalid options")

	// ErrInvalidID means Signer.Sign was given an event id that is not 1
	// to 256 visible ASCII characters. It is a signing error: a received
	// id that is malformed is ErrMalformedHeader.
	ErrInvalidID = errors.New("verify: invalid event id")
	// ErrInvalidTimestamp means Signer.Sign was given a time before the
	// Unix epoch or after year 33658, which 12 decimal digits of Unix
	// seconds cannot carry.
	ErrInvalidTimestamp = errors.New("verify: timestamp out of range for signing")

	// ErrMethodNotAllowed means the request method was not POST (or PUT with
	// Options.AllowPUT); answered 405.
	ErrMethodNotAllowed = errors.New("verify: method not allowed")
	// ErrBodyTooLarge means the body exceeded Options.MaxBodyBytes; answered
	// 413.
	ErrBodyTooLarge = errors.New("verify: body too large")
	// ErrBodyRead means the body could not be read, for example because the
	// client went away mid-request; answered 400.
	ErrBodyRead = errors.New("verify: body read failed")
	// ErrInFlight means another request with the same id is being processed;
	// answered 409 with Retry-After: 1.
	ErrInFlight = errors.New("verify: request with this id in flight")
	// ErrBusy means the bodies being read at once have spent the
	// Options.BodyBudget; answered 503 with Retry-After: 1, the body
	// unread.
	ErrBusy = errors.New("verify: body budget spent")

	// ErrStoreFull means a bounded store has no room for a new key until
	// entries expire; the Middleware answers 503 (fail closed).
	ErrStoreFull = errors.New("verify: store full")
	// ErrReservationLost means a reservation expired or was taken over before
	// Done.
	ErrReservationLost = errors.New("verify: reservation lost")
	// ErrStoreUnavailable wraps store failures reported by the Middleware,
	// answered 503 so the sender retries.
	ErrStoreUnavailable = errors.New("verify: store unavailable")
)

// hintError wraps a sentinel with a human-readable hint that is safe to show:
// it never contains secret-derived bytes.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() + ": " + e.hint }
func (e *hintError) Unwrap() error { return e.err }

func withHint(err error, hint string) error { return &hintError{err: err, hint: hint} }
