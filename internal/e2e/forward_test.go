package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/queue"
	"github.com/stairhook/stairhook/sender"
	"github.com/stairhook/stairhook/verify"
)

// TestForwardBetweenTwoServes runs two `stairhook serve`: the first
// forwards each event, signed with the hop's own secret, to the second,
// which verifies it and writes its dry-run Jira request. A hop signed
// with the wrong secret is refused 401 and dead-lettered at once, and a
// redelivery to the first is forwarded once.
func TestForwardBetweenTwoServes(t *testing.T) {
	bin := stairhookBinary(t)
	secret, err := verify.NewSecret()
	require.NoError(t, err)
	hop, err := verify.NewSecret()
	require.NoError(t, err)
	wrong, err := verify.NewSecret()
	require.NoError(t, err)

	writeConfig := func(dir, body string) func(addr string) string {
		return func(addr string) string {
			path := filepath.Join(dir, "config.yaml")
			require.NoError(t, os.WriteFile(path, []byte("listen: "+addr+"\n"+body), 0o600))
			return path
		}
	}
	// The second hop: verifies with the hop secret, writes dry-run Jira.
	dirB := t.TempDir()
	b := startServe(t, bin, writeConfig(dirB, fmt.Sprintf(`store: {sqlite: %q}
outbox: %q
webhooks:
  - name: staircase
    secrets: [{label: hop, secret: "${HOP_SECRET}"}]
    routes: [{name: main, jira: {project: CS}}]
`, filepath.Join(dirB, "b.db"), filepath.Join(dirB, "outbox"))), nil,
		"HOP_SECRET="+hop.Encode(), "STAIRHOOK_CONFIG=", "STAIRHOOK_STORE=")

	// The first: one webhook forwards with the right secret, one with a
	// wrong one.
	dirA := t.TempDir()
	a := startServe(t, bin, writeConfig(dirA, fmt.Sprintf(`store: {sqlite: %q}
outbox: %q
delivery: {first_retry: 200ms, max_retry: 1s}
webhooks:
  - name: staircase
    secrets: [{label: current, secret: "${E2E_WEBHOOK_SECRET}"}]
    routes: [{name: hop, forward: {url: "http://%s/webhooks/staircase", secret: "${HOP_SECRET}"}}]
  - name: tampered
    secrets: [{label: current, secret: "${E2E_WEBHOOK_SECRET}"}]
    routes: [{name: hop, forward: {url: "http://%s/webhooks/staircase", secret: "${WRONG_SECRET}"}}]
`, filepath.Join(dirA, "a.db"), filepath.Join(dirA, "outbox"), b.addr, b.addr)), nil,
		append(serveEnv(secret), "HOP_SECRET="+hop.Encode(), "WRONG_SECRET="+wrong.Encode())...)

	snd := sender.New(sender.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	send := func(webhook, id string) *sender.Report {
		rep, err := snd.Send(ctx, sender.Endpoint{URL: "http://" + a.addr + "/webhooks/" + webhook, Secrets: []verify.Secret{secret}}, id, eventBody(t, "churn_risk", id, nil))
		require.NoError(t, err)
		return rep
	}

	// One event, sent twice: accepted, then a duplicate.
	assert.Equal(t, []int{202}, statuses(send("staircase", "evt_fwd_1")))
	assert.Equal(t, []int{200}, statuses(send("staircase", "evt_fwd_1")))
	waitFor(t, 30*time.Second, "the second hop's dry-run Jira request", func() bool {
		return len(outboxFiles(t, filepath.Join(dirB, "outbox"), "evt_fwd_1")) > 0
	})
	// The second hop verified it with the hop key and accepted it once.
	accepted := logLines(b.stdout.String()+b.stderr.String(), "accepted")
	var ids []string
	for _, l := range accepted {
		ids = append(ids, fmt.Sprint(l["id"]))
	}
	assert.Equal(t, []string{"evt_fwd_1"}, ids, "one forward per event")
	assert.Empty(t, logLines(b.stdout.String()+b.stderr.String(), "request rejected"))

	// The wrong secret: refused by the second hop, a dead letter at once.
	assert.Equal(t, []int{202}, statuses(send("tampered", "evt_fwd_2")))
	waitFor(t, 30*time.Second, "the tampered hop's dead letter", func() bool {
		return len(logLines(b.stdout.String()+b.stderr.String(), "request rejected")) > 0 &&
			strings.Contains(a.stdout.String()+a.stderr.String(), "forward 401")
	})
	q, err := queue.Open(ctx, queue.Location{SQLitePath: filepath.Join(dirA, "a.db")}, queue.Options{})
	require.NoError(t, err)
	defer q.Close()
	var dead []*queue.DeadLetter
	waitFor(t, 10*time.Second, "the dead letter's record", func() bool {
		dead = dead[:0]
		require.NoError(t, q.DeadLetters(ctx, "tampered", func(d *queue.DeadLetter) error { dead = append(dead, d); return nil }))
		return len(dead) > 0
	})
	require.Len(t, dead, 1)
	assert.Equal(t, "evt_fwd_2", dead[0].EventID)
	assert.Contains(t, dead[0].Error, "401")
	assert.Empty(t, outboxFiles(t, filepath.Join(dirB, "outbox"), "evt_fwd_2"))
	for _, text := range []string{a.stdout.String(), a.stderr.String(), b.stdout.String(), b.stderr.String(), dead[0].Error} {
		for _, s := range []verify.Secret{secret, hop, wrong} {
			assert.NotContains(t, text, s.Encode())
		}
	}
}

// outboxFiles returns the files under dir whose content holds needle.
func outboxFiles(t testing.TB, dir, needle string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err == nil && bytes.Contains(data, []byte(needle)) {
			out = append(out, path)
		}
		return nil
	})
	return out
}
