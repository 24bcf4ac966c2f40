package console_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/console"
	"github.com/stairhook/stairhook/receiver/queue"
)

// scrape reads /metrics as Prometheus does (a bearer token) and parses the
// exposition.
func scrape(t *testing.T, r *rig) map[string]*dto.MetricFamily {
	t.Helper()
	res := r.script().do(httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, res.Code)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	require.NoError(t, err)
	return fams
}

// value is the value of the series of family name whose labels include
// labels (name=value pairs); -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func TestMetrics(t *testing.T) {
	r := newRig(t)
	m := r.metrics
	before := scrape(t, r)
	assert.Equal(t, 0.0, value(before, "stairhook_requests_total", "webhook", "staircase", "outcome", "accepted"), "there from the start")
	assert.Equal(t, 0.0, value(before, "stairhook_requests_total", "webhook", "other", "outcome", "refused", "reason", "timestamp_too_old"))
	assert.Equal(t, 0.0, value(before, "stairhook_sink_attempts_total", "sink", "slow", "outcome", "retry"))
	assert.Equal(t, 0.0, value(before, "stairhook_queue_jobs", "state", "queued"))
	assert.Equal(t, 0.0, value(before, "stairhook_dead_letters"))

	m.Accepted("staircase")
	m.Accepted("staircase")
	m.Duplicate("staircase")
	m.Refused("staircase", "timestamp_too_new")
	m.Refused("/webhooks/<script>", "made_up_reason") // neither is a known name
	m.Verified("staircase", 3*time.Millisecond)
	m.KeyUsed("staircase", "current")
	m.KeyUsed("staircase", "a-label-nobody-configured")
	m.Attempted("slow", console.AttemptRetry, 0)
	m.Attempted("ok", console.AttemptDelivered, 1500*time.Millisecond)
	m.Attempted("made-up-sink", console.AttemptDead, 0)
	m.Attempted("ok", "bogus", 0)
	var nilMetrics *console.Metrics
	nilMetrics.Accepted("staircase") // a receiver without metrics calls the same

	r.accept("staircase", "evt_1", nil, "slow", "dead")
	settle(t, r, map[string]map[string]queue.SinkState{"staircase/evt_1": {"slow": queue.StateRetrying, "dead": queue.StateDead}})
	r.advance(10 * time.Second) // past the gauges' cache
	after := scrape(t, r)

	assert.Equal(t, 2.0, value(after, "stairhook_requests_total", "webhook", "staircase", "outcome", "accepted"))
	assert.Equal(t, 1.0, value(after, "stairhook_requests_total", "webhook", "staircase", "outcome", "duplicate"))
	assert.Equal(t, 1.0, value(after, "stairhook_requests_total", "webhook", "staircase", "outcome", "refused", "reason", "timestamp_too_new"))
	assert.Equal(t, 1.0, value(after, "stairhook_requests_total", "webhook", "(other)", "outcome", "refused", "reason", "(other)"))
	assert.Equal(t, 1.0, value(after, "stairhook_verify_duration_seconds", "webhook", "staircase"))
	assert.Equal(t, 1.0, value(after, "stairhook_key_uses_total", "webhook", "staircase", "key", "current"))
	assert.Equal(t, 1.0, value(after, "stairhook_key_uses_total", "webhook", "staircase", "key", "(other)"))
	assert.Equal(t, 1.0, value(after, "stairhook_sink_attempts_total", "sink", "slow", "outcome", "retry"))
	assert.Equal(t, 2.0, value(after, "stairhook_sink_attempts_total", "sink", "ok", "outcome", "retry")+
		value(after, "stairhook_sink_attempts_total", "sink", "ok", "outcome", "delivered"), "an unknown outcome counts as a retry")
	assert.Equal(t, 1.0, value(after, "stairhook_sink_attempts_total", "sink", "(other)", "outcome", "dead"))
	assert.Equal(t, 1.0, value(after, "stairhook_delivery_latency_seconds", "sink", "ok"))
	assert.Equal(t, 1.0, value(after, "stairhook_queue_jobs", "state", "retrying"))
	assert.Equal(t, 1.0, value(after, "stairhook_queue_jobs", "state", "dead"))
	assert.Equal(t, 1.0, value(after, "stairhook_dead_letters"))
	assert.InDelta(t, 10, value(after, "stairhook_queue_oldest_pending_seconds"), 5, "the retrying job, by the console's clock")
	assert.Equal(t, 0.0, value(after, "stairhook_refusals_dropped_total"))

	// The latency histogram put 1.5 s in the 2.5 s bucket, not the 1 s one.
	for _, mt := range after["stairhook_delivery_latency_seconds"].GetMetric() {
		if mt.GetLabel()[0].GetValue() != "ok" {
			continue
		}
		for _, b := range mt.GetHistogram().GetBucket() {
			if b.GetUpperBound() == 1 {
				assert.Zero(t, b.GetCumulativeCount())
			}
			if b.GetUpperBound() == 2.5 {
				assert.Equal(t, uint64(1), b.GetCumulativeCount())
			}
		}
	}

	// Within the cache's few seconds, the queue is not read again.
	r.accept("staircase", "evt_2", nil, "slow")
	settle(t, r, map[string]map[string]queue.SinkState{"staircase/evt_2": {"slow": queue.StateRetrying}})
	assert.Equal(t, 1.0, value(scrape(t, r), "stairhook_queue_jobs", "state", "retrying"), "cached")
	r.advance(6 * time.Second)
	assert.Equal(t, 2.0, value(scrape(t, r), "stairhook_queue_jobs", "state", "retrying"))

	// Every label value is a configured name, a fixed value or "(other)".
	allowed := []string{"", "(other)", "other", "accepted", "duplicate", "refused", "delivered", "retry", "wait", "dead",
		"queued", "running", "retrying", "waiting", "staircase", "current", "previous", "key1", "ok", "slow", "fixable"}
	allowed = append(allowed, console.RefusalReasons...)
	for name, f := range after {
		if !strings.HasPrefix(name, "stairhook_") {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "le" {
					continue
				}
				assert.Contains(t, allowed, l.GetValue(), "%s{%s}", name, l.GetName())
			}
		}
	}
	assert.True(t, slices.ContainsFunc(webhooks, func(w console.Webhook) bool { return w.Name == "other" }),
		"a webhook may be named other: unknown names are counted apart from it")
	assert.Equal(t, 0.0, value(after, "stairhook_requests_total", "webhook", "other", "outcome", "refused", "reason", "timestamp_too_new"))
}

// BenchmarkMetrics measures what the accept and work paths pay per event:
// an accept, a key use, a verification and a delivered attempt.
func BenchmarkMetrics(b *testing.B) {
	m, err := console.NewMetrics(prometheus.NewRegistry(), console.MetricsOptions{Webhooks: webhooks})
	require.NoError(b, err)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Accepted("staircase")
			m.KeyUsed("staircase", "current")
			m.Verified("staircase", time.Millisecond)
			m.Attempted("ok", console.AttemptDelivered, time.Second)
		}
	})
}
