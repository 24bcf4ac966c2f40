package queue

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// maxJobsPerEvent bounds the jobs Event reads of one event: more sinks than
// any configuration has.
const maxJobsPerEvent = 1000

// DeadPage is the most dead letters one call of Dead returns.
const DeadPage = 200

// maxErrorText bounds an attempt's error text as the read side returns it.
const maxErrorText = 2048

// Metadata keys of our jobs, beside jobMeta's: an attempt's timing, and
// what a sink noted of its delivery (see NoteAttempt, NoteReceipt).
const (
	metaAttempt = "stairhook_attempt_"
	metaReceipt = "stairhook_receipt_"
)

// Receipt bounds: what a sink may note of a delivery.
const (
	maxReceiptValue = 512
	maxReceiptKeys  = 8
)

// receiptKey is the form of a receipt's key.
var receiptKey = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// ErrNotWaiting means RetryNow was given a job that is not waiting for its
// next attempt.
var ErrNotWaiting = errors.New("queue: the job is not waiting for a retry")

// ErrNotInWorker means NoteAttempt or NoteReceipt was called outside an
// attempt's context.
var ErrNotInWorker = errors.New("queue: not in a job's attempt")

// ErrBadReceipt means a receipt's key is not 1 to 32 of a-z, 0-9 and _,
// starting with a letter.
var ErrBadReceipt = errors.New("queue: a receipt key is 1 to 32 of a-z, 0-9 and _")

// EventDetail is one event with everything the database knows of its
// delivery.
type EventDetail struct {
	EventSummary
	// Body is the event exactly as it was signed.
	Body json.RawMessage `json:"body"`
	// Jobs are its sinks' jobs, in the order of Sinks; a sink whose job was
	// cleaned up after its success has none.
	Jobs []JobDetail `json:"jobs"`
}

