package console_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/console"
	"github.com/stairhook/stairhook/receiver/queue"
)

// settle waits until the rig's workers made their first attempt of every
// job of the events.
func settle(t *testing.T, r *rig, want map[string]map[string]queue.SinkState) {
	t.Helper()
	eventually(t, "the jobs to settle", func() bool {
		for id, sinks := range want {
			webhook, eid, _ := strings.Cut(id, "/")
			d, err := r.q.Event(context.Background(), webhook, eid)
			if err != nil {
				return false
			}
			for _, s := range d.Sinks {
				if sinks[s.Sink] != s.State {
					return false
				}
			}
		}
		return true
	})
}

func jobOf(t *testing.T, r *rig, webhook, id, sink string) int64 {
	t.Helper()
	d, err := r.q.Event(context.Background(), webhook, id)
	require.NoError(t, err)
	for _, s := range d.Sinks {
		if s.Sink == sink {
			return s.Job
		}
	}
	t.Fatalf("no job of %s for %s", sink, id)
	return 0
}

func TestPages(t *testing.T) {
	r := newRig(t)
	r.accept("staircase", "evt_1", nil, "ok", "slow")
	r.accept("staircase", "evt_2", func(ev map[string]any) { ev["type"] = "renewal" }, "dead", "fixable")
	r.accept("other", "evt_3", nil, "ok")
	settle(t, r, map[string]map[string]queue.SinkState{
		"staircase/evt_1": {"ok": queue.StateDelivered, "slow": queue.StateRetrying},
		"staircase/evt_2": {"dead": queue.StateDead, "fixable": queue.StateDead},
		"other/evt_3":     {"ok": queue.StateDelivered},
	})
	rq := httptestRequest("/webhooks/staircase")
	rq.Header.Set("X-Staircase-Signature", "v1,abc")
	r.rec.Refused(queue.NewRefusal(rq, "staircase", 401, "timestamp_too_new", "timestamp 312 s in the future"))
	r.rec.KeyUsed("staircase", "current", time.Now())
	r.rec.KeyUsed("staircase", "current", time.Now())
	r.rec.KeyUsed("staircase", "retired", time.Now().Add(-2*time.Hour))
	require.NoError(t, r.rec.Flush(context.Background()))
	b := r.browser()

	t.Run("overview", func(t *testing.T) {
		page := b.get("/").Body.String()
		assert.Contains(t, page, "<h2>Last hour</h2>")
		assert.Contains(t, page, `data-refresh="5"`)
		assert.Regexp(t, `<dt>Accepted</dt><dd>3</dd>`, page)
		assert.Regexp(t, `Dead letters</dt><dd><a href="/dead">2</a>`, page)
		assert.Regexp(t, `timestamp_too_new</a></td><td>1</td>`, page)
		var o struct {
			Overview queue.Overview
			Retrying int64
		}
		require.NoError(t, json.Unmarshal(b.get("/api/overview").Body.Bytes(), &o))
		assert.Equal(t, int64(3), o.Overview.Day.Accepted)
		assert.Equal(t, int64(1), o.Retrying)
		assert.Equal(t, int64(2), o.Overview.Day.Delivered)
	})

	t.Run("events", func(t *testing.T) {
		page := b.get("/events").Body.String()
		for _, id := range []string{"evt_1", "evt_2", "evt_3"} {
			assert.Contains(t, page, `href="/event?id=`+id)
		}
		assert.Contains(t, page, "slow: retrying")
		page = b.get("/events?state=dead").Body.String()
		assert.Contains(t, page, "evt_2")
		assert.NotContains(t, page, "evt_1<")
		page = b.get("/events?webhook=other").Body.String()
		assert.Contains(t, page, "evt_3")
		assert.NotContains(t, page, "evt_2<")
		page = b.get("/events?type=renewal&since=1h").Body.String()
		assert.Contains(t, page, "evt_2")
		assert.NotContains(t, page, "evt_1<")
		page = b.get("/events?q=evt_3").Body.String()
		assert.Contains(t, page, "evt_3")
		assert.NotContains(t, page, "evt_2<")
		assert.Equal(t, http.StatusBadRequest, b.get("/events?since=yesterday").Code)
		assert.Equal(t, http.StatusBadRequest, b.get("/events?state=lost").Code)
		assert.Equal(t, http.StatusBadRequest, b.get("/events?cursor=junk").Code)
		var list struct{ Events []queue.EventSummary }
		require.NoError(t, json.Unmarshal(b.get("/api/events?state=retrying").Body.Bytes(), &list))
		require.Len(t, list.Events, 1)
		assert.Equal(t, "evt_1", list.Events[0].EventID)
	})

	t.Run("event", func(t *testing.T) {
		page := b.get("/event?webhook=staircase&id=evt_1").Body.String()
		assert.Contains(t, page, "<dt>Key</dt><dd>current</dd>")
		assert.Contains(t, page, "<dt>Scheme</dt><dd>v1</dd>")
		assert.Contains(t, page, "Acme Corp")
		assert.Contains(t, page, `<a href="https://example.atlassian.net/browse/CS-7" rel="noopener noreferrer"><code>CS-7</code></a>`, "the Jira issue as a link")
		assert.Contains(t, page, "rejected by the destination")
		assert.Contains(t, page, `action="/jobs/retry"`, "retry now on the retrying job")
		assert.NotContains(t, page, `action="/jobs/replay"`)
		assert.Contains(t, page, html.EscapeString(`"id": "evt_1"`), "the body, pretty-printed and escaped")
		// By id alone, when one webhook has it.
		assert.Contains(t, b.get("/event?id=evt_3").Body.String(), "<dd>other</dd>")
		assert.Equal(t, http.StatusNotFound, b.get("/event?webhook=staircase&id=evt_3").Code)
		page = b.get("/event?webhook=staircase&id=evt_2").Body.String()
		assert.Contains(t, page, `action="/jobs/replay"`)
	})

	t.Run("retry now", func(t *testing.T) {
		job := jobOf(t, r, "staircase", "evt_1", "slow")
		res := b.action("/jobs/retry", url.Values{"job": {jsonNumber(job)}, "back": {"/event?webhook=staircase&id=evt_1"}})
		require.Equal(t, http.StatusSeeOther, res.Code, res.Body.String())
		assert.Equal(t, "/event?done=retried&id=evt_1&webhook=staircase", res.Header().Get("Location"))
		assert.Contains(t, b.get(res.Header().Get("Location")).Body.String(), "queued to run now")
		eventually(t, "the second attempt", func() bool {
			d, err := r.q.Event(context.Background(), "staircase", "evt_1")
			require.NoError(t, err)
			for _, j := range d.Jobs {
				if j.Sink == "slow" {
					return len(j.Tries) == 2
				}
			}
			return false
		})
		delivered := jobOf(t, r, "staircase", "evt_1", "ok")
		assert.Equal(t, http.StatusConflict, b.action("/jobs/retry", url.Values{"job": {jsonNumber(delivered)}}).Code)
		assert.Equal(t, http.StatusBadRequest, b.action("/jobs/retry", url.Values{"job": {"x"}}).Code)
	})

	t.Run("dead letters", func(t *testing.T) {
		page := b.get("/dead").Body.String()
		assert.Contains(t, page, "evt_2")
		assert.Contains(t, page, "rejected by the destination")
		assert.Contains(t, b.get("/dead?sink=fixable").Body.String(), "fixable")
		assert.NotContains(t, b.get("/dead?sink=fixable").Body.String(), "<td>dead</td>")

		r.fixed.Store(true)
		job := jobOf(t, r, "staircase", "evt_2", "fixable")
		res := b.action("/jobs/replay", url.Values{"job": {jsonNumber(job)}, "back": {"/dead"}})
		require.Equal(t, http.StatusSeeOther, res.Code, res.Body.String())
		assert.Equal(t, "/dead?done=replayed", res.Header().Get("Location"))
		settle(t, r, map[string]map[string]queue.SinkState{"staircase/evt_2": {"dead": queue.StateDead, "fixable": queue.StateDelivered}})
		assert.Equal(t, http.StatusConflict, b.action("/jobs/replay", url.Values{"job": {jsonNumber(job)}}).Code, "the old job is gone")

		// Replay all matching a filter: only the matching ones.
		r.accept("other", "evt_4", nil, "dead")
		settle(t, r, map[string]map[string]queue.SinkState{"other/evt_4": {"dead": queue.StateDead}})
		old, kept := jobOf(t, r, "other", "evt_4", "dead"), jobOf(t, r, "staircase", "evt_2", "dead")
		res = b.action("/dead/replay-all", url.Values{"webhook": {"other"}})
		require.Equal(t, http.StatusSeeOther, res.Code)
		assert.Equal(t, "/dead?done=replayed_all&webhook=other", res.Header().Get("Location"))
		assert.Contains(t, b.get(res.Header().Get("Location")).Body.String(), "matching dead letters were queued again")
		assert.NotEqual(t, old, jobOf(t, r, "other", "evt_4", "dead"), "replayed: a new job")
		assert.Equal(t, []int64{kept}, mustDead(t, r, "staircase"), "staircase's dead letter untouched")
	})

	t.Run("refused", func(t *testing.T) {
		page := b.get("/refused").Body.String()
		assert.Contains(t, page, "timestamp 312 s in the future")
		assert.Contains(t, page, "<code>X-Staircase-Signature</code>")
		assert.Contains(t, page, "<td>192.0.2.1</td>")
		assert.NotContains(t, b.get("/refused?reason=bad_body").Body.String(), "312 s")
	})

	t.Run("keys", func(t *testing.T) {
		page := b.get("/keys").Body.String()
		assert.Regexp(t, `<code>current</code></td><td>[^<]+ago\)</td><td>2</td>`, page)
		assert.Regexp(t, `<code>previous</code></td><td><span class="muted">not in the last 35 days</span></td><td>0</td>`, page)
		assert.Regexp(t, `(?s)<code>retired</code>.*not configured`, page)
		var keys struct {
			Webhooks []struct {
				Webhook string
				Keys    []struct {
					Label   string
					Recent  int64 `json:"last_24h"`
					Signing bool
				}
			}
		}
		require.NoError(t, json.Unmarshal(b.get("/api/keys").Body.Bytes(), &keys))
		require.Len(t, keys.Webhooks, 2)
		assert.Equal(t, "current", keys.Webhooks[0].Keys[0].Label)
		assert.True(t, keys.Webhooks[0].Keys[0].Signing)
		assert.Equal(t, int64(2), keys.Webhooks[0].Keys[0].Recent)
	})

	t.Run("test notification", func(t *testing.T) {
		page := b.get("/test").Body.String()
		assert.Contains(t, page, "<option>account_personnel_change</option>")
		res := b.action("/test", url.Values{"webhook": {"staircase"}, "type": {"renewal"}, "account": {"Globex"}})
		require.Equal(t, http.StatusOK, res.Code)
		page = res.Body.String()
		assert.Contains(t, page, "HTTP 202")
		assert.Contains(t, page, "Follow the event")
		var id string
		r.sent.Range(func(k, _ any) bool { id = k.(string); return false })
		require.True(t, strings.HasPrefix(id, "evt_test_"))
		assert.Contains(t, page, `href="/event?id=`+id+`&amp;webhook=staircase"`)
		detail := b.get("/event?id=" + id + "&webhook=staircase").Body.String()
		assert.Contains(t, detail, "Globex")
		assert.Contains(t, detail, `<span class="tag">test</span>`)
		assert.Equal(t, http.StatusBadRequest, b.action("/test", url.Values{"webhook": {"nope"}, "type": {"renewal"}}).Code)
		assert.Equal(t, http.StatusBadRequest, b.action("/test", url.Values{"webhook": {"staircase"}, "type": {"made_up"}}).Code)
		assert.Equal(t, http.StatusBadRequest, b.action("/test", url.Values{"webhook": {"staircase"}, "type": {"renewal"},
			"account": {strings.Repeat("a", 201)}}).Code)
	})
}

