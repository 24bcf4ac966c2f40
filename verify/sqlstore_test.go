package verify_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// sqliteParams are the server's settings for its SQLite database.
const sqliteParams = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"

// sqlBackend is one database for the SQLStore tests.
type sqlBackend struct {
	dialect verify.SQLDialect
	// open returns a new handle on the backend's database, as another
	// process would have; it is closed when the test ends.
	open func(t *testing.T) *sql.DB
	// openUnsynced is open with commits that do not wait for the disk, for
	// a test that writes thousands of rows one by one.
	openUnsynced func(t *testing.T) *sql.DB
}

// sqliteBackend is a SQLite file of the test's, opened as the server does.
func sqliteBackend(t *testing.T) sqlBackend {
	path := filepath.Join(t.TempDir(), "ids.db")
	open := func(params string) func(t *testing.T) *sql.DB {
		return func(t *testing.T) *sql.DB {
			db, err := sql.Open("sqlite", "file:"+path+"?"+params)
			require.NoError(t, err)
			db.SetMaxOpenConns(1)
			t.Cleanup(func() { db.Close() })
			return db
		}
	}
	return sqlBackend{
		dialect:      verify.DialectSQLite,
		open:         open(sqliteParams),
		openUnsynced: open(strings.Replace(sqliteParams, "synchronous(FULL)", "synchronous(OFF)", 1)),
	}
}

// postgresBackend is a fresh database on a server of the test's.
func postgresBackend(t *testing.T) sqlBackend {
	pg := testenv.StartPostgres(t)
	url := pg.CreateDatabase(t, "verify")
	open := func(url string) func(t *testing.T) *sql.DB {
		return func(t *testing.T) *sql.DB {
			db, err := sql.Open("pgx", url)
			require.NoError(t, err)
			// Keep the connections of the concurrent tests rather than
			// open new ones each time, as a server's pool does.
			db.SetMaxIdleConns(40)
			t.Cleanup(func() { db.Close() })
			return db
		}
	}
	return sqlBackend{
		dialect: verify.DialectPostgres,
		open:    open(url),
		// pgx passes a parameter it does not know to the server.
		openUnsynced: open(url + "&synchronous_commit=off"),
	}
}

func TestSQLStoreSQLite(t *testing.T)   { testSQLStore(t, sqliteBackend(t)) }
func TestSQLStorePostgres(t *testing.T) { testSQLStore(t, postgresBackend(t)) }