// JobDetail is one sink's job of an event, with its attempts.
type JobDetail struct {
	ID    int64     `json:"job"`
	Sink  string    `json:"sink"`
	State SinkState `json:"state"`
	// Attempts counts the attempts so far.
	Attempts int `json:"attempts"`
	// Queued is when the job was queued (or replayed); Next, for a job
	// still to run, when its next attempt may start; Finished, for a
	// delivered or dead job, when it ended.
	Queued   time.Time  `json:"queued"`
	Next     *time.Time `json:"next,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
	// Tries are the attempts, oldest first.
	Tries []Attempt `json:"tries"`
	// Receipt is what the sink noted of its delivery (NoteReceipt): a Jira
	// issue key, an email's Message-ID.
	Receipt map[string]string `json:"receipt,omitempty"`
	// ReplayOf is the dead job this one replaced, if it is a replay.
	ReplayOf int64 `json:"replay_of,omitempty"`
}

// Attempt is one attempt of a job.
type Attempt struct {
	// Number counts the job's attempts from 1.
	Number int `json:"number"`
	// Began is when the attempt started, or, when that was not recorded,
	// when it ended.
	Began time.Time `json:"began"`
	// Took is how long it ran; zero when not recorded.
	Took time.Duration `json:"took_ns,omitempty"`
	// Error is the attempt's error, clipped; "" for the attempt that
	// succeeded.
	Error string `json:"error,omitempty"`
}

// attemptNote is what NoteAttempt keeps of an attempt.
type attemptNote struct {
	Began time.Time `json:"began"`
	MS    int64     `json:"ms"`
}

// NoteAttempt records, from inside an attempt (ctx is the attempt's,
// as a WorkFunc gets it), when the attempt began and how long it took,
// for the event detail's attempts. It is kept with the job when the
// attempt ends, whatever its outcome.
func NoteAttempt(ctx context.Context, attempt int, began time.Time, took time.Duration) error {
	err := river.MetadataSet(ctx, metaAttempt+strconv.Itoa(attempt), attemptNote{Began: began.UTC(), MS: took.Milliseconds()})
	if err != nil {
		return ErrNotInWorker
	}
	return nil
}

// NoteReceipt records, from inside an attempt, what the sink learnt of its
// delivery (key "jira_issue" with the issue key, "jira_url" with its
// address, "message_id" with an email's Message-ID), for the event detail.
// The value is clipped to 512 bytes; a job keeps at most 8 keys.
func NoteReceipt(ctx context.Context, key, value string) error {
	if !receiptKey.MatchString(key) {
		return ErrBadReceipt
	}
	if err := river.MetadataSet(ctx, metaReceipt+key, clip(value, maxReceiptValue)); err != nil {
		return ErrNotInWorker
	}
	return nil
}

// Event returns the event of webhook and id with its jobs and their
// attempts, or ErrNoEvent.
func (q *Queue) Event(ctx context.Context, webhook, id string) (*EventDetail, error) {
	if len(id) > maxIDLength || len(webhook) > maxIDLength {
		return nil, ErrNoEvent
	}
	sum, names, body, err := q.summary(ctx, webhook, id)
	if err != nil {
		return nil, err
	}
	d := &EventDetail{EventSummary: *sum, Body: body}
	// The job numbers through stairhook_job_event, then the jobs by number,
	// which River reads and decodes.
	rows, err := q.db.read.QueryContext(ctx, q.rebind(`SELECT j.id FROM `+q.from("river_job", "j", "stairhook_job_event")+`
WHERE `+q.jobArg("j.", "event_id")+` = ? AND `+q.jobArg("j.", "webhook")+` = ? ORDER BY j.id LIMIT ?`), id, webhook, maxJobsPerEvent)
	if err != nil {
		return nil, fmt.Errorf("queue: jobs of event: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("queue: jobs of event: %w", err)
		}
		ids = append(ids, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("queue: jobs of event: %w", err)
	}
	var jobs []*rivertype.JobRow
	if len(ids) > 0 {
		p := river.NewJobListParams().IDs(ids...).Kinds(DeliveryArgs{}.Kind()).
			OrderBy(river.JobListOrderByID, river.SortOrderAsc).First(len(ids))
		res, err := q.eng.list(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("queue: jobs of event: %w", err)
		}
		jobs = res.Jobs
	}
	bySink := map[string]*JobDetail{}
	for _, row := range jobs {
		j, err := jobDetail(row)
		if err != nil {
			return nil, err
		}
		bySink[j.Sink] = j // the newest job of a sink wins
	}
	d.Sinks = make([]SinkStatus, 0, len(names))
	for _, s := range names {
		st := SinkStatus{Sink: s, State: StateDelivered}
		if j := bySink[s]; j != nil {
			st = SinkStatus{Sink: s, State: j.State, Job: j.ID, Attempts: j.Attempts}
			d.Jobs = append(d.Jobs, *j)
		}
		d.Sinks = append(d.Sinks, st)
	}
	return d, nil
}

// jobDetail reads a job's arguments, attempts and receipt.
func jobDetail(row *rivertype.JobRow) (*JobDetail, error) {
	var a DeliveryArgs
	if err := json.Unmarshal(row.EncodedArgs, &a); err != nil {
		return nil, fmt.Errorf("queue: job %d: %w", row.ID, err)
	}
	j := &JobDetail{ID: row.ID, Sink: a.Sink, State: stateOf(row.State), Attempts: row.Attempt, Queued: row.CreatedAt.UTC()}
	switch j.State {
	case StateDelivered, StateDead:
		if row.FinalizedAt != nil {
			t := row.FinalizedAt.UTC()
			j.Finished = &t
		}
	case StateQueued, StateRetrying, StateWaiting:
		t := row.ScheduledAt.UTC()
		j.Next = &t
	}
	var meta map[string]json.RawMessage
	_ = json.Unmarshal(row.Metadata, &meta)
	notes := map[int]attemptNote{}
	for k, v := range meta {
		switch {
		case strings.HasPrefix(k, metaAttempt):
			n, err := strconv.Atoi(strings.TrimPrefix(k, metaAttempt))
			var note attemptNote
			if err == nil && json.Unmarshal(v, &note) == nil {
				notes[n] = note
			}
		case strings.HasPrefix(k, metaReceipt):
			var s string
			if json.Unmarshal(v, &s) == nil && len(j.Receipt) < maxReceiptKeys {
				if j.Receipt == nil {
					j.Receipt = map[string]string{}
				}
				j.Receipt[strings.TrimPrefix(k, metaReceipt)] = s
			}
		}
	}
	var m jobMeta
	if json.Unmarshal(row.Metadata, &m) == nil {
		j.ReplayOf = m.ReplayOf
	}
	j.Tries = attempts(row, notes)
	if m.ImportedError != "" {
		j.Tries = append(j.Tries, Attempt{Number: max(row.Attempt, 1), Began: m.ImportedTime.UTC(), Error: clip(m.ImportedError, maxErrorText)})
	}
	return j, nil
}

// attempts lists a job's attempts from River's record of their errors and
// our notes of their timing: every attempt up to the job's last, each
// with its error when it failed.
func attempts(row *rivertype.JobRow, notes map[int]attemptNote) []Attempt {
	errs := map[int]rivertype.AttemptError{}
	for _, e := range row.Errors {
		errs[e.Attempt] = e
	}
	out := make([]Attempt, 0, row.Attempt)
	for n := 1; n <= row.Attempt; n++ {
		a := Attempt{Number: n}
		e, failed := errs[n]
		if failed {
			// River prefixes the error of a job it cancelled.
			a.Error = clip(strings.TrimPrefix(e.Error, "JobCancelError: "), maxErrorText)
			a.Began = e.At.UTC()
		}
		switch note, ok := notes[n]; {
		case ok:
			a.Began, a.Took = note.Began, time.Duration(note.MS)*time.Millisecond
		case n == row.Attempt && row.AttemptedAt != nil:
			// The last attempt's start is River's attempted_at; its end the
			// error's time or the job's.
			a.Began = row.AttemptedAt.UTC()
			switch {
			case failed:
				a.Took = e.At.Sub(*row.AttemptedAt)
			case row.FinalizedAt != nil:
				a.Took = row.FinalizedAt.Sub(*row.AttemptedAt)
			}
		}
		if !failed && a.Began.IsZero() && n < row.Attempt {
			continue // an attempt River has no record of (rescued)
		}
		if a.Took < 0 {
			a.Took = 0
		}
		out = append(out, a)
	}
	return out
}

// RetryNow makes a job waiting for its next attempt (retrying, or waiting
// as the destination asked) run now, or returns ErrNotWaiting. The state
// is checked and changed in one transaction, so a job that has just been
// delivered is never queued again.
func (q *Queue) RetryNow(ctx context.Context, id int64) error {
	r, ok := q.eng.(interface {
		retryWaiting(ctx context.Context, id int64) error
	})
	if !ok {
		return errors.New("queue: the engine cannot retry")
	}
	return r.retryWaiting(ctx, id)
}

// retryWaiting is RetryNow on this driver: the row is locked (SQLite's
// write lock, taken when the transaction begins; a Postgres row lock),
// its state checked, then River's JobRetryTx.
func (e *riverEngine[TTx]) retryWaiting(ctx context.Context, id int64) error {
	tx, err := e.begin(ctx)
	if err != nil {
		return err
	}
	defer e.rollback(context.WithoutCancel(ctx), tx)
	var state, kind string
	switch t := any(tx).(type) {
	case *sql.Tx:
		err = t.QueryRowContext(ctx, "SELECT state, kind FROM river_job WHERE id = ?", id).Scan(&state, &kind)
		if errors.Is(err, sql.ErrNoRows) {
			err = pgx.ErrNoRows
		}
	case pgx.Tx:
		err = t.QueryRow(ctx, "SELECT state::text, kind FROM river_job WHERE id = $1 FOR UPDATE", id).Scan(&state, &kind)
	default:
		return errors.New("queue: unknown transaction type")
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: no job %d", ErrNotWaiting, id)
	}
	if err != nil {
		return err
	}
	st := rivertype.JobState(state)
	if kind != (DeliveryArgs{}).Kind() || (st != rivertype.JobStateRetryable && st != rivertype.JobStateScheduled) {
		return fmt.Errorf("%w: job %d is %s", ErrNotWaiting, id, stateOf(st))
	}
	if _, err := e.client.JobRetryTx(ctx, tx, id); err != nil {
		return err
	}
	return e.commit(ctx, tx)
}

// DeadFilter selects dead letters; its zero value selects all.
type DeadFilter struct {
	// Webhook and Sink, when set, must match exactly.
	Webhook, Sink string
	// Before, when above zero, lists dead letters of jobs numbered below
	// it: the next page.
	Before int64
}

// Dead returns up to limit dead letters (at most DeadPage) matching f,
// newest job first, without their bodies.
func (q *Queue) Dead(ctx context.Context, f DeadFilter, limit int) ([]DeadLetter, error) {
	limit = clampPage(limit, DeadPage)
	res, err := q.eng.list(ctx, q.deadParams(f).OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(limit))
	if err != nil {
		return nil, fmt.Errorf("queue: dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, len(res.Jobs))
	for _, row := range res.Jobs {
		j, err := jobDetail(row)
		if err != nil {
			return nil, err
		}
		var a DeliveryArgs
		_ = json.Unmarshal(row.EncodedArgs, &a)
		d := DeadLetter{ID: row.ID, Webhook: a.Webhook, EventID: a.EventID, Sink: a.Sink, Attempts: row.Attempt}
		if j.Finished != nil {
			d.Time = *j.Finished
		}
		if n := len(j.Tries); n > 0 {
			d.Error = j.Tries[n-1].Error
		}
		var m jobMeta
		if json.Unmarshal(row.Metadata, &m) == nil && !m.ImportedTime.IsZero() {
			d.Time = m.ImportedTime.UTC() // the record's own time, as DeadLetters
		}
		out = append(out, d)
	}
	return out, nil
}

func (q *Queue) deadParams(f DeadFilter) *river.JobListParams {
	p := river.NewJobListParams().Kinds(DeliveryArgs{}.Kind()).States(deadStates...)
	if f.Webhook != "" {
		p = p.Where(q.jobArg("", "webhook")+" = @webhook", river.NamedArgs{"webhook": f.Webhook})
	}
	if f.Sink != "" {
		p = p.Where(q.jobArg("", "sink")+" = @sink", river.NamedArgs{"sink": f.Sink})
	}
	if f.Before > 0 {
		p = p.Where("id < @before", river.NamedArgs{"before": f.Before})
	}
	return p
}

// replayPage is how many dead letters ReplayDead lists at a time.
const replayPage = 1000

// ReplayDead replays every dead letter matching f (Before is ignored) and
// returns how many it queued again. Like ReplayAll, it lists them first,
// then replays them one by one.
func (q *Queue) ReplayDead(ctx context.Context, f DeadFilter) (int, error) {
	f.Before = 0
	var ids []int64
	for {
		res, err := q.eng.list(ctx, q.deadParams(f).OrderBy(river.JobListOrderByID, river.SortOrderDesc).First(replayPage))
		if err != nil {
			return 0, fmt.Errorf("queue: dead letters: %w", err)
		}
		for _, row := range res.Jobs {
			ids = append(ids, row.ID)
		}
		if len(res.Jobs) < replayPage {
			break
		}
		f.Before = res.Jobs[len(res.Jobs)-1].ID
	}
	slices.Sort(ids) // oldest first, as ReplayAll
	for i, id := range ids {
		if err := q.Replay(ctx, id); err != nil {
			return i, err
		}
	}
	return len(ids), nil
}
