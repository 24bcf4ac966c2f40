package console

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stairhook/stairhook/receiver/queue"
)

// other is the label value of anything outside the configuration's names
// and the fixed lists below: labels stay bounded whatever a request says.
// No webhook, key or sink can be named so (parentheses are not allowed in
// their names).
const other = "(other)"

// Request outcomes, the outcome label of stairhook_requests_total.
const (
	OutcomeAccepted  = "accepted"
	OutcomeDuplicate = "duplicate"
	OutcomeRefused   = "refused"
)

// AttemptOutcome is how one attempt of a sink ended, the outcome label of
// stairhook_sink_attempts_total.
type AttemptOutcome string

// The attempt outcomes, as the queue acts on them.
const (
	AttemptDelivered AttemptOutcome = "delivered"
	AttemptRetry     AttemptOutcome = "retry"
	AttemptWait      AttemptOutcome = "wait"
	AttemptDead      AttemptOutcome = "dead"
)

var attemptOutcomes = []AttemptOutcome{AttemptDelivered, AttemptRetry, AttemptWait, AttemptDead}

// RefusalReasons are the reason label values of a refused request: the
// error codes of the verify middleware's and the receiver's answers. Any
// other is counted as "(other)".
var RefusalReasons = []string{
	"missing_signature", "malformed_header", "timestamp_too_old", "timestamp_too_new",
	"no_matching_signature", "body_too_large", "bad_body", "method_not_allowed", "in_flight",
	"store_unavailable", "store_full", "invalid_event", "id_mismatch", "shutting_down",
	"not_accepting", "unknown_webhook",
}

// queueCacheFor is how long the queue's gauges are reused between scrapes:
// several Prometheus servers scraping every second cost one query each
// few seconds.
const queueCacheFor = 5 * time.Second

// queueQueryTimeout bounds the queue's query of one scrape.
const queueQueryTimeout = 5 * time.Second

// Histogram buckets, in seconds.
var (
	verifyBuckets  = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}
	latencyBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}
)

// MetricsOptions configures NewMetrics. Webhooks bound the label values:
// a name not listed there is counted as "(other)".
type MetricsOptions struct {
	// Webhooks are the configured webhooks, their key labels and sinks.
	Webhooks []Webhook
	// Queue, when set, is read for the gauges of the queue (depth by
	// state, oldest pending job, dead letters) at most every 5 s. Default
	// value is none: no queue gauges.
	Queue *queue.Queue
	// Recorder, when set, reports what it dropped. Default value is none.
	Recorder *queue.Recorder
	// Logger receives a line when the queue cannot be read. Default value
	// is slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Default value is time.Now.
	Now func() time.Time
}

// Metrics are the receiver's Prometheus metrics, all prefixed stairhook_,
// registered on the registry given to NewMetrics. The receiver calls its
// methods from the accept and work paths; every method is safe for
// concurrent use, cheap (a map lookup and an atomic add; see
// BenchmarkMetrics), and a no-op on a nil *Metrics.
type Metrics struct {
	webhooks map[string]bool
	keys     map[string]map[string]bool
	sinks    map[string]bool
	reasons  map[string]bool

	requests      *prometheus.CounterVec
	verify        *prometheus.HistogramVec
	attempts      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	keyUses       *prometheus.CounterVec
	queueFailures prometheus.Counter
}

