package testenv

import (
	"database/sql"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openPostgres opens url with pgx, closed when the test ends.
func openPostgres(t *testing.T, url string) *sql.DB {
	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestPostgresRestartKeepsPortAndData(t *testing.T) {
	pg := StartPostgres(t)
	addr, url := pg.Addr, pg.URL()
	assert.Equal(t, "postgres://postgres@"+addr+"/postgres?sslmode=disable", url)
	db := openPostgres(t, url)
	ctx := t.Context()
	_, err := db.ExecContext(ctx, `CREATE TABLE t (v TEXT)`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO t VALUES ('committed')`)
	require.NoError(t, err)

	pg.Stop()
	require.Error(t, db.PingContext(ctx), "stopped")
	_, err = net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err, "nothing listens on the port")

	pg.Start()
	assert.Equal(t, addr, pg.Addr, "clients reconnect to the same address")
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		var v string
		assert.NoError(c, db.QueryRowContext(ctx, `SELECT v FROM t`).Scan(&v))
		assert.Equal(c, "committed", v, "committed rows survive an immediate shutdown")
	}, 20*time.Second, 50*time.Millisecond)
}

func TestPostgresCreateDatabase(t *testing.T) {
	pg := StartPostgres(t)
	ctx := t.Context()
	a := openPostgres(t, pg.CreateDatabase(t, "db_a"))
	b := openPostgres(t, pg.CreateDatabase(t, "db_b"))
	_, err := a.ExecContext(ctx, `CREATE TABLE only_in_a (v INT)`)
	require.NoError(t, err)
	_, err = b.ExecContext(ctx, `SELECT 1 FROM only_in_a`)
	require.Error(t, err, "databases are apart")
	var name string
	require.NoError(t, b.QueryRowContext(ctx, `SELECT current_database()`).Scan(&name))
	assert.Equal(t, "db_b", name)
}

func TestPostgresRemovesItsFilesAndProcess(t *testing.T) {
	var dir string
	var proc *Process
	t.Run("server", func(t *testing.T) {
		pg := StartPostgres(t)
		dir, proc = pg.dir, pg.proc
		require.DirExists(t, pg.data())
	})
	select {
	case <-proc.Exited():
	default:
		t.Fatal("postgres still runs after its test")
	}
	assert.NoDirExists(t, dir)
}

// postgresPortsFrom makes the first Start take the given ports, then free
// ones.
func postgresPortsFrom(t *testing.T, ports ...int) {
	t.Cleanup(func() { postgresPort = FreePort })
	postgresPort = func(tb testing.TB) int {
		if len(ports) == 0 {
			return FreePort(tb)
		}
		p := ports[0]
		ports = ports[1:]
		return p
	}
}

func TestPostgresStartSkipsTakenPort(t *testing.T) {
	taken := squat(t)
	postgresPortsFrom(t, taken)
	pg := StartPostgres(t)
	assert.NotEqual(t, Addr(taken), pg.Addr)
	var port string
	require.NoError(t, openPostgres(t, pg.URL()).QueryRowContext(t.Context(), `SHOW port`).Scan(&port))
	assert.Equal(t, strconv.Itoa(pg.port), port, "the server answering is the one started")
}

func TestPostgresRestartOnTakenPortFails(t *testing.T) {
	pg := StartPostgres(t)
	pg.Stop()
	l, err := net.Listen("tcp", pg.Addr)
	require.NoError(t, err)
	defer l.Close()
	f := &fatalTB{TB: t}
	pg.t = f
	done := make(chan struct{})
	go func() {
		defer close(done)
		pg.Start()
	}()
	<-done
	assert.Equal(t, "restart postgres on %s: %v", f.msg, "no silent move to another port")
}

func TestPostgresRunsAsPostgresUserUnderRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the tests do not run as root")
	}
	pg := StartPostgres(t)
	st, err := os.Stat(pg.data())
	require.NoError(t, err)
	assert.Equal(t, pg.as.Uid, st.Sys().(*syscall.Stat_t).Uid, "the data belongs to the postgres user")
}