func mustDead(t *testing.T, r *rig, webhook string) []int64 {
	t.Helper()
	ds, err := r.q.Dead(context.Background(), queue.DeadFilter{Webhook: webhook}, 0)
	require.NoError(t, err)
	var ids []int64
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestEventSigned(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	signed := map[string]time.Time{
		"evt_early": time.Now().Add(-2 * time.Second).Truncate(time.Millisecond),
		"evt_ahead": time.Now().Add(3 * time.Second).Truncate(time.Millisecond), // the sender's clock is ahead
	}
	for id, at := range signed {
		_, err := r.q.Accept(ctx, &queue.Accepted{Webhook: "staircase", EventID: id, Type: "churn_risk", Account: "acc",
			KeyLabel: "current", Scheme: "v1", SignedAt: at, Body: []byte(`{"id":"` + id + `"}`)})
		require.NoError(t, err)
	}
	r.accept("staircase", "evt_legacy", nil) // a legacy scheme signs no time
	b := r.browser()

	for id, want := range map[string]string{"evt_early": "2s before receipt", "evt_ahead": "3s after receipt"} {
		page := b.get("/event?webhook=staircase&id=" + id).Body.String()
		assert.Contains(t, page, `<dt>Signed</dt><dd>`+signed[id].UTC().Format("2006-01-02 15:04:05Z")+
			` <span class="muted">(`+want+`)</span></dd>`, id)
		var v struct {
			SignedAt            *time.Time     `json:"signed_at"`
			ReceivedAt          time.Time      `json:"received_at"`
			SignedBeforeReceipt *time.Duration `json:"signed_before_receipt_ns"`
		}
		require.NoError(t, json.Unmarshal(b.get("/api/event?webhook=staircase&id="+id).Body.Bytes(), &v))
		require.NotNil(t, v.SignedAt, id)
		assert.True(t, signed[id].Equal(*v.SignedAt), id)
		require.NotNil(t, v.SignedBeforeReceipt, id)
		assert.Equal(t, v.ReceivedAt.Sub(*v.SignedAt), *v.SignedBeforeReceipt, id)
	}

	page := b.get("/event?webhook=staircase&id=evt_legacy").Body.String()
	assert.Contains(t, page, `<dt>Signed</dt><dd>—</dd>`)
	var v map[string]any
	require.NoError(t, json.Unmarshal(b.get("/api/event?webhook=staircase&id=evt_legacy").Body.Bytes(), &v))
	assert.NotContains(t, v, "signed_at")
	assert.NotContains(t, v, "signed_before_receipt_ns")
}

func TestSignedGap(t *testing.T) {
	received := time.Date(2026, 5, 1, 12, 0, 0, 400_000_000, time.UTC)
	for _, c := range []struct {
		signed time.Time
		want   string
	}{
		{received.Add(-2400 * time.Millisecond), "2s before receipt"},
		{received.Add(-90 * time.Minute), "1h30m0s before receipt"},
		{received.Add(3 * time.Second), "3s after receipt"},
		// Within half a second either way: the signed time has whole
		// seconds, so nothing finer is claimed.
		{received.Add(-400 * time.Millisecond), "at receipt"},
		{received.Add(499 * time.Millisecond), "at receipt"},
	} {
		assert.Equal(t, c.want, console.SignedGap(c.signed, received), "signed %v", c.signed)
	}
}
