package testenv

import (
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Redis is a redis-server of one test, on a free loopback port, in a
// temporary directory. Its append-only file is fsynced on every write, so
// what it acknowledged survives Stop (a SIGKILL) and Start.
type Redis struct {
	// Addr is "127.0.0.1:port".
	Addr string

	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

// StartRedis starts a redis-server, or skips the test when there is none
// (fails under STAIRHOOK_E2E). It is killed when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r := &Redis{
		t:    t,
		bin:  Binary(t, "redis-server", "apt-get install -y redis-server"),
		dir:  t.TempDir(),
		port: FreePort(t),
	}
	r.Addr = Addr(r.port)
	r.Start()
	return r
}

// URL returns the redis:// URL of database 0.
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

// Start starts the server again after Stop, on the same port and data.
func (r *Redis) Start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", r.dir)
	Start(r.t, r.cmd)
	WaitTCP(r.t, r.Addr, 10*time.Second)
}

// Stop kills the server by its process id and waits for it to exit.
func (r *Redis) Stop() {
	r.t.Helper()
	if err := r.cmd.Process.Kill(); err != nil {
		r.t.Fatalf("stop redis-server: %v", err)
	}
	_ = r.cmd.Wait()
}
