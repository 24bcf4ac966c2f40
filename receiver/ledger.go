package receiver

import (
	"context"
	"time"

	"github.com/stairhook/stairhook/verify"
)

// storeTimeout bounds each ledger call, so a store that hangs turns into a
// 503 rather than a stuck request. The calls are detached from the
// delivery's deadline: a sink that used the whole budget and succeeded must
// still be recorded.
const storeTimeout = 5 * time.Second

// ledger records, per event id and sink, that the sink succeeded: in the
// store of the middleware's ids when that is Redis or given in
// ServerOptions.Store, else in a MemoryStore of its own that forgets the
// oldest records when full (see NewServer). A redelivery, a retry after a
// partial failure or a dead-letter replay then runs only the sinks that
// have not succeeded: Jira search lags behind creates, and mail has no
// dedupe at all.
type ledger struct {
	store verify.Store
	// retention is how long a done sink stays recorded.
	retention time.Duration
	// hold is how long a reservation lives if the process dies while the
	// sink runs: longer than any delivery.
	hold time.Duration
}

// ledgerKey is where the ledger records that sink succeeded for the event
// id as delivered to webhook. The webhook is part of it, as it is of the
// middleware's id keys, so a sink shared by several webhooks keeps one
// record per webhook: a sender of one webhook cannot mark an event done
// for another by sending its id first.
func ledgerKey(webhook, eventID, sink string) string {
	return "sink/" + webhook + "/" + eventID + "/" + sink
}

// reserve claims the sink for the event. StateDone means the sink succeeded
// before; StateInFlight that another delivery of the event is running it.
func (l *ledger) reserve(ctx context.Context, webhook, eventID, sink string) (verify.Reservation, verify.State, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	return l.store.Reserve(ctx, ledgerKey(webhook, eventID, sink), l.hold)
}

// done records that the reserved sink succeeded.
func (l *ledger) done(ctx context.Context, r verify.Reservation) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	return l.store.Done(ctx, r, l.retention)
}

// release forgets the reservation of a sink that failed, so a retry runs it.
func (l *ledger) release(ctx context.Context, r verify.Reservation) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	return l.store.Release(ctx, r)
}

// idStore gives each webhook's middleware its own key space in the shared
// store ("id/<webhook>/<event id>"), apart from the ledger's "sink/…" keys:
// two webhooks receiving the same event id do not see each other's, and no
// signed id can name a ledger key.
type idStore struct {
	verify.Store
	prefix string
}

func (s idStore) Reserve(ctx context.Context, key string, ttl time.Duration) (verify.Reservation, verify.State, error) {
	return s.Store.Reserve(ctx, s.prefix+key, ttl)
}