// NewMetrics registers the metrics on reg and returns them. Every series
// of the configured names starts at zero, so rates and alerts see them
// before the first event.
func NewMetrics(reg *prometheus.Registry, o MetricsOptions) (*Metrics, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	m := &Metrics{webhooks: map[string]bool{}, keys: map[string]map[string]bool{}, sinks: map[string]bool{}, reasons: map[string]bool{}}
	for _, w := range o.Webhooks {
		m.webhooks[w.Name] = true
		m.keys[w.Name] = map[string]bool{}
		for _, k := range w.Keys {
			m.keys[w.Name][k] = true
		}
		for _, s := range w.Sinks {
			m.sinks[s] = true
		}
	}
	for _, r := range RefusalReasons {
		m.reasons[r] = true
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stairhook_requests_total",
		Help: "Webhook requests by webhook and outcome (accepted, duplicate, refused); reason is the refusal's error code.",
	}, []string{"webhook", "outcome", "reason"})
	m.verify = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "stairhook_verify_duration_seconds",
		Help:    "Time from a webhook request's arrival to its verified body: reading, checking the signature and the replay window.",
		Buckets: verifyBuckets,
	}, []string{"webhook"})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stairhook_sink_attempts_total",
		Help: "Attempts of a sink by outcome: delivered, retry (a transient failure), wait (the destination asked to wait), dead.",
	}, []string{"sink", "outcome"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "stairhook_delivery_latency_seconds",
		Help:    "Time from an event's acceptance to its delivery by a sink, retries included.",
		Buckets: latencyBuckets,
	}, []string{"sink"})
	m.keyUses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stairhook_key_uses_total",
		Help: "Requests verified, by webhook and the label of the key that verified them.",
	}, []string{"webhook", "key"})
	m.queueFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "stairhook_queue_read_failures_total",
		Help: "Scrapes whose reading of the queue's gauges failed; the gauges are then left out.",
	})
	cs := []prometheus.Collector{m.requests, m.verify, m.attempts, m.latency, m.keyUses, m.queueFailures}
	if o.Queue != nil {
		cs = append(cs, &queueCollector{q: o.Queue, now: o.Now, log: o.Logger, failures: m.queueFailures})
	}
	if r := o.Recorder; r != nil {
		cs = append(cs,
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "stairhook_refusals_dropped_total",
				Help: "Refused requests not recorded in the database: the recorder's buffer was full, or a write failed.",
			}, func() float64 { n, _ := r.Dropped(); return float64(n) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "stairhook_key_uses_dropped_total",
				Help: "Key uses not recorded in the database: the recorder's buffer was full, or a write failed.",
			}, func() float64 { _, n := r.Dropped(); return float64(n) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, w := range o.Webhooks {
		m.requests.WithLabelValues(w.Name, OutcomeAccepted, "")
		m.requests.WithLabelValues(w.Name, OutcomeDuplicate, "")
		for _, r := range RefusalReasons {
			m.requests.WithLabelValues(w.Name, OutcomeRefused, r)
		}
		m.verify.WithLabelValues(w.Name)
		for _, k := range w.Keys {
			m.keyUses.WithLabelValues(w.Name, k)
		}
		for _, s := range w.Sinks {
			for _, oc := range attemptOutcomes {
				m.attempts.WithLabelValues(s, string(oc))
			}
			m.latency.WithLabelValues(s)
		}
	}
	return m, nil
}

func (m *Metrics) webhook(name string) string {
	if m.webhooks[name] {
		return name
	}
	return other
}

func (m *Metrics) sink(name string) string {
	if m.sinks[name] {
		return name
	}
	return other
}

// Accepted counts an event recorded and queued (202).
func (m *Metrics) Accepted(webhook string) {
	if m != nil {
		m.requests.WithLabelValues(m.webhook(webhook), OutcomeAccepted, "").Inc()
	}
}

// Duplicate counts a redelivery of an event already accepted (200 with
// X-Stairhook-Duplicate), whether the middleware or the accept answered it.
func (m *Metrics) Duplicate(webhook string) {
	if m != nil {
		m.requests.WithLabelValues(m.webhook(webhook), OutcomeDuplicate, "").Inc()
	}
}

// Refused counts a refused request by its error code (one of
// RefusalReasons; any other counts as "(other)").
func (m *Metrics) Refused(webhook, reason string) {
	if m == nil {
		return
	}
	if !m.reasons[reason] {
		reason = other
	}
	m.requests.WithLabelValues(m.webhook(webhook), OutcomeRefused, reason).Inc()
}

// Verified observes how long a request took from its arrival until the
// verify middleware handed it on, verified.
func (m *Metrics) Verified(webhook string, took time.Duration) {
	if m != nil {
		m.verify.WithLabelValues(m.webhook(webhook)).Observe(took.Seconds())
	}
}

// KeyUsed counts a request verified by the key label of webhook.
func (m *Metrics) KeyUsed(webhook, label string) {
	if m == nil {
		return
	}
	w := m.webhook(webhook)
	if !m.keys[w][label] {
		label = other
	}
	m.keyUses.WithLabelValues(w, label).Inc()
}

// Attempted counts one attempt of a sink by its outcome; for a delivery,
// sinceAccepted (the time since the event was accepted) is observed in the
// accept → delivered latency histogram.
func (m *Metrics) Attempted(sink string, outcome AttemptOutcome, sinceAccepted time.Duration) {
	if m == nil {
		return
	}
	if !slices.Contains(attemptOutcomes, outcome) {
		outcome = AttemptRetry
	}
	s := m.sink(sink)
	m.attempts.WithLabelValues(s, string(outcome)).Inc()
	if outcome == AttemptDelivered {
		m.latency.WithLabelValues(s).Observe(max(sinceAccepted, 0).Seconds())
	}
}

// queueCollector reads the queue's gauges from the database, at most every
// queueCacheFor.
type queueCollector struct {
	q        *queue.Queue
	now      func() time.Time
	log      *slog.Logger
	failures prometheus.Counter

	mu    sync.Mutex
	at    time.Time
	depth *queue.Depth
}

var (
	jobsDesc = prometheus.NewDesc("stairhook_queue_jobs",
		"Jobs in the queue by state: queued, running, retrying, waiting (as the destination asked), dead.", []string{"state"}, nil)
	oldestDesc = prometheus.NewDesc("stairhook_queue_oldest_pending_seconds",
		"Age of the oldest job still to deliver (0 when none).", nil, nil)
	deadDesc = prometheus.NewDesc("stairhook_dead_letters",
		"Dead letters in the database, waiting for a replay.", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsDesc
	ch <- oldestDesc
	ch <- deadDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.depth == nil || now.Sub(c.at) >= queueCacheFor || now.Before(c.at) {
		ctx, cancel := context.WithTimeout(context.Background(), queueQueryTimeout)
		d, err := c.q.Depth(ctx)
		cancel()
		if err != nil {
			c.failures.Inc()
			c.log.Warn("metrics: reading the queue failed", "error", err.Error())
			return
		}
		c.depth, c.at = d, now
	}
	for _, s := range queue.SinkStates() {
		if n, ok := c.depth.Jobs[s]; ok {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), string(s))
		}
	}
	age := 0.0
	if !c.depth.OldestPending.IsZero() {
		age = max(now.Sub(c.depth.OldestPending).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
	ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(c.depth.Jobs[queue.StateDead]))
}
