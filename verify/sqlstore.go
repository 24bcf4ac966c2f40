package verify

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync/atomic"
	"time"
)

// SQLDialect is the SQL that a SQLStore writes for its database.
type SQLDialect int

const (
	// DialectSQLite is SQLite 3.35 or later (for RETURNING), for example
	// through modernc.org/sqlite, whose driver is named "sqlite".
	DialectSQLite SQLDialect = iota + 1
	// DialectPostgres is PostgreSQL 9.5 or later (for ON CONFLICT and SKIP
	// LOCKED), for example through github.com/jackc/pgx/v5/stdlib, whose
	// driver is named "pgx".
	DialectPostgres
)

// DefaultSQLTable is the table of a SQLStore when SQLStoreOptions.Table is
// empty.
const DefaultSQLTable = "stairhook_ids"

// maxSQLTable is the longest table name: the index is named after the
// table with "_expires_at" added, and Postgres cuts names at 63 bytes,
// which could give two tables one index name.
const maxSQLTable = 63 - len("_expires_at")

const (
	// cleanupEvery is how many Reserve calls of one SQLStore pass between
	// two deletions of expired rows.
	cleanupEvery = 1000
	// cleanupBatch bounds the rows one such deletion removes: twice what
	// cleanupEvery calls can add, so a backlog drains.
	cleanupBatch = 2 * cleanupEvery
)

// SQLStoreOptions configures NewSQLStore.
type SQLStoreOptions struct {
	// Dialect is the SQL of the database. It is required: the zero value
	// is refused.
	Dialect SQLDialect
	// Table is the table that holds the keys, in the connection's default
	// schema (search_path on Postgres). It is 1 to 52 characters among a–z,
	// 0–9 and _, not starting with a digit. Default value is
	// DefaultSQLTable.
	Table string
	// Now returns the current time, by which expiries are written and
	// compared. The clocks of all the processes sharing a table must agree
	// to well within the ttls they use (NTP is enough). Default value is
	// time.Now.
	Now func() time.Time
}

// SQLStore is a Store in one table of a SQL database reached through
// database/sql: SQLite for a single machine whose ids must survive a
// restart, Postgres for several instances that share them. It is safe for
// concurrent use, and several handles or processes may share the table: each
// call is one atomic statement, so of concurrent Reserve calls for a key
// exactly one gets StateNew, wherever they come from. (Reserve of a taken
// key writes its row back unchanged, so a duplicate costs a commit, as a
// new key does.) Tokens are 128-bit random (crypto/rand), in hex.
//
// The table has one row per key:
//
//	key        BYTEA (BLOB on SQLite)  the key, byte for byte; primary key
//	token      TEXT                    the reservation's token
//	done       BOOLEAN                 whether Done was called
//	expires_at BIGINT                  unix milliseconds by SQLStoreOptions.Now; indexed
//
// A key whose row has expired is free at once. Expired rows are deleted in
// bounded batches: every 1000th Reserve of a SQLStore deletes up to 2000 of
// them, and DeleteExpired deletes more on demand, for a server that prefers
// to clean up on a timer.
//
// The database driver is the caller's; this package imports none. For
// SQLite, open the file with a busy timeout, in WAL mode, and allow one
// connection per process, for example with modernc.org/sqlite:
//
//	db, err := sql.Open("sqlite", "file:/var/lib/stairhook/ids.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
//	db.SetMaxOpenConns(1)
//
// The Middleware waits for every call, under the request's context: bound
// them with the server's timeouts or the driver's (connect_timeout and
// statement_timeout on Postgres), so that a database that hangs is answered
// 503 rather than holding requests. The store never closes db.
type SQLStore struct {
	db       *sql.DB
	dialect  SQLDialect
	table    string
	now      func() time.Time
	q        sqlQueries
	reserves atomic.Uint64 // Reserve calls, for the clean-up
}

var _ Store = (*SQLStore)(nil)

// sqlQueries is the text of each statement, in the store's dialect.
type sqlQueries struct {
	create        []string
	reserve       string // → token, done
	done          string
	release       string
	deleteExpired string
	ping          string
}

