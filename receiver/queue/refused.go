package queue

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// MaxRefused is how many refused requests the database keeps: the newest,
// older ones are deleted as new ones are recorded.
const MaxRefused = 10_000

// RefusedPage is the most refused requests one call of Refused returns.
const RefusedPage = 200

// Bounds of the text fields of a Refusal: longer values are clipped when
// recorded. A refused request is unauthenticated input.
const (
	maxRemote  = 64
	maxWebhook = 64
	maxReason  = 64
	maxHint    = 256
)

// signatureHeaders are the headers whose presence a Refusal records, in
// their canonical form: the signature schemes' headers. Only these names
// are ever stored, never a value and never a name the request chose.
var signatureHeaders = [...]string{
	"X-Staircase-Id", "X-Staircase-Timestamp", "X-Staircase-Signature",
	"Webhook-Id", "Webhook-Timestamp", "Webhook-Signature",
}

// Refusal is one refused webhook request, as the console's refused
// requests page shows it. It holds no signature value, MAC or secret: the
// headers are names only, and Hint is the verify error's text, which
// carries none.
type Refusal struct {
	// ID numbers the refusals in the order they were recorded; set when
	// read back.
	ID int64 `json:"id"`
	// Time is when the request was refused.
	Time time.Time `json:"time"`
	// Remote is the client's address, without its port.
	Remote string `json:"remote"`
	// Webhook is the webhook the request was for.
	Webhook string `json:"webhook"`
	// Status is the HTTP status of the answer.
	Status int `json:"status"`
	// Reason is the answer's error code, such as timestamp_too_new.
	Reason string `json:"reason"`
	// Hint says more, safely: "timestamp 312 s in the future".
	Hint string `json:"hint"`
	// Headers are the names of the signature headers present (see
	// SignatureHeaders).
	Headers []string `json:"headers"`
}

// NewRefusal describes a refused request: its remote address (without the
// port), the names of the signature headers it carried (never their
// values), the webhook, the status and reason code of the answer, and
// hint, the error's safe text. The time is set when it is recorded.
func NewRefusal(r *http.Request, webhook string, status int, reason, hint string) Refusal {
	remote := r.RemoteAddr
	if host, _, err := net.SplitHostPort(remote); err == nil {
		remote = host
	}
	return Refusal{Remote: remote, Webhook: webhook, Status: status, Reason: reason, Hint: hint,
		Headers: SignatureHeaders(r.Header)}
}

// SignatureHeaders returns the names of the signature scheme headers
// present in h, canonical and in a fixed order; never a value.
func SignatureHeaders(h http.Header) []string {
	var names []string
	for _, name := range signatureHeaders {
		if len(h.Values(name)) > 0 {
			names = append(names, name)
		}
	}
	return names
}

// onlySignatureHeaders keeps the names of names that are signature
// headers: a Refusal built by hand cannot store another name.
func onlySignatureHeaders(names []string) string {
	var b strings.Builder
	for _, known := range signatureHeaders {
		for _, n := range names {
			if http.CanonicalHeaderKey(n) == known {
				if b.Len() > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(known)
				break
			}
		}
	}
	return b.String()
}

// RefusedFilter selects refused requests; its zero value selects all.
type RefusedFilter struct {
	// Webhook and Reason, when set, must match exactly.
	Webhook, Reason string
	// Before, when above zero, lists refusals older than the one with this
	// ID: the next page.
	Before int64
}

// Refused returns up to limit refused requests (at most RefusedPage),
// newest first.
func (q *Queue) Refused(ctx context.Context, f RefusedFilter, limit int) ([]Refusal, error) {
	limit = clampPage(limit, RefusedPage)
	where, args := []string{"1=1"}, []any{}
	if f.Webhook != "" {
		where, args = append(where, "webhook = ?"), append(args, f.Webhook)
	}
	if f.Reason != "" {
		where, args = append(where, "reason = ?"), append(args, f.Reason)
	}
	if f.Before > 0 {
		where, args = append(where, "id < ?"), append(args, f.Before)
	}
	rows, err := q.db.read.QueryContext(ctx, q.rebind(`SELECT id, at, remote, webhook, status, reason, hint, headers
FROM stairhook_refused WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("queue: refused requests: %w", err)
	}
	defer rows.Close()
	var out []Refusal
	for rows.Next() {
		var r Refusal
		var at int64
		var headers string
		if err := rows.Scan(&r.ID, &at, &r.Remote, &r.Webhook, &r.Status, &r.Reason, &r.Hint, &headers); err != nil {
			return nil, fmt.Errorf("queue: refused requests: %w", err)
		}
		r.Time = time.UnixMilli(at).UTC()
		r.Headers = strings.Fields(headers)
		out = append(out, r)
	}
	return out, rows.Err()
}

// RefusedCount is how many requests of one webhook were refused for one
// reason.
type RefusedCount struct {
	Webhook string `json:"webhook"`
	Reason  string `json:"reason"`
	Count   int64  `json:"count"`
}

// RefusedSince counts the refused requests recorded since t, by webhook and
// reason (of the last MaxRefused).
func (q *Queue) RefusedSince(ctx context.Context, t time.Time) ([]RefusedCount, error) {
	rows, err := q.db.read.QueryContext(ctx, q.rebind(`SELECT webhook, reason, count(*) FROM stairhook_refused
WHERE at >= ? GROUP BY webhook, reason ORDER BY webhook, reason`), t.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("queue: refused counts: %w", err)
	}
	defer rows.Close()
	var out []RefusedCount
	for rows.Next() {
		var c RefusedCount
		if err := rows.Scan(&c.Webhook, &c.Reason, &c.Count); err != nil {
			return nil, fmt.Errorf("queue: refused counts: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// clampPage bounds a page size to 1..most; zero or less means most.
func clampPage(n, most int) int {
	if n <= 0 || n > most {
		return most
	}
	return n
}
