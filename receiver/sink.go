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
	// Name identifies the sink in logs, in the ledger of done sinks, in
	// Jira idempotency labels and in the dead-letter file. Sinks built
	// from a Config are named <webhook>.<route>.<jira|email>, for example
	// "staircase.route1.jira" or "staircase.risk.email". It is stable
	// across restarts for the same configuration.
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
	// Err is the failure itself; its text goes to the log only.
	Err error
	// After is how long the destination asked to wait before a retry; the
	// server rounds it up to whole seconds and caps it at one hour.
	After time.Duration
}

// Error returns the text of Err.
func (e *RetryAfterError) Error() string { return e.Err.Error() }

// Unwrap returns Err, so errors.Is and errors.As see through the delay.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// reasonClasser is implemented by sink errors that know their reason class:
// a short, fixed text such as "jira 400", "smtp 550" or "template" that the
// server may show the sender, because it repeats nothing the destination or
// the payload said.
type reasonClasser interface{ reasonClass() string }

// classedError gives err a reason class.
type classedError struct {
	class string
	err   error
}

func (e *classedError) Error() string       { return e.err.Error() }
func (e *classedError) Unwrap() error       { return e.err }
func (e *classedError) reasonClass() string { return e.class }

// reasonClassOf is the reason class of a sink error, "unclassified" when no
// error in its chain has one.
func reasonClassOf(err error) string {
	var rc reasonClasser
	if errors.As(err, &rc) {
		return rc.reasonClass()
	}
	return "unclassified"
}
