package queue

import (
	"context"
	"fmt"
	"time"
)

// Key use is counted per hour: "the last 24 hours" is the current hour and
// the 23 before it.
const (
	keyUseBucket = time.Hour
	// KeyUseWindow is the span KeyUse.Recent counts.
	KeyUseWindow = 24 * time.Hour
	// KeyUseKept is how long an hour's count is kept: a key unused for
	// longer shows no last use.
	KeyUseKept = 35 * 24 * time.Hour
	// maxKeyUses bounds what KeyUses returns (webhooks × labels).
	maxKeyUses = 10_000
)

// KeyUse is what the database knows of one key of one webhook: when it
// last verified a request, and how many it verified recently.
type KeyUse struct {
	Webhook string `json:"webhook"`
	// Label is the key's label in the webhook's keyring.
	Label string `json:"label"`
	// Last is when the key last verified a request (within KeyUseKept).
	Last time.Time `json:"last"`
	// Recent counts the requests it verified in the last KeyUseWindow, by
	// whole hours.
	Recent int64 `json:"recent"`
}

// KeyUses returns every key that verified a request within KeyUseKept,
// ordered by webhook and label.
func (q *Queue) KeyUses(ctx context.Context) ([]KeyUse, error) {
	now := q.opts.Now()
	from := hourOf(now.Add(-KeyUseWindow)) + 1
	rows, err := q.db.read.QueryContext(ctx, q.rebind(`SELECT webhook, label, max(last_at),
	CAST(sum(CASE WHEN hour >= ? THEN uses ELSE 0 END) AS BIGINT)
FROM stairhook_key_use WHERE hour >= ? GROUP BY webhook, label ORDER BY webhook, label LIMIT ?`),
		from, hourOf(now.Add(-KeyUseKept)), maxKeyUses)
	if err != nil {
		return nil, fmt.Errorf("queue: key use: %w", err)
	}
	defer rows.Close()
	var out []KeyUse
	for rows.Next() {
		var u KeyUse
		var last int64
		if err := rows.Scan(&u.Webhook, &u.Label, &last, &u.Recent); err != nil {
			return nil, fmt.Errorf("queue: key use: %w", err)
		}
		u.Last = time.UnixMilli(last).UTC()
		out = append(out, u)
	}
	return out, rows.Err()
}

// hourOf numbers the hour t falls in.
func hourOf(t time.Time) int64 { return t.UnixMilli() / keyUseBucket.Milliseconds() }
