package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/smtptest"
	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/jiratest"
	"github.com/stairhook/stairhook/sender"
	"github.com/stairhook/stairhook/verify"
)

const (
	jiraIssuePath  = "/rest/api/3/issue"
	jiraSearchPath = "/rest/api/3/search/jql"
)

// The tests of this file run the receiver in inline mode (the rig's
// default): the sinks run inside the sender's request, whose answer tells
// their outcome, as in the AWS Lambda bootstrap. inbox_test.go covers the
// queued path.

// TestSinkFaults drives the receiver with the sender while a fault is
// injected in Jira or SMTP. Each case states the answer the sender must get
// first, and in every case, once the fault has cleared, the sender's
// (immediate) retries must end with exactly one Jira issue and one email for
// the event, the ledger must never have recorded a sink that did not
// succeed, and a sink that succeeded must not run again.
func TestSinkFaults(t *testing.T) {
	t.Parallel()
	retryAfter := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	cases := []struct {
		name   string
		inject func(r *rig)
		// first is the status of the sender's first attempt.
		first int
		// firstRetryAfter, when set, is the Retry-After the first 503
		// must carry.
		firstRetryAfter time.Duration
		// jiraCreates is how many create requests Jira must have seen.
		jiraCreates int
	}{
		// Jira 429 asking for 30 s, longer than the delivery deadline: the
		// sink does not wait, the sender gets 503 with that Retry-After.
		{"jira 429 Retry-After beyond deadline → 503 then one issue", func(r *rig) {
			r.jira.Inject(1, jiratest.Fault{Status: http.StatusTooManyRequests, Header: retryAfter("30")})
		}, http.StatusServiceUnavailable, 30 * time.Second, 1},
		// Jira 429 asking for 1 s: the sink waits inside the deadline and
		// succeeds, the sender sees 200 at once.
		{"jira 429 Retry-After 1 absorbed → 200", func(r *rig) {
			r.jira.Inject(1, jiratest.Fault{Status: http.StatusTooManyRequests, Header: retryAfter("1")})
		}, http.StatusOK, 0, 1},
		// One 429 without Retry-After: absorbed by the sink's backoff.
		{"jira 429 once without Retry-After absorbed → 200", func(r *rig) {
			r.jira.FailNext(1, http.StatusTooManyRequests, "")
		}, http.StatusOK, 0, 1},
		// 429 without Retry-After on every one of the sink's attempts.
		{"jira 429 persistent without Retry-After → 503 then one issue", func(r *rig) {
			r.jira.FailNext(3, http.StatusTooManyRequests, "")
		}, http.StatusServiceUnavailable, 0, 1},
		// 500 on the create: not idempotent, so the sink does not retry it
		// and the sender does; search then finds no issue and creates one.
		{"jira 500 on create → 503 then one issue", func(r *rig) {
			r.jira.Inject(1, jiratest.Fault{Path: jiraIssuePath, Status: http.StatusInternalServerError})
		}, http.StatusServiceUnavailable, 0, 2},
		// 500 on every search attempt.
		{"jira 500 on search persistent → 503 then one issue", func(r *rig) {
			r.jira.Inject(3, jiratest.Fault{Path: jiraSearchPath, Status: http.StatusInternalServerError})
		}, http.StatusServiceUnavailable, 0, 1},
		{"jira 503 persistent → 503 then one issue", func(r *rig) {
			r.jira.FailNext(3, http.StatusServiceUnavailable, "")
		}, http.StatusServiceUnavailable, 0, 1},
		{"jira 503 once on create absorbed → 200", func(r *rig) {
			r.jira.Inject(1, jiratest.Fault{Path: jiraIssuePath, Status: http.StatusServiceUnavailable})
		}, http.StatusOK, 0, 2},
		// A create that hangs past the Jira timeout (2 s): 503, then one
		// issue.
		{"jira create hangs past timeout → 503 then one issue", func(r *rig) {
			r.jira.Inject(1, jiratest.Fault{Path: jiraIssuePath, Hang: true})
		}, http.StatusServiceUnavailable, 0, 2},
		// Searches hanging past the whole delivery deadline (5 s).
		{"jira search hangs past delivery deadline → 503 then one issue", func(r *rig) {
			r.jira.Inject(4, jiratest.Fault{Path: jiraSearchPath, Hang: true})
		}, http.StatusServiceUnavailable, 0, 1},
		{"jira connection reset on create → 503 then one issue", func(r *rig) {
			r.jira.Inject(1, jiratest.Fault{Path: jiraIssuePath, Reset: true})
		}, http.StatusServiceUnavailable, 0, 2},
		{"jira connection reset on search absorbed → 200", func(r *rig) {
			r.jira.Inject(1, jiratest.Fault{Path: jiraSearchPath, Reset: true})
		}, http.StatusOK, 0, 1},
		// SMTP 4xx and a dropped connection are transient: 503, and the
		// retry sends only the email (Jira is recorded done and skipped).
		{"smtp 421 → 503 then one email, jira not rerun", func(r *rig) { r.smtp.FailNext(1, 421) }, http.StatusServiceUnavailable, 0, 1},
		{"smtp 451 → 503 then one email, jira not rerun", func(r *rig) { r.smtp.FailNext(1, 451) }, http.StatusServiceUnavailable, 0, 1},
		{"smtp 421 at MAIL FROM → 503 then one email", func(r *rig) {
			r.smtp.Inject(1, smtptest.Fault{Stage: smtptest.AtMail, Code: 421})
		}, http.StatusServiceUnavailable, 0, 1},
		{"smtp dropped connection → 503 then one email", func(r *rig) { r.smtp.DropNext(1) }, http.StatusServiceUnavailable, 0, 1},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{})
			tc.inject(r)
			id := "evt_fault_" + string(rune('a'+i))
			body := eventBody(t, event.TypeChurnRisk, id, nil)
			rep, err := newSender(8).Send(t.Context(), r.endpoint(), id, body)
			require.NoError(t, err, "statuses %v", statuses(rep))
			require.NotEmpty(t, rep.Attempts)
			first := rep.Attempts[0]
			assert.Equal(t, tc.first, first.Status, "first answer: %s", first.Body)
			if tc.first == http.StatusServiceUnavailable {
				assert.NotZero(t, first.RetryAfter, "a 503 carries Retry-After")
			}
			if tc.firstRetryAfter != 0 {
				assert.Equal(t, tc.firstRetryAfter, first.RetryAfter)
			}
			for _, a := range rep.Attempts[:len(rep.Attempts)-1] {
				assert.Equal(t, http.StatusServiceUnavailable, a.Status, "every failed attempt is a retryable 503: %s", a.Body)
			}
			assert.Equal(t, 1, issuesFor(r.jira, id), "exactly one issue")
			assert.Equal(t, 1, mailsFor(r.smtp, id), "exactly one email")
			assert.Equal(t, tc.jiraCreates, r.jira.Requests(jiraIssuePath), "create requests")
			assert.Empty(t, readDeadLetters(t, r.outbox), "nothing dead-lettered")
			done := r.ledger.check(t)
			assert.Equal(t, 1, done[ledgerPrefix+id+"/"+sinkJira], "jira recorded once")
			assert.Equal(t, 1, done[ledgerPrefix+id+"/"+sinkEmail], "email recorded once")

			// A redelivery after success is a duplicate: nothing new.
			rep, err = newSender(1).Send(t.Context(), r.endpoint(), id, body)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, rep.Attempts[0].Status)
			assert.Equal(t, 1, issuesFor(r.jira, id))
			assert.Equal(t, 1, mailsFor(r.smtp, id))
		})
	}
}

