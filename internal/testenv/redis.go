package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisStartTimeout bounds one attempt to bring redis-server up, generous
// for a loaded machine: replaying an fsynced append-only file is slow there.
const redisStartTimeout = 20 * time.Second

// redisFirstStartAttempts is how many free ports the first Start tries: the
// port FreePort found may be taken by another process before redis-server
// binds it.
const redisFirstStartAttempts = 3

// errPortTaken means another process answers on the port the server was
// meant to bind.
var errPortTaken = errors.New("port taken by another process")

// redisPort picks the port of a first Start; tests replace it to hand out a
// taken port.
var redisPort = FreePort

// Redis is a redis-server of one test, on a free loopback port, in a
// temporary directory. Its append-only file is fsynced on every write, so
// what it acknowledged survives Stop (a SIGKILL) and Start.
type Redis struct {
	// Addr is "127.0.0.1:port". It is fixed once StartRedis returns:
	// Start after Stop reuses it, as clients reconnect to it.
	Addr string

	t       testing.TB
	bin     string
	dir     string
	port    int
	proc    *Process
	started bool
}

// StartRedis starts a redis-server, or skips the test when there is none
// (fails under STAIRHOOK_E2E). It is killed when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	r := &Redis{
		t:   t,
		bin: Binary(t, "redis-server", "apt-get install -y redis-server"),
		dir: t.TempDir(),
	}
	r.Start()
	return r
}

// URL returns the redis:// URL of database 0.
func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

// Start starts the server: the first time on a free port (trying another
// one if that was taken meanwhile), after Stop on the same port and data.
// It returns once this very server answers on Addr.
func (r *Redis) Start() {
	r.t.Helper()
	if r.started {
		if err := r.try(); err != nil {
			r.t.Fatalf("restart redis-server on %s: %v", r.Addr, err)
		}
		return
	}
	var errs []error
	for range redisFirstStartAttempts {
		r.port = redisPort(r.t)
		r.Addr = Addr(r.port)
		err := r.try()
		if err == nil {
			r.started = true
			return
		}
		errs = append(errs, fmt.Errorf("%s: %w", r.Addr, err))
	}
	r.t.Fatalf("start redis-server: %v", errors.Join(errs...))
}

// try starts the server once on r.port and waits until it answers there;
// on failure the process is gone when it returns.
func (r *Redis) try() error {
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", r.dir)
	log := &tailBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = log, log
	p, err := StartProcess(r.t, cmd)
	if err != nil {
		return err
	}
	r.proc = p
	deadline := time.Now().Add(redisStartTimeout)
	for {
		err := redisIsPid(r.Addr, cmd.Process.Pid)
		if err == nil {
			return nil
		}
		if errors.Is(err, errPortTaken) {
			p.kill()
			return err
		}
		select {
		case <-p.done:
			return fmt.Errorf("redis-server exited early (%v): %s", p.err, log)
		default:
		}
		if time.Now().After(deadline) {
			p.kill()
			return fmt.Errorf("not answering within %v: %v", redisStartTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server by its process id and waits for it to exit.
func (r *Redis) Stop() {
	r.t.Helper()
	select {
	case <-r.proc.done:
		r.t.Fatalf("stop redis-server: it had already exited: %v", r.proc.err)
	default:
	}
	r.proc.kill()
}

// redisIsPid asks the server on addr for its process id (INFO server) and
// reports nil when it is pid, errPortTaken when it is another server, and
// another error while nothing usable answers yet.
func redisIsPid(addr string, pid int) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, "*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"); err != nil {
		return err
	}
	br := bufio.NewReader(io.LimitReader(c, 64<<10))
	head, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	head = strings.TrimRight(head, "\r\n")
	if !strings.HasPrefix(head, "$") {
		// "-LOADING ..." while the append-only file is replayed.
		return fmt.Errorf("INFO answered %.80q", head)
	}
	n, err := strconv.Atoi(head[1:])
	if err != nil || n < 0 || n > 60<<10 {
		return fmt.Errorf("INFO answered %.80q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "process_id:"); ok {
			if v == strconv.Itoa(pid) {
				return nil
			}
			return fmt.Errorf("%w (redis-server pid %s, ours %d)", errPortTaken, v, pid)
		}
	}
	return errors.New("INFO server has no process_id")
}
