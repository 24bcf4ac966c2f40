package sink

import (
	"context"
	"errors"
	"time"

	"github.com/stairhook/stairhook/receiver/event"
)

// Sink delivers an event to one destination (a Jira project, a mailbox, the
// dry-run outbox, or one of your own given in receiver.ServerOptions.Sinks).
// It is the single interface a sink of one's own implements.
//
// The contract, on the queued path (the default):
//   - Deliver is one attempt of one job (an event and this sink). Its
//     context ends at receiver.DeliveryConfig.AttemptTimeout or at
//     shutdown; stop when it does. It is not tied to the sender's request,
//     which was answered 202 before.
//   - Return nil on success: the job is done and Deliver is not called
//     again for it. A process that dies before the job's record runs the
//     job again: delivery is at least once, so make Deliver idempotent per
//     event id (and webhook) where the destination allows it.
//   - Return [Permanent](err) when retrying cannot help: the job becomes a
//     dead letter at once, for `stairhook deadletter replay`.
//   - Return a [*RetryAfterError] when the destination asked for a delay:
//     the job waits exactly After (at most an hour), and the wait is not
//     counted as an attempt.
//   - Return any other error for a transient failure: the job is retried
//     with backoff (receiver.DeliveryConfig.FirstRetry, doubling, up to
//     MaxRetry) until it succeeds or DeliveryConfig.GiveUpAfter has
//     passed. A panic counts as a permanent failure.
//
// Error texts go to the log and the job's record (the dead letters, the
// console), never to the sender. A sink serves every route that names it,
// in every webhook, and Deliver may run for several events at once; there
// is one job per event and sink, however many routes of the webhook
// select the event (an event delivered to two webhooks is two jobs). In
// inline mode (receiver.ServerOptions.Inline) the same errors become the
// answer to the sender instead: 503 for a transient failure (with the
// RetryAfter delay), 422 and a line in the dead-letter file for a
// permanent one.
type Sink interface {
	// Name identifies the sink in logs, in responses, in its jobs (and,
	// in inline mode, in the ledger of done sinks and the dead-letter
	// file). Sinks built from a receiver.Config are named
	// <webhook>.<route>.<jira|email>, for example "staircase.route1.jira"
	// or "staircase.risk.email". A sink of receiver.ServerOptions.Sinks
	// chooses its own: 1 to 128 characters from a-z, 0-9, "_", "-" and
	// ".". Keep it stable across restarts: a queued job whose sink name is
	// gone becomes a dead letter.
	Name() string
	// Deliver acts on the event; see the contract above. It must not
	// change ev, which the other sinks of the delivery share.
	Deliver(ctx context.Context, ev *event.Event) error
}

// ErrPermanent marks a sink failure that a retry cannot fix: a rejected
// request, a bad recipient, a template error.
var ErrPermanent = errors.New("receiver: permanent sink failure")

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds. It
// returns nil for a nil err.
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

// Classed gives err a reason class: a short, fixed text such as
// "jira 400", "smtp 550" or "template" that the server may show the
// sender, because it repeats nothing the destination or the payload said.
// The error's text stays err's.
func Classed(class string, err error) error {
	return &classedError{class: class, err: err}
}

// classedError is an error with a reason class.
type classedError struct {
	class string
	err   error
}

func (e *classedError) Error() string { return e.err.Error() }
func (e *classedError) Unwrap() error { return e.err }

// ReasonClass is the reason class of a sink error, the one given by the
// outermost [Classed] in its chain, or "unclassified" when none gave one.
func ReasonClass(err error) string {
	var ce *classedError
	if errors.As(err, &ce) {
		return ce.class
	}
	return "unclassified"
}
