//go:build soak

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/sender"
	"github.com/stairhook/stairhook/verify"
)

// soakN is the number of events: STAIRHOOK_SOAK_N, else 300 with -short,
// else 10 000.
func soakN(t *testing.T) int {
	if v := os.Getenv("STAIRHOOK_SOAK_N"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "STAIRHOOK_SOAK_N")
		require.Positive(t, n)
		return n
	}
	if testing.Short() {
		return 300
	}
	return 10_000
}

// peakRSS reads the peak resident set size (VmHWM) of a live process.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// recorder is a RoundTripper that counts the answers by status, and sorts
// transport errors: a
// request that never reached the server (refused while it restarts) is
// expected; one sent but not answered is recorded as cut, for the test to
// judge.
type recorder struct {
	next     http.RoundTripper
	mu       sync.Mutex
	byStatus map[int]int
	refused  int
	cut      []cutRequest
}

// cutRequest is a request that got a transport error other than a failed
// dial: it may have been sent.
type cutRequest struct {
	id      string
	at      time.Time
	err     error
	reused  bool          // on a keep-alive connection
	idle    time.Duration // how long that connection had been idle
	written bool          // the whole request was written
}

func (c cutRequest) String() string {
	return fmt.Sprintf("%s at %s: %v (connection reused %v, idle %v before; request written %v)",
		c.id, c.at.Format("15:04:05.000"), c.err, c.reused, c.idle, c.written)
}

// closedUnread reports whether c is a request that the server closed
// without handling it while it was shutting down, between stopping and
// restarted. http.Server.Shutdown first closes its listener, and the kernel
// resets the connections still waiting in its accept queue, whose clients
// may have written a request already: a reset on a new connection. A
// connection accepted just before that may have its first request read,
// and net/http's conn.serve returns without handling it once the server is
// shutting down: EOF on a new connection. Shutdown then closes each
// connection it sees idle, and a client may be writing its next request on
// one at that moment (the race between a server closing an idle keep-alive
// connection and a client reusing it, RFC 9112 section 9.3.1): EOF or a
// reset on a reused connection. Shutdown never closes a connection whose
// request reached the handler, and the test checks that the server exited
// 0, so it did not have to force any closed: such a request never reached
// the handler, and the sender's retry is its one delivery (the soak counts
// issues and emails per event to prove it). Any other cut request fails
// the test.
func (c cutRequest) closedUnread(stopping, restarted time.Time) bool {
	if c.at.Before(stopping) || c.at.After(restarted) {
		return false
	}
	// net/http's Transport reports a keep-alive connection the server
	// closed before the request went out with an error of its own
	// (errServerClosedIdle, not exported): nothing was written, so the
	// server cannot have read it.
	serverClosedIdle := !c.written && strings.Contains(c.err.Error(), "server closed idle connection")
	return errors.Is(c.err, syscall.ECONNRESET) || errors.Is(c.err, io.EOF) || serverClosedIdle
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	// The connection's history tells a request the server closed as idle
	// from one it cut while handling it.
	var conn atomic.Pointer[httptrace.GotConnInfo]
	var written atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn:      func(info httptrace.GotConnInfo) { conn.Store(&info) },
		WroteRequest: func(info httptrace.WroteRequestInfo) { written.Store(info.Err == nil) },
	}))
	resp, err := r.next.RoundTrip(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if notSent(err) {
			r.refused++
			return resp, err
		}
		c := cutRequest{id: req.Header.Get("X-Staircase-Id"), at: time.Now(), err: err, written: written.Load()}
		if info := conn.Load(); info != nil {
			c.reused, c.idle = info.Reused, info.IdleTime
		}
		if len(r.cut) < 1000 {
			r.cut = append(r.cut, c)
		}
		return resp, err
	}
	r.byStatus[resp.StatusCode]++
	return resp, err
}

