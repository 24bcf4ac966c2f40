package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// postgresInstall is how .ci/run installs the server.
const postgresInstall = "apt-get install -y postgresql"

// postgresStartTimeout bounds one attempt to bring postgres up, generous
// for a loaded machine: after Stop it replays the write-ahead log first.
const postgresStartTimeout = 30 * time.Second

// postgresStopTimeout bounds the wait for an immediate shutdown before the
// server is killed.
const postgresStopTimeout = 10 * time.Second

// postgresPort picks the port of a first Start; tests replace it to hand
// out a taken port.
var postgresPort = FreePort

// Postgres is a PostgreSQL server of one test, on a free loopback port,
// with a data directory of its own and trust authentication for the user
// postgres. It runs with fsync on, so what it committed survives Stop and
// Start.
type Postgres struct {
	// Addr is "127.0.0.1:port". It is fixed once StartPostgres returns:
	// Start after Stop reuses it, as clients reconnect to it.
	Addr string

	t       testing.TB
	bin     string // the server's binaries: $(pg_config --bindir)
	dir     string // the Unix socket's directory; the data is in dir/data
	port    int
	as      *syscall.Credential // the postgres user's, when the test runs as root
	proc    *Process
	started bool
}

// StartPostgres creates a database cluster and starts a server on it, or
// skips the test when pg_config or the server binaries in its --bindir
// are missing (fails under STAIRHOOK_E2E). The server refuses to run as
// root, so a test running as root runs it as the postgres user. It is
// stopped, and its files removed, when the test ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	pgConfig := Binary(t, "pg_config", postgresInstall)
	out, err := exec.Command(pgConfig, "--bindir").Output()
	if err != nil {
		// Debian's pg_config fails when neither a server nor libpq-dev is
		// installed.
		Missing(t, "pg_config --bindir ("+err.Error()+")", postgresInstall)
	}
	p := &Postgres{t: t, bin: strings.TrimSpace(string(out))}
	for _, name := range []string{"initdb", "postgres", "pg_isready", "createdb"} {
		if _, err := exec.LookPath(filepath.Join(p.bin, name)); err != nil {
			Missing(t, filepath.Join(p.bin, name), postgresInstall)
		}
	}
	if os.Geteuid() == 0 {
		p.as = postgresUser(t)
	}

	// Not t.TempDir: its parent is private to the user running the test,
	// and its path may be too long for a Unix socket (107 bytes).
	dir, err := os.MkdirTemp("", "stairhook-pg-")
	if err != nil {
		t.Fatalf("postgres directory: %v", err)
	}
	// Registered before the server starts, so it runs after the server is
	// stopped.
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove the postgres directory: %v", err)
		}
	})
	if p.as != nil {
		if err := os.Chown(dir, int(p.as.Uid), int(p.as.Gid)); err != nil {
			t.Fatalf("postgres directory: %v", err)
		}
	}
	p.dir = dir

	// --no-sync: a crash of the machine during the test need not be
	// survived; the server itself runs with fsync on.
	initdb := p.command("initdb", "-D", p.data(), "-A", "trust", "-U", "postgres",
		"-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
	p.Start()
	return p
}

// postgresUser returns the credential of the OS user postgres, which the
// Debian package creates, or skips the test (fails under STAIRHOOK_E2E).
func postgresUser(t testing.TB) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		Missing(t, "the OS user postgres, to run the server as while the tests run as root", postgresInstall)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("user postgres: %v", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}

// URL returns the URL of the database postgres, for the user postgres.
func (p *Postgres) URL() string { return p.url("postgres") }

func (p *Postgres) url(database string) string {
	return "postgres://postgres@" + p.Addr + "/" + database + "?sslmode=disable"
}

