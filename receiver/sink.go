package receiver

import (
	"context"
	"errors"
	"time"
)

// Sink delivers an event to one destination (a Jira project, a mailbox, the
// dry-run outbox). The server runs each matched sink at most once per event
// id: a sink that succeeded is recorded and skipped on redelivery.
type Sink interface {
	// Name identifies the sink in logs, in the ledger of done sinks and in
	// the dead-letter file, for example "jira:CS" or "email:route2".
	// It is stable across restarts for the same configuration.
	Name() string
	// Deliver acts on the event. It returns nil on success; an error that
	// wraps ErrPermanent when retrying cannot help (the event is
	// dead-lettered and the sender told 422); any other error is transient
	// (the sender is told 503 and retries). Deliver must be idempotent per
	// event id where the destination allows it.
	Deliver(ctx context.Context, ev *Event) error
}

// ErrPermanent marks a sink failure that a retry cannot fix: a rejected
// request, a bad recipient, a template error.
var ErrPermanent = errors.New("receiver: permanent sink failure")

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{ErrPermanent, e.err} }

// RetryAfterError is a transient failure with the delay the destination
// asked for; the server passes it on to the sender as Retry-After.
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }
