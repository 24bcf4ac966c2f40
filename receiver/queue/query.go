package queue

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river/rivertype"
)

// EventsPage is the most events one call of Events returns.
const EventsPage = 100

// fewJobs is the most jobs in a state for which Events looks their events
// up by id rather than reading the events newest first. (A variable for
// the tests of both plans.)
var fewJobs = 5000

// maxIDLength bounds an event id given to a query: longer ids are never
// accepted (the verify middleware caps them far lower).
const maxIDLength = 256

// Errors of the read side.
var (
	// ErrNoEvent means no event of that webhook and id is in the database.
	ErrNoEvent = errors.New("queue: no such event")
	// ErrBadCursor means a page cursor was not one Events returned.
	ErrBadCursor = errors.New("queue: bad page cursor")
	// ErrBadState means a sink state is not one of SinkStates.
	ErrBadState = errors.New("queue: unknown sink state")
)

// SinkState is where one sink of an event is, as the console and the
// command line name it. Each River state maps to one SinkState.
type SinkState string

// The sink states.
const (
	// StateQueued: waiting for its first attempt (River's available and
	// pending).
	StateQueued SinkState = "queued"
	// StateRunning: an attempt is running.
	StateRunning SinkState = "running"
	// StateRetrying: an attempt failed; the next waits for its backoff
	// (River's retryable).
	StateRetrying SinkState = "retrying"
	// StateWaiting: waiting as long as the destination asked (Retry-After;
	// River's scheduled, after a snooze).
	StateWaiting SinkState = "waiting"
	// StateDelivered: the sink succeeded (River's completed, or the job was
	// already cleaned up after its success).
	StateDelivered SinkState = "delivered"
	// StateDead: a dead letter, until replayed (River's cancelled and
	// discarded).
	StateDead SinkState = "dead"
)

// SinkStates lists the sink states in the order of a job's life.
func SinkStates() []SinkState {
	return []SinkState{StateQueued, StateRunning, StateRetrying, StateWaiting, StateDelivered, StateDead}
}

// ParseSinkState reads a sink state by name; "" is no state.
func ParseSinkState(s string) (SinkState, error) {
	if s == "" || slices.Contains(SinkStates(), SinkState(s)) {
		return SinkState(s), nil
	}
	return "", ErrBadState
}

// riverStates are the River states of a sink state.
func riverStates(s SinkState) []rivertype.JobState {
	switch s {
	case StateQueued:
		return []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending}
	case StateRunning:
		return []rivertype.JobState{rivertype.JobStateRunning}
	case StateRetrying:
		return []rivertype.JobState{rivertype.JobStateRetryable}
	case StateWaiting:
		return []rivertype.JobState{rivertype.JobStateScheduled}
	case StateDelivered:
		return []rivertype.JobState{rivertype.JobStateCompleted}
	case StateDead:
		return deadStates
	}
	return nil
}

// stateOf is the sink state of a River state.
func stateOf(s rivertype.JobState) SinkState {
	for _, st := range SinkStates() {
		if slices.Contains(riverStates(st), s) {
			return st
		}
	}
	return StateQueued
}

// pendingStates are the River states of a job that is still to be
// delivered: the queue's depth.
var pendingStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled,
}

// EventFilter selects events; its zero value selects all.
type EventFilter struct {
	// Webhook, Type, Account (the account id) and EventID, when set, must
	// match exactly.
	Webhook, Type, Account, EventID string
	// State, when set, keeps the events with a sink in that state; for
	// StateDelivered, the events with nothing left to deliver: every sink
	// delivered, or none.
	State SinkState
	// Since and Until, when set, bound the received time: Since ≤ t < Until.
	Since, Until time.Time
	// Cursor continues a listing after the page that returned it.
	Cursor string
}

