package testenv

import (
	"errors"
	"fmt"
	"os/exec"
	"testing"
	"time"
)

// StartServer starts a server process on nports free loopback ports and
// returns them, and the process, once ready reports that they answer and
// the process is still running. A free port is only free until someone binds it, so when the
// process exits early (another process took a port) or never gets ready,
// it is killed and started again on new ports, up to three times. The
// process is killed by its id when the test ends.
func StartServer(t testing.TB, nports int, command func(ports []int) *exec.Cmd, ready func(ports []int) error) ([]int, *Process) {
	t.Helper()
	var errs []error
	for range 3 {
		ports := make([]int, nports)
		for i := range ports {
			ports[i] = FreePort(t)
		}
		p, err := tryServer(t, ports, command(ports), ready)
		if err == nil {
			return ports, p
		}
		errs = append(errs, err)
	}
	t.Fatalf("server did not start: %v", errors.Join(errs...))
	return nil, nil
}

func tryServer(t testing.TB, ports []int, cmd *exec.Cmd, ready func([]int) error) (*Process, error) {
	out := &tailBuffer{max: 4096}
	if cmd.Stdout == nil {
		cmd.Stdout = out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = out
	}
	p, err := StartProcess(t, cmd)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s on ports %v exited early (%v): %s", cmd.Path, ports, p.err, out)
		default:
		}
		if err = ready(ports); err == nil {
			// A port held by someone else may answer before this process
			// reaches its bind and exits: make sure it is still running.
			select {
			case <-p.done:
				return nil, fmt.Errorf("%s on ports %v exited after its ports answered (%v): %s", cmd.Path, ports, p.err, out)
			case <-time.After(150 * time.Millisecond):
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("%s on ports %v not ready in 20 s: %v: %s", cmd.Path, ports, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
