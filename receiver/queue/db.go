package queue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// DefaultStore is where the server keeps its database when neither the
// configuration nor the command line names one.
const DefaultStore = "sqlite:./stairhook.db"

// ErrBadStore means a store location is neither sqlite:PATH nor a
// postgres:// URL.
var ErrBadStore = errors.New("queue: store must be sqlite:PATH or a postgres:// URL")

// sqliteParams are the connection settings of every SQLite database: a
// write-ahead log with a sync on every commit (an accepted event is on
// disk before it is acknowledged), a wait for the write lock rather than
// an immediate SQLITE_BUSY when another process holds it, and write
// transactions that take the lock when they begin, so two processes
// migrating or accepting at once queue up instead of deadlocking.
const sqliteParams = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"

// sqliteReadParams are the settings of the read-only connections.
const sqliteReadParams = "_pragma=busy_timeout(10000)&_pragma=query_only(1)"

// sqliteReaders is the size of the read-only pool.
const sqliteReaders = 4

// Location is a parsed store: exactly one of SQLitePath and PostgresURL is
// set.
type Location struct {
	SQLitePath  string
	PostgresURL string
}

// ParseLocation reads "sqlite:PATH" or "postgres://…" (also
// "postgresql://…").
func ParseLocation(s string) (Location, error) {
	switch {
	case strings.HasPrefix(s, "sqlite:"):
		p := strings.TrimPrefix(s, "sqlite:")
		if p == "" || strings.ContainsAny(p, "?#\x00") {
			return Location{}, fmt.Errorf("%w: the SQLite path is empty or holds ? or #", ErrBadStore)
		}
		return Location{SQLitePath: p}, nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		if _, err := pgx.ParseConfig(s); err != nil {
			// pgx quotes the URL, password included: never pass its text on.
			return Location{}, fmt.Errorf("%w: the postgres URL does not parse", ErrBadStore)
		}
		return Location{PostgresURL: s}, nil
	}
	return Location{}, ErrBadStore
}

// String shows the location without a password.
func (l Location) String() string {
	if l.SQLitePath != "" {
		return "sqlite:" + l.SQLitePath
	}
	if u, err := url.Parse(l.PostgresURL); err == nil {
		return u.Redacted()
	}
	return "postgres://…"
}

// defaultPoolConns is the Postgres pool's size unless the URL sets
// pool_max_conns.
const defaultPoolConns = 20

// database is an open store: database/sql for our own tables and the id
// store on both engines, plus the pgx pool River's Postgres driver wants.
type database struct {
	loc Location
	sql *sql.DB
	// read serves this package's reads. On SQLite it is a pool of its own,
	// read-only: the write-ahead log lets readers run beside the one
	// writer, so a request's id check never queues behind a commit. On
	// Postgres it is sql.
	read *sql.DB
	pool *pgxpool.Pool // Postgres only
}

func openDatabase(ctx context.Context, loc Location) (*database, error) {
	if loc.SQLitePath != "" {
		path := loc.SQLitePath
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("queue: database folder: %w", err)
		}
		// Created here with mode 0600, so SQLite (which gives its -wal and
		// -shm files the database file's mode) never makes it readable by
		// others: it holds every event body.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("queue: database file: %w", err)
		}
		f.Close()
		db, err := sql.Open("sqlite", path+"?"+sqliteParams)
		if err != nil {
			return nil, err
		}
		// One connection: SQLite has one writer, and River's driver is
		// built for a pool of one.
		db.SetMaxOpenConns(1)
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("queue: open %s: %w", loc, err)
		}
		read, err := sql.Open("sqlite", path+"?"+sqliteReadParams)
		if err != nil {
			db.Close()
			return nil, err
		}
		read.SetMaxOpenConns(sqliteReaders)
		return &database{loc: loc, sql: db, read: read}, nil
	}
	cfg, err := pgxpool.ParseConfig(loc.PostgresURL)
	if err != nil {
		return nil, fmt.Errorf("%w: the postgres URL does not parse", ErrBadStore)
	}
	if !strings.Contains(loc.PostgresURL, "pool_max_conns") {
		// pgx's default, four on two cores, is less than the accept
		// path's committers, the workers and River's listener need.
		cfg.MaxConns = defaultPoolConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("queue: connect to %s: %w", loc, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("queue: connect to %s: %w", loc, redactPG(err))
	}
	db := stdlib.OpenDBFromPool(pool)
	return &database{loc: loc, sql: db, read: db, pool: pool}, nil
}

// redactPG keeps a connection error's class but drops its text, which
// can quote the connection string.
func redactPG(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return errors.New("the server refused the connection or cannot be reached")
	}
	return err
}

func (d *database) close() error {
	err := d.sql.Close()
	if d.read != d.sql {
		err = errors.Join(err, d.read.Close())
	}
	if d.pool != nil {
		d.pool.Close()
	}
	return err
}

