package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/verify"
)

// Slow bodies: what an unauthenticated client can hold by declaring a big
// body, sending all of it but one byte, and stalling.
const (
	// stalledConns is how many connections stall at once.
	stalledConns = 200
	// stalledBody is the body each one declares: the default cap.
	stalledBody = 1 << 20
	// maxStalledGrowth is the RSS growth the server may show while they
	// stall.
	maxStalledGrowth = 64 << 20
	// stalledReadTimeout is the ReadTimeout of both servers under test:
	// every stalled connection must be closed by then (plus slack).
	stalledReadTimeout = 30 * time.Second
)

// TestSlowBodies stalls stalledConns connections one byte short of a
// 1 MiB body against `stairhook serve` and against examples/nethttp, and
// checks that the server's RSS grows by less than maxStalledGrowth and
// that the read timeout closes every stalled connection.
func TestSlowBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the servers' 30 s read timeout")
	}
	secret, err := verify.NewSecret()
	require.NoError(t, err)

	t.Run("serve", func(t *testing.T) {
		t.Parallel()
		bin := stairhookBinary(t)
		dir := t.TempDir()
		config := func(addr string) string {
			cfg := fmt.Sprintf(`listen: %s
store: {sqlite: %q}
outbox: %q
webhooks:
  - name: staircase
    secrets: [{label: current, secret: "${E2E_WEBHOOK_SECRET}"}]
    routes: [{name: main, jira: {project: CS}}]
`, addr, filepath.Join(dir, "stairhook.db"), filepath.Join(dir, "outbox"))
			path := filepath.Join(dir, "config.yaml")
			require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
			return path
		}
		p := startServe(t, bin, config, nil, serveEnv(secret)...)
		stallBodies(t, p.addr, p.Pid(), secret)
	})

	t.Run("examples/nethttp", func(t *testing.T) {
		t.Parallel()
		bin := filepath.Join(t.TempDir(), "nethttp")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/stairhook/stairhook/examples/nethttp").CombinedOutput()
		require.NoError(t, err, "%s", out)
		var addr string
		_, proc := testenv.StartServer(t, 1, func(ports []int) *exec.Cmd {
			addr = testenv.Addr(ports[0])
			cmd := exec.Command(bin)
			cmd.Env = append(os.Environ(), "ADDR="+addr, "STAIRHOOK_SECRET="+secret.Encode())
			return cmd
		}, func(ports []int) error {
			c, err := net.DialTimeout("tcp", testenv.Addr(ports[0]), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		stallBodies(t, addr, proc.Pid(), secret)
	})
}

// stallBodies runs the attack on addr and checks the process pid.
func stallBodies(t *testing.T, addr string, pid int, secret verify.Secret) {
	t.Helper()
	// One real request first, so the baseline includes what serving at
	// all costs (pools, buffers, the database's pages).
	body := bytes.Repeat([]byte{' '}, stalledBody)
	copy(body, `{"id":"evt_warm","type":"renewal","account":{"id":"acc_1"}}`)
	warm := postRaw(t, "http://"+addr+"/webhooks/staircase", signed(t, secret, "evt_warm", body), body)
	require.Less(t, warm.StatusCode, 300, warm.Body)
	base := rss(t, pid)

	conns := make([]net.Conn, 0, stalledConns)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range stalledConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("evt_stall_%d", i)
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			var head strings.Builder
			fmt.Fprintf(&head, "POST /webhooks/staircase HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", addr, len(body))
			for k, vs := range signed(t, secret, id, body) {
				for _, v := range vs {
					fmt.Fprintf(&head, "%s: %s\r\n", k, v)
				}
			}
			head.WriteString("\r\n")
			// A server that answers without reading the body (503 when
			// too many are being read) may close the connection under
			// the write: that is an answer too.
			_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write([]byte(head.String())); err == nil {
				_, _ = c.Write(body[:len(body)-1])
			}
		}()
	}
	wg.Wait()
	require.Len(t, conns, stalledConns)

	// The peak: sample while every connection stalls.
	peak := base
	for range 20 {
		peak = max(peak, rss(t, pid))
		time.Sleep(100 * time.Millisecond)
	}
	growth := peak - base
	t.Logf("%s: RSS %d MiB before, %d MiB peak with %d stalled bodies: +%.1f MiB", addr, base>>20, peak>>20, stalledConns, float64(growth)/(1<<20))
	assert.Less(t, growth, int64(maxStalledGrowth), "RSS growth with %d stalled bodies", stalledConns)

	// Every stalled connection is answered or closed by the read timeout.
	start := time.Now()
	var closed, answered int
	var cwg sync.WaitGroup
	for _, c := range conns {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			defer c.Close()
			_ = c.SetReadDeadline(start.Add(stalledReadTimeout + 15*time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil {
				resp.Body.Close()
				_, err = c.Read(make([]byte, 1)) // then the close
			}
			mu.Lock()
			defer mu.Unlock()
			var ne net.Error
			if err != nil && (!errors.As(err, &ne) || !ne.Timeout()) {
				closed++
			}
			if resp != nil {
				answered++
			}
		}()
	}
	cwg.Wait()
	t.Logf("%s: %d connections closed within %v (%d with an answer first)", addr, closed, time.Since(start).Round(time.Second), answered)
	assert.Equal(t, stalledConns, closed, "stalled connections still open after the read timeout")
}

// signed returns the signature headers of body under id, now.
func signed(t testing.TB, secret verify.Secret, id string, body []byte) http.Header {
	t.Helper()
	s, err := verify.NewSigner(secret)
	require.NoError(t, err)
	h, err := s.Sign(id, time.Now(), body)
	require.NoError(t, err)
	return h
}

// rss returns the resident set size of the process pid, in bytes.
func rss(t testing.TB, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
