package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Defaults of Options, the values of the delivery section of the
// receiver's configuration when it is empty.
const (
	DefaultWorkers        = 8
	DefaultAttemptTimeout = 30 * time.Second
	DefaultFirstRetry     = 5 * time.Second
	DefaultMaxRetry       = time.Hour
	DefaultGiveUpAfter    = 72 * time.Hour
	DefaultRetention      = 7 * 24 * time.Hour
)

// maxAttempts is River's attempt limit on our jobs: high enough never to
// be reached before GiveUpAfter ends a job (at one attempt per MaxRetry, 72
// hours is 72 attempts), below Postgres's smallint column.
const maxAttempts = 10_000

// maxTraceparent bounds the traceparent kept with a job: version 00's is
// 55 bytes; this leaves room for a later version's, no more.
const maxTraceparent = 256

// commitTimeout bounds one transaction of the accept path.
const commitTimeout = 10 * time.Second

// pgCommitters is how many accept transactions run at once on Postgres.
const pgCommitters = 2

// ErrUnavailable wraps a failure of the database on the accept path: the
// event was not recorded, and the sender must be told to retry.
var ErrUnavailable = errors.New("queue: database unavailable")

// ErrNotDead means Replay was given a job that is not a dead letter.
var ErrNotDead = errors.New("queue: not a dead letter")

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Workers is how many jobs this process works at once. Default value
	// is DefaultWorkers.
	Workers int
	// AttemptTimeout bounds one attempt of a sink. River's rescue of jobs
	// whose process died follows it: such a job is worked again about a
	// minute after its attempt could have ended. Default value is
	// DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// FirstRetry is the wait after the first failed attempt; it doubles
	// after each further failure, up to MaxRetry, and each wait is drawn
	// between three quarters of it and all of it (jitter). Default value
	// is DefaultFirstRetry.
	FirstRetry time.Duration
	// MaxRetry is the longest wait between two attempts. Default value is
	// DefaultMaxRetry.
	MaxRetry time.Duration
	// GiveUpAfter ends a job that is still failing this long after it was
	// queued (or replayed): it becomes a dead letter. Default value is
	// DefaultGiveUpAfter.
	GiveUpAfter time.Duration
	// Retention is how long an accepted event is kept once its jobs are
	// all done (see DeleteOldEvents); it is also how long its id is
	// remembered. Default value is DefaultRetention.
	Retention time.Duration
	// PollInterval is how often a worker looks for new jobs when nothing
	// told it of one (SQLite has no notifications; Postgres notifies).
	// Default value is 50 ms on SQLite and 1 s on Postgres.
	PollInterval time.Duration
	// Work delivers one job. Nil makes an accept-only queue: Start fails.
	Work WorkFunc
	// Logger receives River's own warnings and one line per dead job.
	// Default value is a log/slog JSON handler on standard error.
	Logger *slog.Logger
	// Now returns the current time, for the events' received time and the
	// id store. Default value is time.Now.
	Now func() time.Time
}

// WorkFunc delivers one job to its sink.
type WorkFunc func(ctx context.Context, d *Delivery) Result

// Delivery is one job as a WorkFunc gets it.
type Delivery struct {
	// JobID is the job's number in the queue, for logs.
	JobID int64
	// Webhook, EventID and Sink say what to deliver where.
	Webhook, EventID, Sink string
	// Attempt counts the attempts, this one included (a wait asked by the
	// destination is not an attempt).
	Attempt int
	// ReceivedAt is when the event was accepted.
	ReceivedAt time.Time
	// Body is the event exactly as it was signed.
	Body []byte
	// Trace is the W3C traceparent the event was accepted under
	// (Accepted.Trace), "" when it had none: the attempt's span belongs
	// under it, so an event's accept and every attempt of each sink form
	// one trace, whichever instance works the job.
	Trace string
}

// Result is the outcome of one attempt.
type Result struct {
	// Err is nil when the sink succeeded. Otherwise it is recorded with
	// the attempt.
	Err error
	// Permanent means no retry can help: the job is dead at once.
	Permanent bool
	// Wait is the delay the destination asked for (Retry-After): the job
	// waits exactly that long, and the attempt does not count.
	Wait time.Duration
}

// Accepted is one event to record, with the sinks it is queued for.
type Accepted struct {
	Webhook, EventID, Type, Account, KeyLabel, Scheme string
	Test                                              bool
	Body                                              []byte
	Sinks                                             []string
	// SignedAt is the time the sender signed, as the key verified it
	// (verify.Result.Timestamp); zero for a scheme that signs none. It is
	// kept to the millisecond.
	SignedAt time.Time
	// Trace is the W3C traceparent of the span that accepted the event,
	// or "": it is kept with each job (in River's metadata, not in the
	// args, which stay what they were) and handed to its attempts as
	// Delivery.Trace. It is at most maxTraceparent bytes; a longer one is
	// dropped.
	Trace string
}

