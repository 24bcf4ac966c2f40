package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestStartServerRetriesOnATakenPort holds the first port handed out, so a
// child that binds it fails; StartServer must notice the early exit and
// move to new ports.
//
// The child is this test binary (see TestHelperBindPort): it binds within
// milliseconds of its start, well inside StartServer's liveness window,
// where an interpreter may take longer than the window to start (a
// pyenv shim for python3 takes 0.3 to 0.8 s here) and the taken port would
// go unnoticed.
func TestStartServerRetriesOnATakenPort(t *testing.T) {
	var held net.Listener
	attempts := 0
	ports, _ := StartServer(t, 1, func(p []int) *exec.Cmd {
		attempts++
		if attempts == 1 {
			// Someone else takes the port between FreePort and the bind.
			l, err := net.Listen("tcp", Addr(p[0]))
			if err != nil {
				t.Fatal(err)
			}
			held = l
			t.Cleanup(func() { l.Close() })
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBindPort$")
		cmd.Env = append(os.Environ(), bindPortEnv+"="+strconv.Itoa(p[0]))
		return cmd
	}, func(p []int) error {
		c, err := net.Dial("tcp", Addr(p[0]))
		if err != nil {
			return err
		}
		return c.Close()
	})
	if attempts < 2 {
		t.Fatalf("started %d times; the taken port went unnoticed", attempts)
	}
	if held != nil && fmt.Sprint(ports[0]) == fmt.Sprint(held.Addr().(*net.TCPAddr).Port) {
		t.Fatalf("returned the port someone else holds: %d", ports[0])
	}
}

// bindPortEnv makes TestHelperBindPort a child process that binds the port
// it names.
const bindPortEnv = "STAIRHOOK_TESTENV_BIND_PORT"

// TestHelperBindPort is the child of TestStartServerRetriesOnATakenPort:
// with bindPortEnv set it listens on that loopback port for a minute, and
// exits 1 at once if the port is taken. Without it, it does nothing.
func TestHelperBindPort(t *testing.T) {
	port := os.Getenv(bindPortEnv)
	if port == "" {
		t.Skip("a child process of TestStartServerRetriesOnATakenPort")
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		os.Exit(1)
	}
	defer l.Close()
	time.Sleep(time.Minute)
	os.Exit(0)
}