// testSQLStore runs every SQLStore test on b, each in a table of its own.
func testSQLStore(t *testing.T, b sqlBackend) {
	var tables atomic.Int32
	// newStore returns a store on db in a new table, created, and the
	// table's name.
	newStore := func(t *testing.T, db *sql.DB, now func() time.Time) (*verify.SQLStore, string) {
		table := "ids_" + strconv.Itoa(int(tables.Add(1)))
		s, err := verify.NewSQLStore(db, verify.SQLStoreOptions{Dialect: b.dialect, Table: table, Now: now})
		require.NoError(t, err)
		require.NoError(t, s.CreateTable(t.Context()))
		return s, table
	}

	t.Run("Contract", func(t *testing.T) {
		db := b.open(t)
		verifytest.TestStore(t, func(t *testing.T) verify.Store {
			s, _ := newStore(t, db, nil)
			return s
		})
		verifytest.TestStoreWallClock(t, func(t *testing.T, now func() time.Time) verify.Store {
			s, _ := newStore(t, db, now)
			return s
		})
	})

	t.Run("ConcurrentReserveAcrossHandles", func(t *testing.T) {
		// Three handles, each with its own connections, as three
		// processes on one database have.
		first, table := newStore(t, b.open(t), nil)
		stores := []*verify.SQLStore{first}
		for range 2 {
			s, err := verify.NewSQLStore(b.open(t), verify.SQLStoreOptions{Dialect: b.dialect, Table: table})
			require.NoError(t, err)
			stores = append(stores, s)
		}
		for round := range 10 {
			key := "evt_" + strconv.Itoa(round)
			var news, inFlight atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range 30 {
				wg.Go(func() {
					<-start
					_, st, err := stores[i%len(stores)].Reserve(t.Context(), key, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					switch st {
					case verify.StateNew:
						news.Add(1)
					case verify.StateInFlight:
						inFlight.Add(1)
					}
				})
			}
			close(start)
			wg.Wait()
			require.Equal(t, int32(1), news.Load(), "round %d: exactly one StateNew", round)
			require.Equal(t, int32(29), inFlight.Load(), "round %d", round)
		}
	})

	t.Run("OneHolderAtATime", func(t *testing.T) {
		// Goroutines on two handles take one key in turn, releasing it at
		// once, so that it changes hands during many Reserve calls. Never
		// may two hold it, and no call may fail for it.
		first, table := newStore(t, b.open(t), nil)
		second, err := verify.NewSQLStore(b.open(t), verify.SQLStoreOptions{Dialect: b.dialect, Table: table})
		require.NoError(t, err)
		stores := []*verify.SQLStore{first, second}
		var holders, turns atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				s := stores[i%2]
				for range 150 {
					r, st, err := s.Reserve(t.Context(), "evt_1", time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if st != verify.StateNew {
						continue
					}
					if n := holders.Add(1); n != 1 {
						t.Errorf("%d holders at once", n)
					}
					turns.Add(1)
					holders.Add(-1)
					if err := s.Release(t.Context(), r); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		assert.Greater(t, turns.Load(), int32(8), "the key changed hands")
	})

	t.Run("OneHandleCannotTouchAnothersReservation", func(t *testing.T) {
		ctx := t.Context()
		a, table := newStore(t, b.open(t), nil)
		other, err := verify.NewSQLStore(b.open(t), verify.SQLStoreOptions{Dialect: b.dialect, Table: table})
		require.NoError(t, err)
		ra, _, err := a.Reserve(ctx, "evt_1", 50*time.Millisecond)
		require.NoError(t, err)
		var rb verify.Reservation
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			r, st, err := other.Reserve(ctx, "evt_1", time.Minute)
			require.NoError(c, err)
			require.Equal(c, verify.StateNew, st, "a's reservation has not expired")
			rb = r
		}, 20*time.Second, 10*time.Millisecond)
		assert.ErrorIs(t, a.Done(ctx, ra, time.Hour), verify.ErrReservationLost)
		require.NoError(t, a.Release(ctx, ra))
		_, st, err := a.Reserve(ctx, "evt_1", time.Minute)
		require.NoError(t, err)
		assert.Equal(t, verify.StateInFlight, st, "the other handle still holds it")
		require.NoError(t, other.Done(ctx, rb, time.Minute))
	})

	t.Run("ConcurrentCreateTable", func(t *testing.T) {
		// Instances starting together, each creating the table.
		table := "created_together"
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 8 {
			s, err := verify.NewSQLStore(b.open(t), verify.SQLStoreOptions{Dialect: b.dialect, Table: table})
			require.NoError(t, err)
			wg.Go(func() {
				<-start
				assert.NoError(t, s.CreateTable(t.Context()))
			})
		}
		close(start)
		wg.Wait()
		s, err := verify.NewSQLStore(b.open(t), verify.SQLStoreOptions{Dialect: b.dialect, Table: table})
		require.NoError(t, err)
		require.NoError(t, s.CreateTable(t.Context()), "again, on the existing table")
		_, st, err := s.Reserve(t.Context(), "evt_1", time.Minute)
		require.NoError(t, err)
		assert.Equal(t, verify.StateNew, st)
	})

	t.Run("Expiry", func(t *testing.T) {
		ctx := t.Context()
		clk := &fakeClock{now: mwNow}
		s, _ := newStore(t, b.open(t), clk.Now)
		r, _, err := s.Reserve(ctx, "evt_1", time.Minute)
		require.NoError(t, err)
		clk.Add(time.Minute - time.Millisecond)
		_, st, err := s.Reserve(ctx, "evt_1", time.Minute)
		require.NoError(t, err)
		assert.Equal(t, verify.StateInFlight, st, "held until its ttl")
		clk.Add(time.Millisecond)
		assert.ErrorIs(t, s.Done(ctx, r, time.Minute), verify.ErrReservationLost, "expired at its ttl")
		r, st, err = s.Reserve(ctx, "evt_1", time.Minute)
		require.NoError(t, err)
		assert.Equal(t, verify.StateNew, st, "free at its ttl")

		// A ttl below a millisecond is rounded up, not down to nothing.
		_, _, err = s.Reserve(ctx, "evt_tiny", time.Microsecond)
		require.NoError(t, err)
		_, st, err = s.Reserve(ctx, "evt_tiny", time.Minute)
		require.NoError(t, err)
		assert.Equal(t, verify.StateInFlight, st)

		require.NoError(t, s.Done(ctx, r, time.Hour))
		clk.Add(time.Hour - time.Millisecond)
		_, st, _ = s.Reserve(ctx, "evt_1", time.Minute)
		assert.Equal(t, verify.StateDone, st)
		clk.Add(time.Millisecond)
		_, st, _ = s.Reserve(ctx, "evt_1", time.Minute)
		assert.Equal(t, verify.StateNew, st)
	})

	t.Run("WallClockStepBack", func(t *testing.T) {
		// A SQLStore keeps expiries as wall-clock instants, the clock the
		// Verifier checks timestamps by: after the retention has passed
		// and the clock has stepped back by more than the tolerance, the
		// replay's timestamp is accepted again, and its id is still held.
		clk := &fakeClock{now: mwNow}
		s, _ := newStore(t, b.open(t), clk.Now)
		secret, err := verify.NewSecret()
		require.NoError(t, err)
		v, err := verify.NewVerifier(verify.Options{Keys: []verify.Key{{Secret: secret}}, Now: clk.Now, Store: s, OnError: func(*http.Request, error) {}})
		require.NoError(t, err)
		processed := 0
		h := v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { processed++ }))
		captured := verifytest.SignedHeaders(secret, "evt_captured", mwNow, []byte(`{}`))
		send := func() *httptest.ResponseRecorder {
			req := verifytest.NewRequest(secret, "evt_captured", mwNow, "/", []byte(`{}`))
			req.Header = captured.Clone()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		require.Equal(t, http.StatusOK, send().Code)
		clk.Add(2*verify.DefaultTolerance + time.Second)
		clk.Add(-verify.DefaultTolerance - time.Minute)
		rec := send()
		assert.Equal(t, "true", rec.Header().Get(verify.DuplicateHeader), "the replay is a duplicate")
		assert.Equal(t, 1, processed)
	})

	t.Run("DeleteExpired", func(t *testing.T) {
		ctx := t.Context()
		clk := &fakeClock{now: mwNow}
		db := b.open(t)
		s, table := newStore(t, db, clk.Now)
		for i := range 10 {
			r, _, err := s.Reserve(ctx, "evt_"+strconv.Itoa(i), time.Duration(i+1)*time.Minute)
			require.NoError(t, err)
			if i%2 == 0 {
				require.NoError(t, s.Done(ctx, r, time.Duration(i+1)*time.Minute))
			}
		}
		clk.Add(5 * time.Minute) // evt_0 … evt_4 have expired
		n, err := s.DeleteExpired(ctx, 3)
		require.NoError(t, err)
		assert.Equal(t, int64(3), n, "bounded by limit")
		assert.Equal(t, 7, countRows(t, db, table))
		n, err = s.DeleteExpired(ctx, 100)
		require.NoError(t, err)
		assert.Equal(t, int64(2), n)
		n, err = s.DeleteExpired(ctx, 100)
		require.NoError(t, err)
		assert.Zero(t, n)
		for i := range 10 {
			_, st, err := s.Reserve(ctx, "evt_"+strconv.Itoa(i), time.Minute)
			require.NoError(t, err)
			if i < 5 {
				assert.Equal(t, verify.StateNew, st, "evt_%d expired", i)
			} else {
				assert.NotEqual(t, verify.StateNew, st, "evt_%d is kept", i)
			}
		}
		_, err = s.DeleteExpired(ctx, 0)
		assert.Error(t, err)
	})

	t.Run("ReserveCleansUp", func(t *testing.T) {
		clk := &fakeClock{now: mwNow}
		db := b.openUnsynced(t)
		s, table := newStore(t, db, clk.Now)
		// Reserve calls 1…1500; the 1000th deletes nothing, as nothing
		// has expired yet.
		reserveMany(t, s, "old_", 1500)
		assert.Equal(t, 1500, countRows(t, db, table))
		clk.Add(2 * time.Minute)
		// Calls 1501…2000: the 2000th deletes the 1500 expired rows.
		reserveMany(t, s, "new_", 500)
		assert.Equal(t, 500, countRows(t, db, table))
	})

	t.Run("Ping", func(t *testing.T) {
		db := b.open(t)
		s, _ := newStore(t, db, nil)
		require.NoError(t, s.Ping(t.Context()), "empty table")
		_, _, err := s.Reserve(t.Context(), "evt_1", time.Minute)
		require.NoError(t, err)
		require.NoError(t, s.Ping(t.Context()))

		missing, err := verify.NewSQLStore(db, verify.SQLStoreOptions{Dialect: b.dialect, Table: "not_created"})
		require.NoError(t, err)
		assert.Error(t, missing.Ping(t.Context()), "no table")
	})

	t.Run("TablesApart", func(t *testing.T) {
		ctx := t.Context()
		db := b.open(t)
		s1, _ := newStore(t, db, nil)
		s2, _ := newStore(t, db, nil)
		// A table whose name is a keyword of both dialects.
		kw, err := verify.NewSQLStore(db, verify.SQLStoreOptions{Dialect: b.dialect, Table: "select"})
		require.NoError(t, err)
		require.NoError(t, kw.CreateTable(ctx))
		for _, s := range []*verify.SQLStore{s1, s2, kw} {
			_, st, err := s.Reserve(ctx, "evt_1", time.Minute)
			require.NoError(t, err)
			assert.Equal(t, verify.StateNew, st)
		}
	})

	t.Run("ErrorsHoldNoToken", func(t *testing.T) {
		db := b.open(t)
		s, table := newStore(t, db, nil)
		r, _, err := s.Reserve(t.Context(), "evt_1", time.Minute)
		require.NoError(t, err)
		require.NoError(t, db.Close())
		for name, err := range map[string]error{
			"Done":    s.Done(t.Context(), r, time.Minute),
			"Release": s.Release(t.Context(), r),
		} {
			require.Error(t, err, name)
			assert.NotContains(t, err.Error(), r.Token, name)
			assert.Contains(t, err.Error(), table, name)
		}
		_, _, err = s.Reserve(t.Context(), "evt_2", time.Minute)
		assert.Error(t, err)
	})

	t.Run("Middleware", func(t *testing.T) {
		// Two instances of a receiver on one database: the sender's retry
		// reaching the other is answered as a duplicate.
		first, table := newStore(t, b.open(t), nil)
		second, err := verify.NewSQLStore(b.open(t), verify.SQLStoreOptions{Dialect: b.dialect, Table: table})
		require.NoError(t, err)
		secret, err := verify.NewSecret()
		require.NoError(t, err)
		var calls atomic.Int32
		var hs []http.Handler
		for _, s := range []verify.Store{first, second} {
			v, err := verify.NewVerifier(verify.Options{Keys: []verify.Key{{Secret: secret}}, Store: s})
			require.NoError(t, err)
			hs = append(hs, v.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) })))
		}
		body := []byte(`{"type":"signal"}`)
		for i, h := range hs {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, verifytest.NewRequest(secret, "evt_1", time.Now(), "/", body))
			assert.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, i == 1, rec.Header().Get(verify.DuplicateHeader) == "true", "instance %d", i)
		}
		assert.Equal(t, int32(1), calls.Load(), "processed once across both instances")
	})
}

