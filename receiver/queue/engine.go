package queue

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
)

// engine is River on one driver; the two drivers differ in their
// transaction type, which is all this hides.
type engine interface {
	acceptBatch(ctx context.Context, batch []*pending) (duplicates []bool, err error)
	start(ctx context.Context) error
	stop(ctx context.Context) error
	list(ctx context.Context, p *river.JobListParams) (*river.JobListResult, error)
	get(ctx context.Context, id int64) (*rivertype.JobRow, error)
	replace(ctx context.Context, old int64, job river.InsertManyParams) error
	complete(ctx context.Context, job *river.Job[DeliveryArgs]) error
	bury(ctx context.Context, a *Accepted, received int64, job river.InsertManyParams) error
}

func (q *Queue) riverConfig() *river.Config {
	o := q.opts
	cfg := &river.Config{
		Logger:                      o.Logger.With("component", "river"),
		JobTimeout:                  o.AttemptTimeout,
		RescueStuckJobsAfter:        o.AttemptTimeout + time.Minute,
		MaxAttempts:                 maxAttempts,
		CancelledJobRetentionPeriod: -1, // dead letters stay until replayed
		DiscardedJobRetentionPeriod: -1,
		FetchCooldown:               10 * time.Millisecond,
		FetchPollInterval:           o.PollInterval,
	}
	if cfg.FetchPollInterval <= 0 {
		cfg.FetchPollInterval = time.Second
		if q.db.pool == nil {
			cfg.FetchPollInterval = 50 * time.Millisecond
		}
	}
	if o.Work != nil {
		workers := river.NewWorkers()
		river.AddWorker(workers, &worker{q: q})
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: o.Workers}}
	}
	return cfg
}

func (q *Queue) newEngine() error {
	cfg := q.riverConfig()
	if q.db.pool == nil {
		c, err := river.NewClient(riversqlite.New(q.db.sql), cfg)
		if err != nil {
			return err
		}
		q.eng = &riverEngine[*sql.Tx]{q: q, client: c,
			begin: func(ctx context.Context) (*sql.Tx, error) { return q.db.sql.BeginTx(ctx, nil) },
			query: func(ctx context.Context, tx *sql.Tx, s string, a ...any) ([]eventKey, error) {
				rows, err := tx.QueryContext(ctx, s, a...)
				if err != nil {
					return nil, err
				}
				defer rows.Close()
				return scanKeys(rows)
			},
			commit:   func(_ context.Context, tx *sql.Tx) error { return tx.Commit() },
			rollback: func(_ context.Context, tx *sql.Tx) error { return tx.Rollback() },
			completeTx: func(ctx context.Context, tx *sql.Tx, job *river.Job[DeliveryArgs]) error {
				_, err := river.JobCompleteTx[*riversqlite.Driver](ctx, tx, job)
				return err
			},
		}
		return nil
	}
	c, err := river.NewClient(riverpgxv5.New(q.db.pool), cfg)
	if err != nil {
		return err
	}
	q.eng = &riverEngine[pgx.Tx]{q: q, client: c,
		begin: func(ctx context.Context) (pgx.Tx, error) { return q.db.pool.Begin(ctx) },
		query: func(ctx context.Context, tx pgx.Tx, s string, a ...any) ([]eventKey, error) {
			rows, err := tx.Query(ctx, s, a...)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			return scanKeys(rows)
		},
		commit:   func(ctx context.Context, tx pgx.Tx) error { return tx.Commit(ctx) },
		rollback: func(ctx context.Context, tx pgx.Tx) error { return tx.Rollback(ctx) },
		completeTx: func(ctx context.Context, tx pgx.Tx, job *river.Job[DeliveryArgs]) error {
			_, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job)
			return err
		},
	}
	return nil
}

// scanKeys reads the (webhook, event id) rows of insertEvents, from
// database/sql or pgx.
func scanKeys(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}) ([]eventKey, error) {
	var keys []eventKey
	for rows.Next() {
		var k eventKey
		if err := rows.Scan(&k.webhook, &k.id); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// riverEngine is River on the driver whose transactions are TTx.
type riverEngine[TTx any] struct {
	q        *Queue
	client   *river.Client[TTx]
	begin    func(context.Context) (TTx, error)
	query    func(context.Context, TTx, string, ...any) ([]eventKey, error)
	commit   func(context.Context, TTx) error
	rollback func(context.Context, TTx) error
	// completeTx is river.JobCompleteTx on this driver.
	completeTx func(context.Context, TTx, *river.Job[DeliveryArgs]) error
}

func (e *riverEngine[TTx]) start(ctx context.Context) error { return e.client.Start(ctx) }

func (e *riverEngine[TTx]) stop(ctx context.Context) error {
	if e.q.opts.Work == nil {
		return nil
	}
	if err := e.client.Stop(ctx); err != nil {
		// The soft stop ran out of time: cancel the attempts still running
		// (their jobs are retried) and wait for River to let go of them.
		hard, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return errors.Join(err, e.client.StopAndCancel(hard))
	}
	return nil
}

func (e *riverEngine[TTx]) list(ctx context.Context, p *river.JobListParams) (*river.JobListResult, error) {
	return e.client.JobList(ctx, p)
}

func (e *riverEngine[TTx]) get(ctx context.Context, id int64) (*rivertype.JobRow, error) {
	return e.client.JobGet(ctx, id)
}

// complete records the job as done now, in a transaction of its own,
// rather than leave it to River's completer, which batches completions
// for up to a quarter of a second: a process that dies in that time has
// its delivered jobs worked again, and an email sent twice.
func (e *riverEngine[TTx]) complete(ctx context.Context, job *river.Job[DeliveryArgs]) error {
	tx, err := e.begin(ctx)
	if err != nil {
		return err
	}
	defer e.rollback(context.WithoutCancel(ctx), tx)
	if err := e.completeTx(ctx, tx, job); err != nil {
		return err
	}
	return e.commit(ctx, tx)
}

// replace deletes the dead job old and queues job in its place, at once.
func (e *riverEngine[TTx]) replace(ctx context.Context, old int64, job river.InsertManyParams) error {
	tx, err := e.begin(ctx)
	if err != nil {
		return err
	}
	defer e.rollback(context.WithoutCancel(ctx), tx)
	if _, err := e.client.JobDeleteTx(ctx, tx, old); err != nil {
		return err
	}
	if _, err := e.client.InsertManyTx(ctx, tx, []river.InsertManyParams{job}); err != nil {
		return err
	}
	return e.commit(ctx, tx)
}

// bury records an event (unless it is there) and a job that is dead from
// the start: a dead letter imported from an older version's file.
func (e *riverEngine[TTx]) bury(ctx context.Context, a *Accepted, received int64, job river.InsertManyParams) error {
	tx, err := e.begin(ctx)
	if err != nil {
		return err
	}
	defer e.rollback(context.WithoutCancel(ctx), tx)
	if _, err := e.query(ctx, tx, e.q.insertEvents(1), eventArgs(a, received)...); err != nil {
		return err
	}
	res, err := e.client.InsertManyTx(ctx, tx, []river.InsertManyParams{job})
	if err != nil {
		return err
	}
	if _, err := e.client.JobCancelTx(ctx, tx, res[0].Job.ID); err != nil {
		return err
	}
	return e.commit(ctx, tx)
}
