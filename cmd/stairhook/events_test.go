package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/queue"
)

// plantedSecret stands for a webhook secret a sink's error quoted.
const plantedSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwPlanted"

// inboxWithEvents makes a database whose events' sinks ended in each
// state: "ok" delivered (noting a Jira issue), "dead" dead at once,
// "slow" retrying in an hour. It returns the --store of it.
func inboxWithEvents(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stairhook.db")
	ctx := context.Background()
	q, err := queue.Open(ctx, queue.Location{SQLitePath: path}, queue.Options{
		Logger: slog.New(slog.DiscardHandler), PollInterval: 20 * time.Millisecond, FirstRetry: time.Hour, MaxRetry: time.Hour,
		Work: func(ctx context.Context, d *queue.Delivery) queue.Result {
			switch d.Sink {
			case "ok":
				queue.NoteReceipt(ctx, "jira_issue", "CS-9")
				return queue.Result{}
			case "dead":
				return queue.Result{Err: errors.New("jira 400: no such project; secret=" + plantedSecret), Permanent: true}
			}
			return queue.Result{Err: errors.New("503 from the destination")}
		},
	})
	require.NoError(t, err)
	add := func(webhook, id, typ, account string, sinks ...string) {
		var signed time.Time // evt_1 and evt_3 as a legacy scheme's, without one
		if id == "evt_2" {
			signed = time.Now().Add(-2 * time.Second)
		}
		_, err := q.Accept(ctx, &queue.Accepted{Webhook: webhook, EventID: id, Type: typ, Account: account, KeyLabel: "current",
			Scheme: "v1", SignedAt: signed, Body: []byte(`{"id":"` + id + `","note":"` + plantedSecret + `"}`), Sinks: sinks})
		require.NoError(t, err)
		time.Sleep(2 * time.Millisecond) // distinct received times, for the order
	}
	add("staircase", "evt_1", "churn_risk", "acc_1", "ok")
	add("staircase", "evt_2", "renewal", "acc_2", "ok", "dead")
	add("other", "evt_3", "churn_risk", "acc_\x1b[31mred", "slow")
	add("other", "evt_1", "churn_risk", "acc_1")
	require.NoError(t, q.Start(ctx))
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l, err := q.Events(ctx, queue.EventFilter{State: queue.StateDelivered}, 0)
		require.NoError(t, err)
		d, err := q.Depth(ctx)
		require.NoError(t, err)
		if len(l.Events) == 2 && d.Jobs[queue.StateDead] == 1 && d.Jobs[queue.StateRetrying] == 1 {
			break
		}
		require.False(t, time.Now().After(deadline), "the jobs did not settle")
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	q.Stop(sctx)
	require.NoError(t, q.Close())
	return "sqlite:" + path
}

// runCmd runs one of this file's commands in process.
func runCmd(t *testing.T, cmd func(context.Context, *env, []string) int, args ...string) result {
	t.Helper()
	var out, errOut testenv.Buffer
	e := &env{stdout: &out, stderr: &errOut, stdin: strings.NewReader(""), lookupEnv: func(string) (string, bool) { return "", false }}
	code := cmd(context.Background(), e, args)
	return result{code, out.String(), errOut.String()}
}

func TestEventsList(t *testing.T) {
	store := inboxWithEvents(t)
	r := runCmd(t, runEvents, "list", "--store", store)
	require.Equal(t, exitOK, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 5)
	assert.Regexp(t, `^RECEIVED\s+WEBHOOK\s+EVENT\s+TYPE\s+ACCOUNT\s+SINKS$`, lines[0])
	assert.Regexp(t, `other\s+evt_1\s+churn_risk\s+acc_1\s+\(no route\)$`, lines[1], "newest first")
	assert.Regexp(t, `other\s+evt_3\s+churn_risk\s+acc_\\x1b\[31mred\s+slow=retrying$`, lines[2], "a sender's control characters are escaped")
	assert.NotContains(t, r.stdout, "\x1b")
	assert.Regexp(t, `staircase\s+evt_2\s+renewal\s+acc_2\s+ok=delivered dead=dead$`, lines[3])
	assert.Equal(t, "4 event(s)\n", r.stderr)

	r = runCmd(t, runEvents, "list", "--store", store, "--state", "dead", "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var ev queue.EventSummary
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ev))
	assert.Equal(t, "evt_2", ev.EventID)
	assert.Equal(t, queue.StateDead, ev.Sinks[1].State)

	for args, want := range map[string][]string{
		"--webhook other":      {"evt_1", "evt_3"},
		"--type renewal":       {"evt_2"},
		"--account acc_1":      {"evt_1", "evt_1"},
		"--state retrying":     {"evt_3"},
		"--state delivered":    {"evt_1", "evt_1"},
		"--since 1h --limit 2": {"evt_1", "evt_3"},
	} {
		r := runCmd(t, runEvents, append([]string{"list", "--store", store, "--json"}, strings.Fields(args)...)...)
		require.Equal(t, exitOK, r.code, r.stderr)
		var got []string
		sc := bufio.NewScanner(strings.NewReader(r.stdout))
		for sc.Scan() {
			var ev queue.EventSummary
			require.NoError(t, json.Unmarshal(sc.Bytes(), &ev))
			got = append(got, ev.EventID)
		}
		assert.Equal(t, want, got, args)
	}
	r = runCmd(t, runEvents, "list", "--store", store, "--limit", "2")
	assert.Contains(t, r.stderr, "2 event(s); there are more")

	for _, args := range [][]string{
		{"list", "--store", store, "--state", "lost"},
		{"list", "--store", store, "--since", "yesterday"},
		{"list", "--store", store, "--limit", "10001"},
		{"list", "--store", "mysql://x"},
		{"list", "extra"},
		{"nothing"},
		{},
	} {
		r := runCmd(t, runEvents, args...)
		assert.Equal(t, exitUsage, r.code, "%v: %s", args, r.stderr)
	}
	r = runCmd(t, runEvents, "list", "--help")
	assert.Equal(t, exitOK, r.code)
	assert.Contains(t, r.stdout, "--state STATE")
}