// reserveMany reserves n keys, prefix followed by a number, for a minute.
func reserveMany(t *testing.T, s *verify.SQLStore, prefix string, n int) {
	t.Helper()
	for i := range n {
		_, st, err := s.Reserve(t.Context(), prefix+strconv.Itoa(i), time.Minute)
		require.NoError(t, err)
		require.Equal(t, verify.StateNew, st)
	}
}

func countRows(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM "`+table+`"`).Scan(&n))
	return n
}

func TestNewSQLStoreOptions(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:") // opening connects to nothing yet
	require.NoError(t, err)
	defer db.Close()

	for _, table := range []string{
		"", // DefaultSQLTable
		"ids", "_ids", "ids_2", "select",
		strings.Repeat("x", 52), // the longest: its index name fits Postgres's 63 bytes
	} {
		_, err := verify.NewSQLStore(db, verify.SQLStoreOptions{Dialect: verify.DialectSQLite, Table: table})
		assert.NoError(t, err, "table %q", table)
	}
	for _, table := range []string{
		"Ids", "2ids", "ids-x", "ids x", `ids"`, "ids;drop", "schema.ids", "ïds",
		strings.Repeat("x", 53),
	} {
		_, err := verify.NewSQLStore(db, verify.SQLStoreOptions{Dialect: verify.DialectSQLite, Table: table})
		assert.ErrorIs(t, err, verify.ErrInvalidOptions, "table %q", table)
	}
	for _, d := range []verify.SQLDialect{0, verify.DialectPostgres + 1, -1} {
		_, err := verify.NewSQLStore(db, verify.SQLStoreOptions{Dialect: d})
		assert.ErrorIs(t, err, verify.ErrInvalidOptions, "dialect %d", d)
	}
	_, err = verify.NewSQLStore(nil, verify.SQLStoreOptions{Dialect: verify.DialectSQLite})
	assert.ErrorIs(t, err, verify.ErrInvalidOptions, "nil db")
}

// A receiver on one machine keeps its ids in SQLite, so that a restart
// does not let a replay through. With several instances, open Postgres
// instead (driver "pgx" of github.com/jackc/pgx/v5/stdlib, DialectPostgres).
func ExampleNewSQLStore() {
	dir, err := os.MkdirTemp("", "stairhook-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "ids.db")+
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	ctx := context.Background()
	store, err := verify.NewSQLStore(db, verify.SQLStoreOptions{Dialect: verify.DialectSQLite})
	if err != nil {
		panic(err)
	}
	if err := store.CreateTable(ctx); err != nil {
		panic(err)
	}
	// Give it to the verifier: verify.Options{Keys: keys, Store: store}.
	// What the Middleware does with it:
	r, st, _ := store.Reserve(ctx, "evt_1", time.Minute)
	fmt.Println(st)
	_, st, _ = store.Reserve(ctx, "evt_1", time.Minute) // a concurrent retry
	fmt.Println(st)
	_ = store.Done(ctx, r, 24*time.Hour) // after a 2xx
	_, st, _ = store.Reserve(ctx, "evt_1", time.Minute)
	fmt.Println(st)
	// Output:
	// new
	// in-flight
	// done
}