// TestSinkPermanentFaults: a 5xx SMTP reply, a Jira 4xx other than 429 or a
// template whose output is too large is permanent: the sender gets 422 and
// stops, one dead-letter record names the event and the sink, the sink is
// not recorded done, and the sinks that succeeded are. Once the cause is
// fixed, sending the event again (as a dead-letter replay does) runs only
// the rejected sink.
func TestSinkPermanentFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		inject func(r *rig)
		sink   string
	}{
		{"smtp 550 → 422, email dead-lettered", func(r *rig) { r.smtp.FailNext(1, 550) }, sinkEmail},
		{"smtp 554 at RCPT → 422, email dead-lettered", func(r *rig) {
			r.smtp.Inject(1, smtptest.Fault{Stage: smtptest.AtRcpt, Code: 554})
		}, sinkEmail},
		{"jira 400 on create → 422, jira dead-lettered", func(r *rig) {
			r.jira.Inject(1, jiratest.Fault{Path: jiraIssuePath, Status: http.StatusBadRequest})
		}, sinkJira},
		{"jira 403 → 422, jira dead-lettered", func(r *rig) {
			r.jira.FailNext(1, http.StatusForbidden, "")
		}, sinkJira},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{})
			tc.inject(r)
			id := "evt_perm_" + string(rune('a'+i))
			body := eventBody(t, event.TypeChurnRisk, id, nil)
			rep, err := newSender(8).Send(t.Context(), r.endpoint(), id, body)
			require.ErrorIs(t, err, sender.ErrPermanentRejection)
			require.Len(t, rep.Attempts, 1, "a 422 is not retried")
			assert.Equal(t, http.StatusUnprocessableEntity, rep.Attempts[0].Status)
			assert.Contains(t, string(rep.Attempts[0].Body), "sink_rejected")

			dl := readDeadLetters(t, r.outbox)
			require.Len(t, dl, 1)
			assert.Equal(t, id, dl[0].EventID)
			assert.Equal(t, tc.sink, dl[0].Sink)
			assert.Equal(t, webhookName, dl[0].Webhook)
			assert.NotEmpty(t, dl[0].Error)
			assert.JSONEq(t, string(body), string(dl[0].Body))

			other := sinkJira
			if tc.sink == sinkJira {
				other = sinkEmail
			}
			done := r.ledger.check(t)
			assert.Zero(t, done[ledgerPrefix+id+"/"+tc.sink], "the rejecting sink is not recorded")
			assert.Equal(t, 1, done[ledgerPrefix+id+"/"+other], "the other sink is recorded")
			if tc.sink == sinkJira {
				assert.Zero(t, issuesFor(r.jira, id))
				assert.Equal(t, 1, mailsFor(r.smtp, id))
			} else {
				assert.Equal(t, 1, issuesFor(r.jira, id))
				assert.Zero(t, mailsFor(r.smtp, id))
			}

			// The cause is gone (the fault was one-shot): the replay
			// delivers the rejected sink only.
			rep, err = newSender(8).Send(t.Context(), r.endpoint(), id, dl[0].Body)
			require.NoError(t, err, "statuses %v", statuses(rep))
			assert.Equal(t, 1, issuesFor(r.jira, id))
			assert.Equal(t, 1, mailsFor(r.smtp, id))
			done = r.ledger.check(t)
			assert.Equal(t, 1, done[ledgerPrefix+id+"/"+sinkJira])
			assert.Equal(t, 1, done[ledgerPrefix+id+"/"+sinkEmail])
		})
	}
}

