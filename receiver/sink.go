package receiver

import (
	"context"
	"errors"
	"time"

	"github.com/stairhook/stairhook/receiver/event"
)

// Sink delivers an event to one destination (a Jira project, a mailbox, the
// dry-run outbox, or one of your own given in ServerOptions.Sinks). The
// server runs each matched sink at most once per event id: a sink that
// succeeded is recorded and skipped on redelivery.
//
// The contract for a sink of your own:
//   - Deliver gets a context whose deadline is shared by all the sinks of
//     the delivery ([ServerOptions.DeliveryTimeout]); it is not canceled
//     when the sender hangs up. Stop when it is done.
//   - Return nil on success: the server records it in its store under the
//     sink's Name and does not call Deliver again for this event id (for
//     [Config.Retention], within what the store keeps: see Memory store in
//     the package documentation). If the record cannot be written the
//     sender is told 503, and a retry after the reservation lapses
//     (DeliveryTimeout plus one minute) runs the sink again: delivery is
//     at least once, so make Deliver idempotent per event id where the
//     destination allows it.
//   - Return [Permanent](err) when retrying cannot help: the sender is
//     told 422, and the event is appended to the dead-letter file with
//     the sink's Name, for `stairhook deadletter replay`.
//   - Return a [*RetryAfterError] for a transient failure with a known
//     delay: the sender is told 503 with that Retry-After.
//   - Return any other error for a transient failure: 503 with
//     Retry-After [DefaultRetryAfter]. A panic counts as a permanent
//     failure.
//
// When the sinks of one delivery disagree, any transient failure makes the
// answer 503 (with the longest Retry-After asked) and nothing is
// dead-lettered. After any failure the sender retries and Deliver is
// called again for that event; the sinks that succeeded are not. Error
// texts go to the log and the dead-letter file only, never to the sender:
// the 422 names the sink and the reason class "unclassified" ("panic"
// after a panic), since the other classes, such as "jira 400", belong to
// the package's own sinks. A sink serves every route that names it, in
// every webhook, and Deliver may run for several events at once; it runs
// once per event id and webhook, however many routes of the webhook select
// the event (an event delivered to two webhooks is two deliveries, as the
// middleware's ids are kept per webhook too).
type Sink interface {
	// Name identifies the sink in logs, in responses, in the ledger of
	// done sinks (the key "sink/<webhook>/<event id>/<name>") and in the dead-letter
	// file. Sinks built from a Config are named
	// <webhook>.<route>.<jira|email>, for example "staircase.route1.jira"
	// or "staircase.risk.email". A sink of ServerOptions.Sinks chooses
	// its own: 1 to 128 characters from a-z, 0-9, "_", "-" and ".". Keep
	// it stable across restarts: under a new name a sink has no record,
	// and runs again for a redelivered or replayed event.
	Name() string
	// Deliver acts on the event; see the contract above. It must not
	// change ev, which the other sinks of the delivery share.
	Deliver(ctx context.Context, ev *event.Event) error
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