// DeliveryArgs is the River job of one (event, sink): small, and stable
// across versions, since jobs outlive the process that queued them.
type DeliveryArgs struct {
	Webhook string `json:"webhook"`
	EventID string `json:"event_id"`
	Sink    string `json:"sink"`
}

// Kind is the job's River kind.
func (DeliveryArgs) Kind() string { return "stairhook_delivery" }

// Queue is the server's database: the accepted events (which are also the
// record of the signed ids), their delivery jobs and the dead letters.
// Create it with Open.
type Queue struct {
	db    *database
	opts  Options
	eng   engine
	log   *slog.Logger
	batch *batcher

	mu          sync.Mutex // guards stopCleanup and cleanupDone
	stopCleanup context.CancelFunc
	cleanupDone chan struct{}

	closeOnce sync.Once
}

// Open opens (creating it if need be) the database at loc and brings its
// schema up to date: River's migrations and the events table, safely when
// several instances start at once.
func Open(ctx context.Context, loc Location, opts Options) (*Queue, error) {
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = DefaultAttemptTimeout
	}
	if opts.FirstRetry <= 0 {
		opts.FirstRetry = DefaultFirstRetry
	}
	if opts.MaxRetry <= 0 {
		opts.MaxRetry = DefaultMaxRetry
	}
	if opts.GiveUpAfter <= 0 {
		opts.GiveUpAfter = DefaultGiveUpAfter
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db, err := openDatabase(ctx, loc)
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.close()
		return nil, err
	}
	q := &Queue{db: db, opts: opts, log: opts.Logger}
	if err := q.newEngine(); err != nil {
		db.close()
		return nil, err
	}
	committers := 1 // SQLite has one writer
	if db.pool != nil {
		committers = pgCommitters
	}
	q.startBatcher(committers)
	return q, nil
}

// Location is where the database is.
func (q *Queue) Location() Location { return q.db.loc }

// Accepted reports whether the event (by webhook and id) was accepted: the
// durable record of the ids the verify middleware checks.
func (q *Queue) Accepted(ctx context.Context, webhook, id string) (bool, error) {
	var one int
	err := q.db.read.QueryRowContext(ctx,
		q.rebind("SELECT 1 FROM stairhook_events WHERE webhook = ? AND event_id = ?"), webhook, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// Ping checks that the database answers.
func (q *Queue) Ping(ctx context.Context) error { return q.db.read.PingContext(ctx) }

// Start starts this process's workers; they run until Stop, whatever
// becomes of ctx.
func (q *Queue) Start(ctx context.Context) error {
	if q.opts.Work == nil {
		return errors.New("queue: no WorkFunc: an accept-only queue has no workers")
	}
	// River takes the end of Start's context for a hard stop that
	// cancels every running attempt: Stop, not the caller's context, ends
	// the workers, so a shutdown lets running attempts finish.
	if err := q.eng.start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	q.mu.Lock()
	q.stopCleanup, q.cleanupDone = cancel, done
	q.mu.Unlock()
	go func() {
		defer close(done)
		q.cleanupLoop(cctx)
	}()
	return nil
}

// Stop stops fetching jobs and waits for the running attempts until ctx
// is done, then cancels them; they are worked again later, here or on
// another instance.
//
// Stop may be called more than once, and from several goroutines at once
// (a server's shutdown and its Close).
func (q *Queue) Stop(ctx context.Context) error {
	q.mu.Lock()
	stop, done := q.stopCleanup, q.cleanupDone
	q.stopCleanup = nil
	q.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	return q.eng.stop(ctx)
}

// Close closes the database: Accept fails from now on. Stop the workers
// first.
func (q *Queue) Close() error {
	q.closeOnce.Do(q.stopBatcher)
	return q.db.close()
}

// eventColumns is the number of columns insertEvents fills per event.
const eventColumns = 11

// insertEvents is the statement recording n accepted events; it writes
// nothing for an event already there, and returns the webhook and id of
// each event it did write.
func (q *Queue) insertEvents(n int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO stairhook_events (webhook, event_id, type, account, received_at, signed_at, key_label, scheme, test, sinks, body) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
	}
	b.WriteString(" ON CONFLICT (webhook, event_id) DO NOTHING RETURNING webhook, event_id")
	return q.rebind(b.String())
}

// rebind turns ? placeholders into Postgres's $n.
func (q *Queue) rebind(s string) string {
	if q.db.pool == nil {
		return s
	}
	out := make([]byte, 0, len(s)+16)
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '?' {
			n++
			out = fmt.Appendf(out, "$%d", n)
			continue
		}
		out = append(out, s[i])
	}
	return string(out)
}

func eventArgs(a *Accepted, received int64) []any {
	sinks := ""
	for i, s := range a.Sinks {
		if i > 0 {
			sinks += " "
		}
		sinks += s
	}
	var signed any // NULL: no signed time
	if !a.SignedAt.IsZero() {
		signed = a.SignedAt.UnixMilli()
	}
	return []any{a.Webhook, a.EventID, a.Type, a.Account, received, signed, a.KeyLabel, a.Scheme, a.Test, sinks, a.Body}
}
