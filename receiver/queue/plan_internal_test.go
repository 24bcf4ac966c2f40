package queue

import (
	"context"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openPlanned opens a SQLite queue for a test of its query plans.
func openPlanned(t *testing.T) *Queue {
	t.Helper()
	q, err := Open(context.Background(), Location{SQLitePath: filepath.Join(t.TempDir(), "stairhook.db")},
		Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { q.Close() })
	return q
}

// queryPlan is SQLite's plan of query, one line per step.
func queryPlan(t *testing.T, q *Queue, query string, args ...any) []string {
	t.Helper()
	rows, err := q.db.read.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	return plan
}

// SQLite plans without statistics: each statement of the events page must
// read through the indexes that answer it, never every job or every
// event. (Without naming them, the planner read every job of River's
// index of states for each event, and sorted the whole events table.)
func TestEventsQueriesUseTheirIndexes(t *testing.T) {
	q := openPlanned(t)
	ctx := context.Background()
	cur := cursor{time.Now().UnixMilli(), "w", "e"}.encode()
	filters := map[string]EventFilter{
		"all":       {},
		"webhook":   {Webhook: "w", Type: "t", Account: "a", Since: time.Now().Add(-time.Hour)},
		"next page": {Cursor: cur},
		"by id":     {EventID: "evt_1"},
		"dead":      {State: StateDead},
		"retrying":  {State: StateRetrying, Webhook: "w"},
		"delivered": {State: StateDelivered},
	}
	fullScan := regexp.MustCompile(`\bSCAN (j|river_job)\b|SCAN e\b(?: USING (?:COVERING )?INDEX sqlite_autoindex)?$`)
	for _, many := range []bool{false, true} {
		if many {
			// Past fewJobs, a state's events are read newest first.
			old := fewJobs
			fewJobs = -1
			defer func() { fewJobs = old }()
		}
		for name, f := range filters {
			query, args, err := q.eventsQuery(ctx, f, 51)
			require.NoError(t, err)
			plan := queryPlan(t, q, query, args...)
			all := strings.Join(plan, "\n")
			for _, line := range plan {
				assert.NotRegexp(t, fullScan, line, "%s (many %v): %s", name, many, all)
				if strings.Contains(line, " j ") || strings.HasSuffix(line, " j") {
					assert.Regexp(t, `SEARCH j (EXISTS )?USING INDEX stairhook_job_event`, line, "%s: %s", name, all)
				}
			}
			byID := f.EventID != "" || (!many && f.State != "" && f.State != StateDelivered)
			if byID {
				assert.Contains(t, all, "SEARCH e USING INDEX stairhook_events_id", name)
			} else {
				assert.Regexp(t, `(SCAN|SEARCH) e USING INDEX stairhook_events_received`, all, name)
				assert.NotContains(t, all, "USE TEMP B-TREE FOR ORDER BY", "%s: a page must not sort every event", name)
			}
		}
	}
}

// The clean-up reads the old events through their received times and each
// one's jobs through stairhook_job_event. (Without naming the index, SQLite
// read every job of River's index of kinds for each old event.)
func TestDeleteOldUsesItsIndexes(t *testing.T) {
	q := openPlanned(t)
	plan := queryPlan(t, q, q.deleteOld(), time.Now().UnixMilli(), cleanupBatch)
	all := strings.Join(plan, "\n")
	assert.Regexp(t, `SEARCH e USING INDEX stairhook_events_received \(received_at<\?\)`, all)
	assert.Regexp(t, `SEARCH j USING INDEX stairhook_job_event \(<expr>=\?\)`, all)
	for _, line := range plan {
		assert.NotRegexp(t, `\bSCAN\b|river_job_kind|river_job_state`, line, all)
	}
}