// notSent reports whether err means the request never reached the server:
// the connection could not be made.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// TestSoak drives a `stairhook serve` child process on its queued path
// (SQLite database, Jira test server, SMTP test server) with the module's
// Sender: N events at concurrency 32, of which 5% tampered (must be 401),
// 5% replayed within the window as the exact same request (must be a
// duplicate or 409, never a second delivery), 10% redelivered after their
// 202 (a duplicate, nothing new), sink faults injected at random (the
// workers retry them), and the server stopped with SIGTERM half-way and
// restarted on the same database. At the end every genuine event produced
// exactly one Jira issue and one email, every job completed, the server
// exited 0 on SIGTERM, and its peak RSS stayed bounded. It reports the
// rate at which events were accepted (answered 202) and delivered (issue
// and email both there).
func TestSoak(t *testing.T) {
	n := soakN(t)
	const concurrency = 32
	const maxRSS = 512 << 20

	st := newServeStack(t)
	dbPath := filepath.Join(t.TempDir(), "stairhook.db")
	proc := st.options(serveOptions{Store: sqliteStore(dbPath), Delivery: fastRetries}).start(t, st.bin, st.secret)
	jira, smtp, secret := st.jira, st.smtp, st.secret

	rec := &recorder{next: http.DefaultTransport, byStatus: map[int]int{}}
	client := &http.Client{
		Transport:     rec,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	// Short real waits: 0, 50 ms, 100 ms, … then 500 ms, 40 attempts in
	// all; a Retry-After from the receiver is cut to 500 ms.
	schedule := []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond}
	for len(schedule) < 40 {
		schedule = append(schedule, 500*time.Millisecond)
	}
	var attempts atomic.Int64
	snd := sender.New(sender.Options{
		Client: client, Schedule: schedule, Sleep: shortSleep, Timeout: 30 * time.Second,
		OnAttempt: func(sender.Attempt) { attempts.Add(1) },
	})
	signer, err := verify.NewSigner(secret)
	require.NoError(t, err)
	ep := st.endpoint(proc)

	type kind int
	const (
		genuine kind = iota
		tampered
		replayed
		redelivered
	)
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	kinds := make([]kind, n)
	faultAt := make([]int, n) // 0 none, 1 jira 503, 2 jira 429, 3 smtp 451, 4 smtp 421
	var counts [4]int
	for i := range kinds {
		switch p := rng.IntN(100); {
		case p < 5:
			kinds[i] = tampered
		case p < 10:
			kinds[i] = replayed
		case p < 20:
			kinds[i] = redelivered
		}
		counts[kinds[i]]++
		if kinds[i] != tampered && rng.IntN(100) < 5 {
			faultAt[i] = 1 + rng.IntN(4)
		}
	}
	types := event.SampleTypes()
	run := time.Now().UnixNano()
	idOf := func(i int) string { return fmt.Sprintf("evt_soak_%d_%06d", run, i) }

	var (
		mu              sync.Mutex
		failures        []string
		tamperRejected  int
		replayRejected  int
		redeliveredDups int
		faults          [5]int
	)
	fail := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 50 {
			failures = append(failures, fmt.Sprintf(format, a...))
		}
	}
	// postExact sends the exact same request (headers and body) until it
	// gets an answer that is not a transport error, 503 or 409.
	postExact := func(ctx context.Context, h http.Header, body []byte) (int, http.Header) {
		for try := 0; ; try++ {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
			req.Header = h.Clone()
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusConflict || try > 80 {
					return resp.StatusCode, resp.Header
				}
			} else if try > 80 || ctx.Err() != nil {
				return 0, nil
			}
			_ = shortSleep(ctx, 250*time.Millisecond)
		}
	}

	work := make(chan int)
	var completed atomic.Int64
	var wg sync.WaitGroup
	ctx := t.Context()
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for i := range work {
				id := idOf(i)
				body := eventBody(t, types[i%len(types)], id, nil)
				switch faultAt[i] {
				case 1:
					jira.FailNext(3, http.StatusServiceUnavailable, "")
				case 2:
					jira.FailNext(1, http.StatusTooManyRequests, "1")
				case 3:
					smtp.FailNext(1, 451)
				case 4:
					smtp.FailNext(1, 421)
				}
				mu.Lock()
				faults[faultAt[i]]++
				mu.Unlock()
				switch kinds[i] {
				case tampered:
					h, err := signer.Sign(id, time.Now(), body)
					if err != nil {
						fail("%s: sign: %v", id, err)
						break
					}
					bad := bytes.Replace(body, []byte(`"Acme Corp"`), []byte(`"Acme Corq"`), 1)
					status, _ := postExact(ctx, h, bad)
					if status != http.StatusUnauthorized {
						fail("%s: tampered request answered %d", id, status)
					} else {
						mu.Lock()
						tamperRejected++
						mu.Unlock()
					}
				case replayed:
					h, err := signer.Sign(id, time.Now(), body)
					if err != nil {
						fail("%s: sign: %v", id, err)
						break
					}
					// The first answer is 202, or 200 duplicate when an
					// earlier try was accepted but its answer lost.
					if status, _ := postExact(ctx, h, body); status != http.StatusAccepted && status != http.StatusOK {
						fail("%s: first delivery answered %d", id, status)
						break
					}
					status, rh := postExact(ctx, h, body)
					switch {
					case status == http.StatusConflict,
						status == http.StatusOK && rh.Get(verify.DuplicateHeader) == "true":
						mu.Lock()
						replayRejected++
						mu.Unlock()
					default:
						fail("%s: exact replay answered %d without the duplicate header", id, status)
					}
				default:
					rep, err := snd.Send(ctx, ep, id, body)
					if err != nil {
						fail("%s: %v (statuses %v)", id, err, statuses(rep))
						break
					}
					if kinds[i] == redelivered {
						rep, err := snd.Send(ctx, ep, id, body)
						switch {
						case err != nil:
							fail("%s: redelivery: %v", id, err)
						case rep.Attempts[len(rep.Attempts)-1].Status != http.StatusOK:
							fail("%s: redelivery answered %v", id, statuses(rep))
						case rep.Attempts[len(rep.Attempts)-1].Duplicate:
							mu.Lock()
							redeliveredDups++
							mu.Unlock()
						}
					}
				}
				completed.Add(1)
			}
		})
	}

	go func() {
		for i := range n {
			work <- i
		}
		close(work)
	}()
	// Restart half-way, with requests and attempts in flight: SIGTERM,
	// expect exit 0, start again on the same address and database.
	for completed.Load() < int64(n/2) {
		time.Sleep(10 * time.Millisecond)
	}
	rss1, _ := peakRSS(proc.Pid())
	t0 := time.Now()
	t.Logf("SIGTERM to the first server at %s", t0.Format("15:04:05.000"))
	if err := proc.stop(t, 60*time.Second); err != nil {
		t.Errorf("first server: exit after SIGTERM: %v; stderr tail: %s", err, tail(proc.stderr.String(), 2000))
	}
	proc = proc.restart(t)
	restarted := time.Now()
	restartGap := restarted.Sub(t0)
	wg.Wait()
	acceptedIn := time.Since(start)

	var genuineIDs []string
	for i := range n {
		if kinds[i] != tampered {
			genuineIDs = append(genuineIDs, idOf(i))
		}
	}
	st.waitDelivered(t, genuineIDs, 2*time.Minute)
	deliveredIn := time.Since(start)
	states := waitJobsCompleted(t, openStore(t, dbPath, ""), 2*len(genuineIDs), time.Minute)
	time.Sleep(500 * time.Millisecond) // a stray duplicate would have come by now
	rss2, _ := peakRSS(proc.Pid())
	require.NoError(t, proc.stop(t, 60*time.Second), "second server: exit after SIGTERM; stderr tail: %s", tail(proc.stderr.String(), 2000))

	for _, f := range failures {
		t.Error(f)
	}

	// Every genuine event (everything but the tampered ones) produced
	// exactly one issue and one email; tampered ones produced nothing.
	issues, mails := st.counts()
	bad := 0
	for i := range n {
		id := idOf(i)
		want := 1
		if kinds[i] == tampered {
			want = 0
		}
		if issues[id] != want || mails[id] != want {
			bad++
			if bad <= 20 {
				t.Errorf("%s (kind %d): %d issues, %d emails, want %d each", id, kinds[i], issues[id], mails[id], want)
			}
		}
	}
	assert.Zero(t, bad, "events without exactly-once delivery")
	assert.Equal(t, counts[tampered], tamperRejected, "every tampered request rejected")
	assert.Equal(t, counts[replayed], replayRejected, "every exact replay deduplicated")
	assert.Equal(t, counts[redelivered], redeliveredDups, "every redelivery answered as a duplicate")
	assert.Less(t, rss1, int64(maxRSS), "peak RSS of the first server")
	assert.Less(t, rss2, int64(maxRSS), "peak RSS of the second server")

	rec.mu.Lock()
	byStatus := fmt.Sprint(rec.byStatus)
	transportErrs := rec.refused
	var closedUnread int
	var cut []string
	for _, c := range rec.cut {
		if c.closedUnread(t0, restarted) {
			closedUnread++
		} else {
			cut = append(cut, c.String())
		}
	}
	rec.mu.Unlock()
	assert.Empty(t, cut, "requests sent but not answered, other than those the shutdown closed unread")
	nGenuine := len(genuineIDs)
	summary := fmt.Sprintf("soak (queued, SQLite): N=%d concurrency=%d genuine=%d (redelivered %d) tampered=%d rejected=%d replayed=%d deduplicated=%d "+
		"faults jira503=%d jira429=%d smtp451=%d smtp421=%d; issues=%d emails=%d; jobs %v; sender attempts=%d answers=%s refused while restarting=%d closed unread by the shutdown=%d; "+
		"restart gap %v; accepted in %v (%.0f events/s), delivered in %v (%.0f events/s); peak RSS %.1f MiB then %.1f MiB",
		n, concurrency, nGenuine, counts[redelivered], counts[tampered], tamperRejected, counts[replayed], replayRejected,
		faults[1], faults[2], faults[3], faults[4], len(jira.Issues()), len(smtp.Messages()), states, attempts.Load(), byStatus, transportErrs, closedUnread,
		restartGap.Round(time.Millisecond), acceptedIn.Round(time.Millisecond), float64(nGenuine)/acceptedIn.Seconds(),
		deliveredIn.Round(time.Millisecond), float64(nGenuine)/deliveredIn.Seconds(), float64(rss1)/(1<<20), float64(rss2)/(1<<20))
	t.Log(summary)
	fmt.Println(summary)
}

