package queue_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/queue"
)

func TestSignedAtRoundTrip(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			q := open(t, e.loc(t), queue.Options{})
			ctx := context.Background()
			signed := time.Unix(1_790_000_000, 0)
			a := accepted("signed", "s")
			a.SignedAt = signed
			_, err := q.Accept(ctx, a)
			require.NoError(t, err)
			_, err = q.Accept(ctx, accepted("unsigned", "s")) // a legacy scheme signs no time
			require.NoError(t, err)

			d, err := q.Event(ctx, "w", "signed")
			require.NoError(t, err)
			require.NotNil(t, d.SignedAt)
			assert.True(t, signed.Equal(*d.SignedAt), "got %v", *d.SignedAt)
			assert.Equal(t, time.UTC, d.SignedAt.Location())
			d, err = q.Event(ctx, "w", "unsigned")
			require.NoError(t, err)
			assert.Nil(t, d.SignedAt, "no signed time is not the zero time")

			l, err := q.Events(ctx, queue.EventFilter{}, 0)
			require.NoError(t, err)
			got := map[string]*time.Time{}
			for _, ev := range l.Events {
				got[ev.EventID] = ev.SignedAt
			}
			require.NotNil(t, got["signed"])
			assert.True(t, signed.Equal(*got["signed"]))
			assert.Nil(t, got["unsigned"])
		})
	}
}

// oldEventsTable is stairhook_events as the versions before signed_at
// created it.
var oldEventsTable = map[string]string{
	"sqlite": `CREATE TABLE stairhook_events (
	webhook TEXT NOT NULL, event_id TEXT NOT NULL, type TEXT NOT NULL, account TEXT NOT NULL,
	received_at INTEGER NOT NULL, key_label TEXT NOT NULL, scheme TEXT NOT NULL, test INTEGER NOT NULL,
	sinks TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (webhook, event_id));
CREATE INDEX stairhook_events_received ON stairhook_events (received_at)`,
	"postgres": `CREATE TABLE stairhook_events (
	webhook TEXT NOT NULL, event_id TEXT NOT NULL, type TEXT NOT NULL, account TEXT NOT NULL,
	received_at BIGINT NOT NULL, key_label TEXT NOT NULL, scheme TEXT NOT NULL, test BOOLEAN NOT NULL,
	sinks TEXT NOT NULL, body BYTEA NOT NULL, PRIMARY KEY (webhook, event_id));
CREATE INDEX stairhook_events_received ON stairhook_events (received_at)`,
}

// TestMigrateAddsSignedAt opens, several instances at once, a database
// whose events table predates signed_at: each Open succeeds, the column
// is added once, the old event reads without a signed time and a new one
// keeps its own.
func TestMigrateAddsSignedAt(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			loc := e.loc(t)
			driver, dsn, ph := "sqlite", loc.SQLitePath, []any{"?", "?"}
			if loc.PostgresURL != "" {
				driver, dsn, ph = "pgx", loc.PostgresURL, []any{"$1", "$2"}
			}
			db, err := sql.Open(driver, dsn)
			require.NoError(t, err)
			_, err = db.Exec(oldEventsTable[e.name])
			require.NoError(t, err)
			_, err = db.Exec(fmt.Sprintf(`INSERT INTO stairhook_events (webhook, event_id, type, account, received_at, key_label, scheme, test, sinks, body)
VALUES ('w', 'old', 'churn_risk', 'acc', 1700000000000, 'k', 'v1', %s, 's', %s)`, ph...), false, []byte(`{"id":"old"}`))
			require.NoError(t, err)
			require.NoError(t, db.Close())

			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make([]error, 3)
			for i := range errs {
				wg.Go(func() {
					q, err := queue.Open(ctx, loc, queue.Options{Logger: slog.New(slog.DiscardHandler)})
					if err == nil {
						err = q.Close()
					}
					errs[i] = err
				})
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err, "an Open of the old database")
			}

			q := open(t, loc, queue.Options{}) // and again, with nothing left to do
			d, err := q.Event(ctx, "w", "old")
			require.NoError(t, err)
			assert.Nil(t, d.SignedAt, "accepted before the signed time was kept")
			assert.Equal(t, time.UnixMilli(1700000000000).UTC(), d.ReceivedAt)
			assert.JSONEq(t, `{"id":"old"}`, string(d.Body))

			a := accepted("new", "s")
			a.SignedAt = time.Unix(1_790_000_000, 0)
			_, err = q.Accept(ctx, a)
			require.NoError(t, err)
			d, err = q.Event(ctx, "w", "new")
			require.NoError(t, err)
			require.NotNil(t, d.SignedAt)
			assert.True(t, a.SignedAt.Equal(*d.SignedAt))
		})
	}
}