// EventSummary is one accepted event as a list shows it.
type EventSummary struct {
	Webhook    string    `json:"webhook"`
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	Account    string    `json:"account"`
	ReceivedAt time.Time `json:"received_at"`
	// SignedAt is the time the sender signed, as the key verified it
	// (Accepted.SignedAt); nil when the scheme signs none, and for the
	// events accepted before the signed time was kept.
	SignedAt *time.Time `json:"signed_at,omitempty"`
	// KeyLabel and Scheme say which key verified the request, and how.
	KeyLabel string `json:"key_label"`
	Scheme   string `json:"scheme"`
	// Test marks the sender's test notifications.
	Test bool `json:"test"`
	// Sinks are the sinks the event was queued for, in the order of its
	// routes, each with its state.
	Sinks []SinkStatus `json:"sinks"`
}

// SinkStatus is the state of one sink of an event.
type SinkStatus struct {
	Sink  string    `json:"sink"`
	State SinkState `json:"state"`
	// Job is the job's number; 0 when the job was cleaned up after its
	// success.
	Job int64 `json:"job,omitempty"`
	// Attempts counts the attempts so far.
	Attempts int `json:"attempts"`
}

// EventList is one page of events.
type EventList struct {
	Events []EventSummary `json:"events"`
	// Next is the cursor of the next page (EventFilter.Cursor); "" on the
	// last page.
	Next string `json:"next,omitempty"`
}

// cursor is the position after the last event of a page.
type cursor struct {
	received         int64
	webhook, eventID string
}

func (c cursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.received, 10) + "\x00" + c.webhook + "\x00" + c.eventID))
}

func decodeCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 3*maxIDLength {
		return cursor{}, ErrBadCursor
	}
	parts := strings.Split(string(b), "\x00")
	if len(parts) != 3 {
		return cursor{}, ErrBadCursor
	}
	ms, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return cursor{}, ErrBadCursor
	}
	return cursor{ms, parts[1], parts[2]}, nil
}

// Events returns up to limit events (at most EventsPage) matching f, newest
// first, each with the state of its sinks.
func (q *Queue) Events(ctx context.Context, f EventFilter, limit int) (*EventList, error) {
	limit = clampPage(limit, EventsPage)
	query, args, err := q.eventsQuery(ctx, f, limit+1)
	if err != nil {
		return nil, err
	}
	rows, err := q.db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("queue: events: %w", err)
	}
	list := &EventList{}
	var sinks [][]string
	for rows.Next() {
		var e EventSummary
		var ms int64
		var signed sql.NullInt64
		var names string
		if err := rows.Scan(&e.Webhook, &e.EventID, &e.Type, &e.Account, &ms, &signed, &e.KeyLabel, &e.Scheme, &e.Test, &names); err != nil {
			rows.Close()
			return nil, fmt.Errorf("queue: events: %w", err)
		}
		e.setTimes(ms, signed)
		list.Events = append(list.Events, e)
		sinks = append(sinks, strings.Fields(names))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: events: %w", err)
	}
	if len(list.Events) > limit {
		list.Events, sinks = list.Events[:limit], sinks[:limit]
		last := list.Events[limit-1]
		list.Next = cursor{last.ReceivedAt.UnixMilli(), last.Webhook, last.EventID}.encode()
	}
	if err := q.sinkStates(ctx, list.Events, sinks); err != nil {
		return nil, err
	}
	return list, nil
}