func TestEventsShow(t *testing.T) {
	store := inboxWithEvents(t)
	r := runCmd(t, runEvents, "show", "evt_2", "--store", store)
	require.Equal(t, exitOK, r.code, r.stderr)
	for _, want := range []string{"event     evt_2", "webhook   staircase", "key       current (v1)",
		"sink ok: delivered", "jira_issue: CS-9", "attempt 1", "delivered",
		"sink dead: dead", "jira 400: no such project; secret=[redacted]", `"id": "evt_2"`} {
		assert.Contains(t, r.stdout, want)
	}
	assert.Regexp(t, `\nsigned    \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(2s before receipt\)\nreceived  `, r.stdout)
	assert.NotContains(t, r.stdout, plantedSecret, "errors and the body are redacted")

	r = runCmd(t, runEvents, "show", "evt_2", "--store", store, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var d queue.EventDetail
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &d))
	require.Len(t, d.Jobs, 2)
	assert.Equal(t, "jira 400: no such project; secret=[redacted]", d.Jobs[1].Tries[0].Error)
	require.NotNil(t, d.SignedAt)
	assert.WithinDuration(t, d.ReceivedAt.Add(-2*time.Second), *d.SignedAt, 500*time.Millisecond)

	// evt_1 is an id of two webhooks.
	r = runCmd(t, runEvents, "show", "evt_1", "--store", store)
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "give --webhook")
	r = runCmd(t, runEvents, "show", "evt_1", "--webhook", "other", "--store", store)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "webhook   other")
	assert.Contains(t, r.stdout, "\nsigned    -\n", "no signed time")

	r = runCmd(t, runEvents, "show", "evt_none", "--store", store)
	assert.Equal(t, exitFail, r.code)
	assert.Contains(t, r.stderr, "no event evt_none")
	r = runCmd(t, runEvents, "show", "--store", store)
	assert.Equal(t, exitUsage, r.code)
	r = runCmd(t, runEvents, "show", plantedSecret+" x", "--store", store)
	assert.Equal(t, exitUsage, r.code)
	assert.NotContains(t, r.stderr, plantedSecret, "an argument that is not an id is not echoed")
	r = runCmd(t, runEvents, "show", "evt_2", "extra", "--store", store)
	assert.Equal(t, exitUsage, r.code)
}

func TestStatus(t *testing.T) {
	store := inboxWithEvents(t)
	r := runCmd(t, runStatus, "--store", store)
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "jobs  queued 0  running 0  retrying 1  waiting 0  dead 1")
	assert.Contains(t, r.stdout, "dead letters    1")
	assert.Regexp(t, `oldest pending  queued \S+ \(\d+s ago\)`, r.stdout)
	assert.Contains(t, r.stdout, "last hour       accepted 4  delivered 2  dead 1  refused 0")
	assert.Contains(t, r.stdout, "last failures")
	assert.Contains(t, r.stdout, "503 from the destination")
	assert.Contains(t, r.stdout, "secret=[redacted]")
	assert.NotContains(t, r.stdout, plantedSecret)

	r = runCmd(t, runStatus, "--store", store, "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	var s statusReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &s))
	assert.Equal(t, int64(1), s.Dead)
	assert.Equal(t, int64(1), s.Jobs[queue.StateRetrying])
	assert.Equal(t, int64(4), s.Hour.Accepted)
	require.Len(t, s.LastErrors, 2)
	assert.NotNil(t, s.OldestPending)
	assert.NotContains(t, r.stdout, plantedSecret)

	assert.Equal(t, exitUsage, runCmd(t, runStatus, "--store", "nope").code)
	assert.Equal(t, exitUsage, runCmd(t, runStatus, "extra").code)
}