// TestRedisRestart runs the receiver (inline) on a real redis-server (append-only
// file fsynced on every write, so the records survive a SIGKILL) and stops
// Redis mid-run. While it is down every request is answered 503
// store_unavailable (fail closed): no sink runs and, in particular, a
// replay of an event already delivered is neither accepted without replay
// protection nor delivered again. After the restart the pending event is
// delivered exactly once and the earlier one is a duplicate.
func TestRedisRestart(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	r := newRig(t, rigOptions{Redis: rs.URL()})
	ep := r.endpoint()

	idA, idB := "evt_redis_a", "evt_redis_b"
	bodyA := eventBody(t, event.TypeRenewal, idA, nil)
	bodyB := eventBody(t, event.TypeChurnRisk, idB, nil)
	_, err := newSender(3).Send(t.Context(), ep, idA, bodyA)
	require.NoError(t, err)

	rs.Stop()
	for _, ev := range []struct {
		id   string
		body []byte
	}{{idA, bodyA}, {idB, bodyB}} {
		rep, err := newSender(3).Send(t.Context(), ep, ev.id, ev.body)
		require.ErrorIs(t, err, sender.ErrGaveUp, "Redis down: never accepted")
		for _, a := range rep.Attempts {
			assert.Equal(t, http.StatusServiceUnavailable, a.Status, "%s: %s", ev.id, a.Body)
			assert.Contains(t, string(a.Body), "store_unavailable")
		}
	}
	assert.Equal(t, 1, issuesFor(r.jira, idA))
	assert.Equal(t, 1, mailsFor(r.smtp, idA))
	assert.Zero(t, issuesFor(r.jira, idB), "no sink runs without the store")
	assert.Zero(t, mailsFor(r.smtp, idB))
	assert.Equal(t, 1, r.jira.Requests(jiraIssuePath))

	rs.Start()
	// The sender here retries at once, faster than the Redis client's
	// reconnect backoff; a real sender waits seconds to minutes. Wait until
	// the receiver reports its store healthy again, as a load balancer would.
	require.Eventually(t, func() bool {
		resp, err := http.Get(r.base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond, "receiver healthy after the Redis restart")
	rep, err := newSender(10).Send(t.Context(), ep, idB, bodyB)
	require.NoError(t, err, "statuses %v", statuses(rep))
	resp := r.post(t, idA, bodyA)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "true", resp.Header.Get(verify.DuplicateHeader), "event A is a duplicate after the restart")
	for _, id := range []string{idA, idB} {
		assert.Equal(t, 1, issuesFor(r.jira, id), id)
		assert.Equal(t, 1, mailsFor(r.smtp, id), id)
	}
}
