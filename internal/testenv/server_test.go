package testenv

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
)

// TestStartServerRetriesOnATakenPort holds the first port handed out, so a
// child that binds it fails; StartServer must notice the early exit and
// move to new ports.
func TestStartServerRetriesOnATakenPort(t *testing.T) {
	python, ok := LookBinary("python3")
	if !ok {
		t.Skip("python3 not found")
	}
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
		return exec.Command(python, "-c", `import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(60)`, strconv.Itoa(p[0]))
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