// NewSQLStore returns a SQLStore on db. It does not touch the database:
// call CreateTable once at start-up, or create the table beforehand. The
// error wraps ErrInvalidOptions when opts are unusable.
func NewSQLStore(db *sql.DB, opts SQLStoreOptions) (*SQLStore, error) {
	if db == nil {
		return nil, withHint(ErrInvalidOptions, "NewSQLStore: nil *sql.DB")
	}
	if opts.Dialect != DialectSQLite && opts.Dialect != DialectPostgres {
		return nil, withHint(ErrInvalidOptions, fmt.Sprintf("SQLStoreOptions.Dialect %d is not DialectSQLite or DialectPostgres", opts.Dialect))
	}
	if opts.Table == "" {
		opts.Table = DefaultSQLTable
	}
	if !validSQLTable(opts.Table) {
		return nil, withHint(ErrInvalidOptions, fmt.Sprintf("SQLStoreOptions.Table %.80q is not 1 to %d characters among a-z, 0-9 and _, not starting with a digit", opts.Table, maxSQLTable))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &SQLStore{
		db:      db,
		dialect: opts.Dialect,
		table:   opts.Table,
		now:     opts.Now,
		q:       newSQLQueries(opts.Dialect, opts.Table),
	}, nil
}

// validSQLTable reports whether name matches [a-z_][a-z0-9_]{0,51}: a name
// that needs no quoting rules of either dialect, and means the same quoted
// or not.
func validSQLTable(name string) bool {
	if name == "" || len(name) > maxSQLTable || ('0' <= name[0] && name[0] <= '9') {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// newSQLQueries writes the statements for table in dialect d. The table
// and index names are quoted, so that a name such as "user" that is a
// keyword still works. Parameters are written $n and, for SQLite, turned
// into its ?n.
func newSQLQueries(d SQLDialect, table string) sqlQueries {
	keyType, withoutRowid, skipLocked := "BYTEA", "", " FOR UPDATE SKIP LOCKED"
	if d == DialectSQLite {
		// A text primary key in a rowid table would be stored twice.
		keyType, withoutRowid, skipLocked = "BLOB", " WITHOUT ROWID", ""
	}
	r := strings.NewReplacer("{table}", `"`+table+`"`, "{index}", `"`+table+`_expires_at"`,
		"{key}", keyType, "{without_rowid}", withoutRowid, "{skip_locked}", skipLocked)
	q := sqlQueries{
		create: []string{
			r.Replace(`CREATE TABLE IF NOT EXISTS {table} (
	key {key} NOT NULL PRIMARY KEY,
	token TEXT NOT NULL,
	done BOOLEAN NOT NULL,
	expires_at BIGINT NOT NULL
){without_rowid}`),
			r.Replace(`CREATE INDEX IF NOT EXISTS {index} ON {table} (expires_at)`),
		},
		// Inserts the key, or takes over its row if that has expired, or
		// leaves the row as it is; and returns the row, whose token is the
		// new one only if the key was free. One statement, so that the
		// state returned is the one the insert met: an insert that skipped
		// a live row, then a select, could find the row freed in between.
		// The price is that a taken key's row is written unchanged.
		reserve: r.Replace(`INSERT INTO {table} (key, token, done, expires_at) VALUES ($1, $2, FALSE, $3)
ON CONFLICT (key) DO UPDATE SET
	token = CASE WHEN {table}.expires_at <= $4 THEN excluded.token ELSE {table}.token END,
	done = CASE WHEN {table}.expires_at <= $4 THEN FALSE ELSE {table}.done END,
	expires_at = CASE WHEN {table}.expires_at <= $4 THEN excluded.expires_at ELSE {table}.expires_at END
RETURNING token, done`),
		done:    r.Replace(`UPDATE {table} SET done = TRUE, expires_at = $1 WHERE key = $2 AND token = $3 AND NOT done AND expires_at > $4`),
		release: r.Replace(`DELETE FROM {table} WHERE key = $1 AND token = $2 AND NOT done`),
		// The outer condition is checked again on the row as it is when
		// deleted, so a key reserved anew since the inner select stays.
		// On Postgres, SKIP LOCKED lets concurrent clean-ups share the
		// work instead of waiting on each other's rows.
		deleteExpired: r.Replace(`DELETE FROM {table} WHERE key IN (
	SELECT key FROM {table} WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2{skip_locked}
) AND expires_at <= $1`),
		ping: r.Replace(`SELECT 1 FROM {table} LIMIT 1`),
	}
	if d == DialectSQLite {
		for _, p := range []*string{&q.reserve, &q.done, &q.release, &q.deleteExpired} {
			*p = strings.ReplaceAll(*p, "$", "?")
		}
	}
	return q
}

// CreateTable creates the table and its index on expires_at unless they
// exist. It is idempotent and safe to call from several processes at
// once, as instances starting together do: on Postgres, where two
// concurrent CREATE TABLE IF NOT EXISTS can fail on a unique violation, it
// runs in a transaction under an advisory lock named after the table.
func (s *SQLStore) CreateTable(ctx context.Context) error {
	if s.dialect != DialectPostgres {
		for _, q := range s.q.create {
			if _, err := s.db.ExecContext(ctx, q); err != nil {
				return s.wrap("create table", err)
			}
		}
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("create table", err)
	}
	defer tx.Rollback() // does nothing after Commit
	h := fnv.New64a()
	h.Write([]byte("stairhook verify.SQLStore " + s.table))
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64())); err != nil {
		return s.wrap("create table", err)
	}
	for _, q := range s.q.create {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return s.wrap("create table", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return s.wrap("create table", err)
	}
	return nil
}

// Reserve implements Store. Every 1000th call, unless it failed, then also
// deletes up to 2000 expired rows; a failure there is left for the next
// time, and does not fail the call.
func (s *SQLStore) Reserve(ctx context.Context, key string, ttl time.Duration) (Reservation, State, error) {
	r, st, err := s.reserve(ctx, key, ttl)
	if s.reserves.Add(1)%cleanupEvery == 0 && err == nil {
		_, _ = s.DeleteExpired(ctx, cleanupBatch)
	}
	return r, st, err
}

func (s *SQLStore) reserve(ctx context.Context, key string, ttl time.Duration) (Reservation, State, error) {
	token := newSQLToken()
	now := s.now()
	var got string
	var done bool
	err := s.db.QueryRowContext(ctx, s.q.reserve, []byte(key), token, sqlExpiry(now, ttl), now.UnixMilli()).Scan(&got, &done)
	switch {
	case err != nil:
		return Reservation{}, StateNew, s.wrap("reserve", err)
	case subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1:
		return Reservation{Key: key, Token: token}, StateNew, nil
	case done:
		return Reservation{}, StateDone, nil
	}
	return Reservation{}, StateInFlight, nil
}

// Done implements Store.
func (s *SQLStore) Done(ctx context.Context, r Reservation, ttl time.Duration) error {
	if r.Token == "" {
		return ErrReservationLost
	}
	now := s.now()
	res, err := s.db.ExecContext(ctx, s.q.done, sqlExpiry(now, ttl), []byte(r.Key), r.Token, now.UnixMilli())
	if err != nil {
		return s.wrap("done", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap("done", err)
	}
	if n != 1 {
		return ErrReservationLost
	}
	return nil
}

// Release implements Store.
func (s *SQLStore) Release(ctx context.Context, r Reservation) error {
	if r.Token == "" {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, s.q.release, []byte(r.Key), r.Token); err != nil {
		return s.wrap("release", err)
	}
	return nil
}

// Ping reports whether the database answers and the table exists, for a
// health check. It reads at most one row and writes nothing.
func (s *SQLStore) Ping(ctx context.Context) error {
	var one int
	err := s.db.QueryRowContext(ctx, s.q.ping).Scan(&one)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return s.wrap("ping", err)
	}
	return nil
}

// DeleteExpired deletes up to limit expired rows, those expiring first
// first, and returns how many it deleted. Expired keys are free to
// reserve whether or not their rows are deleted: this only reclaims space.
// Reserve calls it now and then; call it in a loop until it returns less
// than limit to empty the backlog. On Postgres, concurrent calls skip each
// other's rows rather than wait for them.
func (s *SQLStore) DeleteExpired(ctx context.Context, limit int) (int64, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("verify: sql store: delete expired: limit %d is not positive", limit)
	}
	res, err := s.db.ExecContext(ctx, s.q.deleteExpired, s.now().UnixMilli(), int64(limit))
	if err != nil {
		return 0, s.wrap("delete expired", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.wrap("delete expired", err)
	}
	return n, nil
}

// wrap names the store's call in a database error. No statement argument
// is in it: a token must not reach a log.
func (s *SQLStore) wrap(op string, err error) error {
	return fmt.Errorf("verify: sql store %q: %s: %w", s.table, op, err)
}

// newSQLToken returns 128 random bits in hex.
func newSQLToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return hex.EncodeToString(b[:])
}

// sqlExpiry is now plus ttl in unix milliseconds. The ttl is rounded up to
// a whole millisecond, so a key is held at least as long as asked, and the
// sum saturates as MemoryStore's does (the milliseconds are added as
// Durations only to share addSaturated).
func sqlExpiry(now time.Time, ttl time.Duration) int64 {
	ms := ttl / time.Millisecond
	if ttl%time.Millisecond > 0 {
		ms++
	}
	return int64(addSaturated(time.Duration(now.UnixMilli()), ms))
}