// TestSoakCutClassification checks the soak's sorting of transport errors:
// only a refused connection counts as never sent, and only a reset or EOF
// during the shutdown counts as closed unread.
func TestSoakCutClassification(t *testing.T) {
	// A real dial error: nothing listens on a port just closed.
	_, dialErr := http.DefaultTransport.RoundTrip(postRequest(t, "http://"+testenv.Addr(testenv.FreePort(t))))
	require.Error(t, dialErr)
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	assert.True(t, notSent(dialErr), "%v", dialErr)
	assert.False(t, notSent(reset), "a reset after the request was sent")
	assert.False(t, notSent(io.EOF))
	assert.False(t, notSent(context.DeadlineExceeded))

	stopping := time.Now()
	restarted := stopping.Add(time.Second)
	during := stopping.Add(time.Millisecond)
	for _, tc := range []struct {
		name string
		cut  cutRequest
		want bool
	}{
		{"EOF on a reused connection during the shutdown", cutRequest{at: during, err: io.EOF, reused: true, written: true}, true},
		{"reset on a reused connection during the shutdown", cutRequest{at: during, err: fmt.Errorf("net/http: %w", reset), reused: true, written: true}, true},
		{"EOF before the shutdown", cutRequest{at: stopping.Add(-time.Millisecond), err: io.EOF, reused: true, written: true}, false},
		{"EOF after the restart", cutRequest{at: restarted.Add(time.Millisecond), err: io.EOF, reused: true, written: true}, false},
		// A new connection still in the accept queue is reset when the
		// listener closes; one accepted just before is closed after its
		// first request is read, without handling it.
		{"reset on a new connection during the shutdown", cutRequest{at: during, err: reset, written: true}, true},
		{"EOF on a new connection during the shutdown", cutRequest{at: during, err: io.EOF, written: true}, true},
		{"EOF on a new connection before the shutdown", cutRequest{at: stopping.Add(-time.Millisecond), err: io.EOF, written: true}, false},
		{"reset on a new connection before the shutdown", cutRequest{at: stopping.Add(-time.Millisecond), err: reset, written: true}, false},
		{"reset while writing the request during the shutdown", cutRequest{at: during, err: reset}, true},
		// The Transport's own error for an idle connection the server
		// closed before the request was written (seen once in CI).
		{"idle connection closed before the write during the shutdown", cutRequest{at: during, err: errors.New("http: server closed idle connection"), reused: true}, true},
		{"idle connection closed, but the request was written", cutRequest{at: during, err: errors.New("http: server closed idle connection"), reused: true, written: true}, false},
		{"idle connection closed before the shutdown", cutRequest{at: stopping.Add(-time.Millisecond), err: errors.New("http: server closed idle connection"), reused: true}, false},
		// A hang is a request the server held, not one it closed unread.
		{"timeout", cutRequest{at: during, err: context.DeadlineExceeded, reused: true, written: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.cut.closedUnread(stopping, restarted))
		})
	}
}

func postRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader("{}"))
	require.NoError(t, err)
	return req
}
