package queue

import (
	"context"
	"log/slog"
	"time"
)

// Event clean-up: River deletes finished jobs itself (a day after they
// succeed); the events they were for are ours to delete.
const (
	// cleanupEvery is how often a working instance deletes old events.
	cleanupEvery = 10 * time.Minute
	// cleanupBatch bounds one delete statement, so clean-up never holds
	// the database (SQLite's one writer) for long.
	cleanupBatch = 1000
)

// deleteOld is the statement that deletes up to cleanupBatch events
// received before a cutoff whose every job has succeeded (or was cleaned
// up by River): an event with a job still queued, retrying or dead keeps
// its body for the job and for a replay. An event's jobs are read through
// stairhook_job_event, as the events page reads them; every job of the
// database is a delivery job, so no condition on the kind (which SQLite
// would serve with River's index of kinds: every job, for each event).
func (q *Queue) deleteOld() string {
	return q.rebind(`DELETE FROM stairhook_events WHERE (webhook, event_id) IN (
	SELECT e.webhook, e.event_id FROM ` + q.from("stairhook_events", "e", "stairhook_events_received") + `
	WHERE e.received_at < ? AND NOT EXISTS (
		SELECT 1 FROM ` + q.from("river_job", "j", "stairhook_job_event") + `
		WHERE ` + q.jobArg("j.", "event_id") + ` = ` + q.bare("e.event_id") + `
		AND ` + q.jobArg("j.", "webhook") + ` = e.webhook AND j.state <> 'completed')
	LIMIT ?)`)
}

// DeleteOldEvents deletes the events received more than Retention ago
// whose jobs are all done, in batches, and returns how many it deleted.
// The ids of deleted events are forgotten: keep Retention well above the
// webhooks' tolerance (the window in which a signed request can be
// replayed) and above GiveUpAfter.
func (q *Queue) DeleteOldEvents(ctx context.Context) (int64, error) {
	cutoff := q.opts.Now().Add(-q.opts.Retention).UnixMilli()
	var total int64
	for {
		res, err := q.db.sql.ExecContext(ctx, q.deleteOld(), cutoff, cleanupBatch)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		total += n
		if err != nil || n < cleanupBatch {
			return total, err
		}
	}
}

// cleanupLoop runs DeleteOldEvents every cleanupEvery until ctx ends.
func (q *Queue) cleanupLoop(ctx context.Context) {
	t := time.NewTicker(cleanupEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := q.DeleteOldEvents(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			q.log.Warn("deleting old events failed; trying again later", "error", err.Error())
		case n > 0:
			q.log.LogAttrs(ctx, slog.LevelInfo, "old events deleted", slog.Int64("events", n), slog.Duration("retention", q.opts.Retention))
		}
	}
}