// eventsQuery is the statement of Events: f's conditions, newest first, at
// most limit rows. On SQLite it names its indexes (see from).
func (q *Queue) eventsQuery(ctx context.Context, f EventFilter, limit int) (string, []any, error) {
	if _, err := ParseSinkState(string(f.State)); err != nil {
		return "", nil, err
	}
	where, args := []string{"1=1"}, []any{}
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if f.Webhook != "" {
		add("e.webhook = ?", f.Webhook)
	}
	if f.Type != "" {
		add("e.type = ?", f.Type)
	}
	if f.Account != "" {
		add("e.account = ?", f.Account)
	}
	if f.EventID != "" {
		add("e.event_id = ?", f.EventID)
	}
	if !f.Since.IsZero() {
		add("e.received_at >= ?", f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		add("e.received_at < ?", f.Until.UnixMilli())
	}
	if f.Cursor != "" {
		c, err := decodeCursor(f.Cursor)
		if err != nil {
			return "", nil, err
		}
		add("(e.received_at, e.webhook, e.event_id) < (?, ?, ?)", c.received, c.webhook, c.eventID)
	}
	// Newest first through the index of received times, which also serves
	// the page's LIMIT; a search by id, or by a state few jobs are in,
	// through the index of ids.
	index := "stairhook_events_received"
	if f.EventID != "" {
		index = "stairhook_events_id"
	}
	if f.State != "" {
		// Every River job of the database is a delivery job: no condition
		// on the kind, which SQLite would serve with River's index of
		// kinds, reading every job.
		jobs := `SELECT 1 FROM ` + q.from("river_job", "j", "stairhook_job_event") + ` WHERE ` +
			q.jobArg("j.", "event_id") + ` = ` + q.bare("e.event_id") + `
	AND ` + q.jobArg("j.", "webhook") + ` = e.webhook AND j.state `
		if f.State == StateDelivered {
			add("NOT EXISTS ("+jobs+"<> ?)", string(rivertype.JobStateCompleted))
		} else {
			in, states := statesIn(riverStates(f.State))
			add("EXISTS ("+jobs+"IN ("+in+"))", states...)
			n, err := q.count(ctx, "SELECT count(*) FROM (SELECT 1 FROM river_job WHERE state IN ("+in+") LIMIT ?) few",
				append(states, fewJobs+1)...)
			if err != nil {
				return "", nil, err
			}
			if n <= int64(fewJobs) {
				// Few jobs in that state (dead letters, retries): find their
				// events by id rather than read every event for them.
				add("e.event_id IN (SELECT "+q.jobArg("", "event_id")+" FROM river_job WHERE state IN ("+in+"))", states...)
				index = "stairhook_events_id"
			}
		}
	}
	return q.rebind(`SELECT e.webhook, e.event_id, e.type, e.account, e.received_at, e.signed_at,
	e.key_label, e.scheme, e.test, e.sinks
FROM ` + q.from("stairhook_events", "e", index) + ` WHERE ` + strings.Join(where, " AND ") + `
ORDER BY e.received_at DESC, e.webhook DESC, e.event_id DESC LIMIT ?`), append(args, limit), nil
}

// jobRef is a delivery job as the lists see it.
type jobRef struct {
	id      int64
	state   rivertype.JobState
	attempt int
}

// sinkStates fills the Sinks of events (whose sink names are names) from
// their jobs, found in one query by the events' ids.
func (q *Queue) sinkStates(ctx context.Context, events []EventSummary, names [][]string) error {
	if len(events) == 0 {
		return nil
	}
	ids := make([]any, 0, len(events))
	seen := map[string]bool{}
	for _, e := range events {
		if !seen[e.EventID] {
			seen[e.EventID] = true
			ids = append(ids, e.EventID)
		}
	}
	in := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
	rows, err := q.db.read.QueryContext(ctx, q.rebind(`SELECT j.id, j.kind, j.state, j.attempt, `+q.jobArg("j.", "webhook")+`, `+
		q.jobArg("j.", "event_id")+`, `+q.jobArg("j.", "sink")+`
FROM `+q.from("river_job", "j", "stairhook_job_event")+` WHERE `+q.jobArg("j.", "event_id")+` IN (`+in+`)`), ids...)
	if err != nil {
		return fmt.Errorf("queue: jobs of events: %w", err)
	}
	defer rows.Close()
	type sinkKey struct{ webhook, id, sink string }
	jobs := map[sinkKey]jobRef{}
	for rows.Next() {
		var j jobRef
		var kind, state string
		var k sinkKey
		if err := rows.Scan(&j.id, &kind, &state, &j.attempt, &k.webhook, &k.id, &k.sink); err != nil {
			return fmt.Errorf("queue: jobs of events: %w", err)
		}
		if kind != (DeliveryArgs{}).Kind() {
			continue
		}
		j.state = rivertype.JobState(state)
		if old, ok := jobs[k]; !ok || j.id > old.id {
			jobs[k] = j
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("queue: jobs of events: %w", err)
	}
	for i := range events {
		e := &events[i]
		e.Sinks = make([]SinkStatus, 0, len(names[i]))
		for _, s := range names[i] {
			st := SinkStatus{Sink: s, State: StateDelivered}
			if j, ok := jobs[sinkKey{e.Webhook, e.EventID, s}]; ok {
				st = SinkStatus{Sink: s, State: stateOf(j.state), Job: j.id, Attempts: j.attempt}
			}
			e.Sinks = append(e.Sinks, st)
		}
	}
	return nil
}

// FindEvent returns the webhooks that accepted an event of this id (ids are
// per webhook: usually one, or none).
func (q *Queue) FindEvent(ctx context.Context, id string) ([]string, error) {
	if id == "" || len(id) > maxIDLength {
		return nil, nil
	}
	rows, err := q.db.read.QueryContext(ctx, q.rebind(
		"SELECT e.webhook FROM "+q.from("stairhook_events", "e", "stairhook_events_id")+" WHERE e.event_id = ? ORDER BY e.webhook LIMIT 100"), id)
	if err != nil {
		return nil, fmt.Errorf("queue: find event: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			return nil, fmt.Errorf("queue: find event: %w", err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// summary reads one event's row, without its sinks' states.
func (q *Queue) summary(ctx context.Context, webhook, id string) (*EventSummary, []string, []byte, error) {
	var e EventSummary
	var ms int64
	var signed sql.NullInt64
	var names string
	var body []byte
	err := q.db.read.QueryRowContext(ctx, q.rebind(`SELECT webhook, event_id, type, account, received_at, signed_at, key_label, scheme, test, sinks, body
FROM stairhook_events WHERE webhook = ? AND event_id = ?`), webhook, id).
		Scan(&e.Webhook, &e.EventID, &e.Type, &e.Account, &ms, &signed, &e.KeyLabel, &e.Scheme, &e.Test, &names, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil, ErrNoEvent
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("queue: event: %w", err)
	}
	e.setTimes(ms, signed)
	return &e, strings.Fields(names), body, nil
}

// setTimes fills the received and signed times from their columns (Unix
// ms; signed_at NULL when there is none).
func (e *EventSummary) setTimes(received int64, signed sql.NullInt64) {
	e.ReceivedAt = time.UnixMilli(received).UTC()
	if signed.Valid {
		t := time.UnixMilli(signed.Int64).UTC()
		e.SignedAt = &t
	}
}

// sqliteTime is how River's SQLite driver writes times, which compare as
// text.
const sqliteTime = "2006-01-02 15:04:05.000"

// jobTime is t as a parameter compared with a time column of river_job.
func (q *Queue) jobTime(t time.Time) any {
	if q.db.pool == nil {
		return t.UTC().Round(time.Millisecond).Format(sqliteTime)
	}
	return t
}

// statesIn is "?, ?, …" for states, and the states as arguments.
func statesIn(states []rivertype.JobState) (string, []any) {
	args := make([]any, len(states))
	for i, s := range states {
		args[i] = string(s)
	}
	return strings.TrimSuffix(strings.Repeat("?, ", len(states)), ", "), args
}

// jobArg is the SQL expression reading the string argument name of a
// delivery job of table alias a ("j."), written exactly as the
// stairhook_job_event index is for event_id, so the index serves it.
func (q *Queue) jobArg(a, name string) string {
	if q.db.pool == nil {
		return "json_extract(" + a + "args, '$." + name + "')"
	}
	return "(" + a + "args->>'" + name + "')"
}

// from is table aliased a, read through index on SQLite: without
// statistics (nothing runs ANALYZE) its planner picks River's index of
// states or kinds, which hold every job, or sorts the whole events table,
// instead of the index that answers the query. Postgres plans by its own
// statistics.
func (q *Queue) from(table, a, index string) string {
	if q.db.pool == nil && index != "" {
		return table + " " + a + " INDEXED BY " + index
	}
	return table + " " + a
}

// bare is the column col compared with an index expression: on SQLite a
// TEXT column's affinity would apply to the comparison, which the index
// of the expression (without affinity) then cannot serve; unary + drops
// it.
func (q *Queue) bare(col string) string {
	if q.db.pool == nil {
		return "+" + col
	}
	return col
}