// sqliteSchema and postgresSchema are this package's tables, beside River's.
// One row per accepted event, keyed as the ids are: per webhook.
const (
	sqliteSchema = `CREATE TABLE IF NOT EXISTS stairhook_events (
	webhook     TEXT NOT NULL,
	event_id    TEXT NOT NULL,
	type        TEXT NOT NULL,
	account     TEXT NOT NULL,
	received_at INTEGER NOT NULL,
	signed_at   INTEGER,
	key_label   TEXT NOT NULL,
	scheme      TEXT NOT NULL,
	test        INTEGER NOT NULL,
	sinks       TEXT NOT NULL,
	body        BLOB NOT NULL,
	PRIMARY KEY (webhook, event_id)
);
CREATE INDEX IF NOT EXISTS stairhook_events_received ON stairhook_events (received_at);`
	postgresSchema = `CREATE TABLE IF NOT EXISTS stairhook_events (
	webhook     TEXT NOT NULL,
	event_id    TEXT NOT NULL,
	type        TEXT NOT NULL,
	account     TEXT NOT NULL,
	received_at BIGINT NOT NULL,
	signed_at   BIGINT,
	key_label   TEXT NOT NULL,
	scheme      TEXT NOT NULL,
	test        BOOLEAN NOT NULL,
	sinks       TEXT NOT NULL,
	body        BYTEA NOT NULL,
	PRIMARY KEY (webhook, event_id)
);
CREATE INDEX IF NOT EXISTS stairhook_events_received ON stairhook_events (received_at);
-- Added later. Checked first: ALTER TABLE takes an exclusive lock on the
-- table even when the column is there, which would stall accepts at every
-- instance's start.
DO $$ BEGIN
	IF NOT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'stairhook_events' AND column_name = 'signed_at') THEN
		ALTER TABLE stairhook_events ADD COLUMN signed_at BIGINT;
	END IF;
END $$;`
)

// sqliteAddedColumns are the columns younger than their table: CREATE
// TABLE IF NOT EXISTS leaves a database made before them without them, so
// migrate adds them (on Postgres, the guarded ALTER TABLE at the end of
// postgresSchema does). Each is nullable: the rows already there have
// no value for it.
var sqliteAddedColumns = []struct{ table, column, decl string }{
	{"stairhook_events", "signed_at", "INTEGER"}, // the signed time, in ms; NULL before it was kept
}

// sqliteAddColumns adds the missing sqliteAddedColumns in tx, which holds
// the write lock: SQLite has no ADD COLUMN IF NOT EXISTS, and the check
// and the change must be one step for instances that start together.
func sqliteAddColumns(ctx context.Context, tx *sql.Tx) error {
	for _, c := range sqliteAddedColumns {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM pragma_table_info(?) WHERE name = ?", c.table, c.column).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, "ALTER TABLE "+c.table+" ADD COLUMN "+c.column+" "+c.decl); err != nil {
			return err
		}
	}
	return nil
}

// migrateLock is the Postgres advisory lock that serializes migrations of
// instances starting at once ("stairhook" in ASCII).
const migrateLock = 0x73746169726862

// migrate brings River's tables and ours up to date under
// a lock (SQLite's write lock, a Postgres advisory lock), so instances
// that start together run them one after the other and the later ones
// find nothing to do.
func (d *database) migrate(ctx context.Context) error {
	if d.pool == nil {
		tx, err := d.sql.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock): the write lock
		if err != nil {
			return fmt.Errorf("queue: migrate: %w", err)
		}
		defer tx.Rollback()
		m, err := rivermigrate.New(riversqlite.New(d.sql), nil)
		if err != nil {
			return err
		}
		// One transaction for all of them is what makes this safe across
		// processes on SQLite, which has no advisory lock; the reason
		// MigrateTx is deprecated (Postgres cannot use an enum value in the
		// transaction that adds it) does not apply to SQLite.
		//lint:ignore SA1019 see above
		if _, err := m.MigrateTx(ctx, tx, rivermigrate.DirectionUp, nil); err != nil {
			return fmt.Errorf("queue: River migrations: %w", err)
		}
		if _, err := tx.ExecContext(ctx, sqliteSchema+"\n"+sqliteConsoleSchema); err != nil {
			return fmt.Errorf("queue: migrate: %w", err)
		}
		if err := sqliteAddColumns(ctx, tx); err != nil {
			return fmt.Errorf("queue: migrate: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("queue: migrate: %w", err)
		}
		return nil
	}
	// River's migrations add enum values, which Postgres refuses inside
	// the transaction that uses them: they run one transaction each, under
	// a lock held by a connection of their own.
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("queue: migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrateLock)); err != nil {
		return fmt.Errorf("queue: migrate: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrateLock))
	m, err := rivermigrate.New(riverpgxv5.New(d.pool), nil)
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("queue: River migrations: %w", err)
	}
	if _, err := d.pool.Exec(ctx, postgresSchema+"\n"+postgresConsoleSchema); err != nil {
		return fmt.Errorf("queue: migrate: %w", err)
	}
	return nil
}