// CreateDatabase creates the database name and returns its URL, so that
// tests sharing a server keep their data apart. The name is lower-case
// letters, digits and underscores.
func (p *Postgres) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	if !plainIdentifier(name) {
		t.Fatalf("CreateDatabase(%q): use lower-case letters, digits and underscores", name)
	}
	cmd := exec.Command(filepath.Join(p.bin, "createdb"), "-h", p.dir, "-p", strconv.Itoa(p.port), "-U", "postgres", name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("createdb %s: %v: %s", name, err, out)
	}
	return p.url(name)
}

func plainIdentifier(s string) bool {
	if s == "" || len(s) > 63 || ('0' <= s[0] && s[0] <= '9') {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Start starts the server: the first time on a free port (trying another
// one if that was taken meanwhile), after Stop on the same port and data.
// It returns once the server accepts connections.
func (p *Postgres) Start() {
	p.t.Helper()
	if p.started {
		if err := p.try(); err != nil {
			p.t.Fatalf("restart postgres on %s: %v", p.Addr, err)
		}
		return
	}
	var errs []error
	for range 3 {
		p.port = postgresPort(p.t)
		p.Addr = Addr(p.port)
		err := p.try()
		if err == nil {
			p.started = true
			return
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.Addr, err))
	}
	p.t.Fatalf("start postgres: %v", errors.Join(errs...))
}

// try starts the server once on p.port and waits until it accepts
// connections; on failure the process is gone when it returns. Readiness
// is asked on the Unix socket in p.dir, which no other server can have
// made, and postgres binds its TCP address before it makes the socket,
// exiting when the address is taken: so a ready answer means the port is
// this server's.
func (p *Postgres) try() error {
	cmd := p.command("postgres", "-D", p.data(), "-p", strconv.Itoa(p.port), "-k", p.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=on")
	log := &tailBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = log, log
	proc, err := StartProcess(p.t, cmd)
	if err != nil {
		return err
	}
	p.proc = proc
	// Runs before StartProcess's kill: a postmaster killed outright leaves
	// its children running for a while, in the directory to be removed.
	p.t.Cleanup(func() { p.shutdown(proc) })
	deadline := time.Now().Add(postgresStartTimeout)
	for {
		select {
		case <-proc.done:
			return fmt.Errorf("postgres exited early (%v): %s", proc.err, log)
		default:
		}
		err := p.ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			p.shutdown(proc)
			return fmt.Errorf("not accepting connections within %v: %v: %s", postgresStartTimeout, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready runs pg_isready on the server's Unix socket.
func (p *Postgres) ready() error {
	cmd := exec.Command(filepath.Join(p.bin, "pg_isready"), "-q", "-h", p.dir, "-p", strconv.Itoa(p.port),
		"-U", "postgres", "-d", "postgres", "-t", "2")
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		// 1: rejecting connections (starting up), 2: no answer.
		return fmt.Errorf("pg_isready: exit status %d", exit.ExitCode())
	}
	return err
}

// Stop shuts the server down as a crash would (immediate shutdown, SIGQUIT
// by process id: no checkpoint, so Start replays the write-ahead log) and
// waits until it and its children have exited.
func (p *Postgres) Stop() {
	p.t.Helper()
	select {
	case <-p.proc.done:
		p.t.Fatalf("stop postgres: it had already exited: %v", p.proc.err)
	default:
	}
	p.shutdown(p.proc)
}

// shutdown sends SIGQUIT, on which the postmaster stops its children and
// then exits, and kills it by process id if it has not within
// postgresStopTimeout.
func (p *Postgres) shutdown(proc *Process) {
	_ = proc.Signal(syscall.SIGQUIT) // os.ErrProcessDone if it exited already
	select {
	case <-proc.done:
	case <-time.After(postgresStopTimeout):
		proc.kill()
	}
}

// data is the cluster's data directory.
func (p *Postgres) data() string { return filepath.Join(p.dir, "data") }

// command runs one of the server's binaries in p.dir, as the postgres user
// when the test runs as root.
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.Dir = p.dir
	if p.as != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.as}
	}
	return cmd
}
