package receiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/stairhook/stairhook/receiver/console"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/queue"
	sinkpkg "github.com/stairhook/stairhook/receiver/sink"
	"github.com/stairhook/stairhook/verify"
)

// acceptTimeout bounds the transaction that records an event and its
// jobs; past it the sender is told 503 and nothing is kept.
const acceptTimeout = 10 * time.Second

// maxWait caps the delay a destination may ask for (Retry-After): a job
// waits at most this long at a time; GiveUpAfter still ends it.
const maxWait = time.Hour

// acceptResponse is the answer to an accepted (202) or duplicate (200)
// event.
type acceptResponse struct {
	Status string   `json:"status"`
	ID     string   `json:"id"`
	Sinks  []string `json:"sinks"`
}

// decodeVerified reads and decodes the verified body, answering the
// request itself when it cannot: 400 invalid_event or id_mismatch.
func (s *Server) decodeVerified(w http.ResponseWriter, r *http.Request, h *webhook) (*event.Event, verify.Result, bool) {
	res, ok := verify.FromContext(r.Context())
	if !ok {
		writeError(w, http.StatusInternalServerError, "internal", "request not verified")
		traceAnswer(r.Context(), console.OutcomeRefused, "internal", http.StatusInternalServerError)
		return nil, res, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, verify.DefaultMaxBodyBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_body", "body could not be read")
		traceAnswer(r.Context(), console.OutcomeRefused, "bad_body", http.StatusBadRequest)
		return nil, res, false
	}
	ev, err := event.Decode(body)
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "event rejected",
			slog.String("webhook", h.name), slog.String("id", res.ID),
			slog.String("key", res.KeyLabel), slog.String("reason", err.Error()))
		writeError(w, http.StatusBadRequest, "invalid_event", err.Error())
		s.refused(r, h.name, http.StatusBadRequest, "invalid_event", err.Error())
		traceAnswer(r.Context(), console.OutcomeRefused, "invalid_event", http.StatusBadRequest)
		return nil, res, false
	}
	if res.Scheme == verify.SchemeV1 && ev.ID != res.ID {
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "event rejected",
			slog.String("webhook", h.name), slog.String("id", res.ID),
			slog.String("key", res.KeyLabel), slog.String("reason", "event id differs from the signed id"))
		writeError(w, http.StatusBadRequest, "id_mismatch", "the event id differs from the signed x-staircase-id")
		s.refused(r, h.name, http.StatusBadRequest, "id_mismatch", "the event id differs from the signed id")
		traceAnswer(r.Context(), console.OutcomeRefused, "id_mismatch", http.StatusBadRequest)
		return nil, res, false
	}
	return ev, res, true
}

// accept runs behind the verify middleware on the queued path: it records
// the event and one job per matched sink in one transaction, and answers
// 202 only once that is durable. A 2xx marks the signed id done; a 503
// releases it, so the sender's retry comes back.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, h *webhook) {
	start := time.Now()
	if s.draining.Load() {
		w.Header().Set("Retry-After", strconv.Itoa(DefaultRetryAfter))
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "the receiver is shutting down; retry later")
		s.metrics.Refused(h.name, "shutting_down")
		traceAnswer(r.Context(), console.OutcomeRefused, "shutting_down", http.StatusServiceUnavailable)
		return
	}
	if began, ok := r.Context().Value(requestStartKey{}).(time.Time); ok {
		s.metrics.Verified(h.name, start.Sub(began))
	}
	ev, res, ok := s.decodeVerified(w, r, h)
	if !ok {
		return
	}
	s.keyUsed(h.name, res.KeyLabel)
	sinks := matchSinks(h.routes, ev)
	names := make([]string, len(sinks))
	for i, sink := range sinks {
		names[i] = sink.Name()
	}
	traceEvent(r.Context(), ev, len(names))
	ctx, cancel := context.WithTimeout(r.Context(), acceptTimeout)
	defer cancel()
	dup, err := s.queue.Accept(ctx, &queue.Accepted{
		Webhook: h.name, EventID: ev.ID, Type: ev.Type, Account: ev.Account.ID,
		KeyLabel: res.KeyLabel, Scheme: string(res.Scheme), SignedAt: res.Timestamp, Test: ev.Test,
		Body: ev.Raw, Sinks: names, Trace: traceparent(r.Context()),
	})
	attrs := []slog.Attr{
		slog.String("webhook", h.name), slog.String("id", ev.ID), slog.String("type", ev.Type),
		slog.String("account", ev.Account.ID), slog.String("key", res.KeyLabel), slog.Bool("test", ev.Test),
		slog.Any("sinks", names),
	}
	attrs = traceLog(r.Context(), attrs)
	switch {
	case err != nil:
		s.log.LogAttrs(r.Context(), slog.LevelError, "accept failed", append(attrs,
			slog.String("error", err.Error()), durationAttr(start))...)
		w.Header().Set("Retry-After", strconv.Itoa(DefaultRetryAfter))
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "the event could not be recorded; retry later")
		s.metrics.Refused(h.name, "store_unavailable")
		traceAnswer(r.Context(), console.OutcomeRefused, "store_unavailable", http.StatusServiceUnavailable)
	case dup:
		// Accepted before, though the middleware's id record is gone (it
		// expired, or the process died between the commit and the
		// record): the same answer as the middleware's duplicate.
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "delivery", append(attrs,
			slog.String("outcome", "duplicate"), slog.Int("status", http.StatusOK), durationAttr(start))...)
		w.Header().Set(verify.DuplicateHeader, "true")
		writeJSON(w, http.StatusOK, acceptResponse{Status: "duplicate", ID: ev.ID, Sinks: names})
		s.metrics.Duplicate(h.name)
		traceAnswer(r.Context(), console.OutcomeDuplicate, "", http.StatusOK)
	default:
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "accepted", append(attrs,
			slog.Int("status", http.StatusAccepted), durationAttr(start))...)
		writeJSON(w, http.StatusAccepted, acceptResponse{Status: "queued", ID: ev.ID, Sinks: names})
		s.metrics.Accepted(h.name)
		traceAnswer(r.Context(), console.OutcomeAccepted, "", http.StatusAccepted)
	}
}

// requestStartKey holds, in a webhook request's context, when serving it
// began: the accept path reports the verification's duration from it.
type requestStartKey struct{}

func durationAttr(start time.Time) slog.Attr {
	return slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000)
}

// work is the queue's WorkFunc: one attempt of one sink for one event, in
// its span.
func (s *Server) work(ctx context.Context, d *queue.Delivery) queue.Result {
	ctx, span := s.startDeliver(ctx, d)
	res := s.attempt(ctx, d)
	endDeliver(span, res)
	return res
}

// attempt runs one attempt of one sink for one event.
func (s *Server) attempt(ctx context.Context, d *queue.Delivery) queue.Result {
	// What the sink notes of its delivery (a Jira issue, a Message-ID)
	// goes with its job, for the console.
	jobCtx := ctx
	ctx = sinkpkg.WithNotes(ctx, func(k, v string) { _ = queue.NoteReceipt(jobCtx, k, v) })
	start := time.Now()
	attrs := []slog.Attr{
		slog.Int64("job", d.JobID), slog.String("webhook", d.Webhook), slog.String("id", d.EventID),
		slog.String("sink", d.Sink), slog.Int("attempt", d.Attempt),
	}
	attrs = traceLog(ctx, attrs)
	var sink Sink
	if h := s.hooks[d.Webhook]; h != nil {
		sink = h.sinks[d.Sink]
	}
	if sink == nil {
		// The configuration changed under the job: a dead letter, to
		// replay once a sink of that name is back.
		err := fmt.Errorf("no sink %s in webhook %s of the current configuration", d.Sink, d.Webhook)
		s.log.LogAttrs(ctx, slog.LevelWarn, "sink failed", append(attrs, slog.String("outcome", "rejected"), slog.String("error", err.Error()))...)
		s.metrics.Attempted(d.Sink, console.AttemptDead, s.now().Sub(d.ReceivedAt))
		return queue.Result{Err: err, Permanent: true}
	}
	ev, err := event.Decode(d.Body)
	if err != nil { // it decoded when accepted: only a newer, stricter decoder refuses it
		s.metrics.Attempted(d.Sink, console.AttemptDead, s.now().Sub(d.ReceivedAt))
		return queue.Result{Err: err, Permanent: true}
	}
	err = callSink(ctx, sink, ev)
	attrs = append(attrs, durationAttr(start))
	since := s.now().Sub(d.ReceivedAt)
	if err == nil {
		s.log.LogAttrs(ctx, slog.LevelInfo, "delivered", attrs...)
		s.metrics.Attempted(d.Sink, console.AttemptDelivered, since)
		return queue.Result{}
	}
	attrs = append(attrs, slog.String("error", clipText(err.Error(), 1024)))
	if errors.Is(err, ErrPermanent) {
		s.log.LogAttrs(ctx, slog.LevelWarn, "sink failed", append(attrs, slog.String("outcome", "rejected"), slog.String("reason", reasonClassOf(err)))...)
		s.metrics.Attempted(d.Sink, console.AttemptDead, since)
		return queue.Result{Err: err, Permanent: true}
	}
	var ra *RetryAfterError
	if errors.As(err, &ra) && ra.After > 0 {
		wait := min(ra.After, maxWait)
		s.log.LogAttrs(ctx, slog.LevelWarn, "sink failed", append(attrs, slog.String("outcome", "wait"), slog.Duration("wait", wait))...)
		s.metrics.Attempted(d.Sink, console.AttemptWait, since)
		return queue.Result{Err: err, Wait: wait}
	}
	s.log.LogAttrs(ctx, slog.LevelWarn, "sink failed", append(attrs, slog.String("outcome", "retry"))...)
	s.metrics.Attempted(d.Sink, console.AttemptRetry, since)
	return queue.Result{Err: err}
}

// openTimeout bounds opening the database and migrating it at start.
const openTimeout = time.Minute

// openQueue opens the database of Config.Store for the queued path and
// returns the id store the middleware uses: ServerOptions.Store, or nil
// for the events table (see idsOf).
func (s *Server) openQueue(c *Config, opts ServerOptions) (verify.Store, error) {
	switch s.role {
	case RoleAll, RoleAccept, RoleWork:
	default:
		return nil, configErr("ServerOptions.Role", "must be all, accept or work")
	}
	loc, err := c.Store.location()
	if err != nil {
		return nil, err
	}
	qo := queue.Options{
		Workers:        c.Delivery.Workers,
		AttemptTimeout: c.Delivery.AttemptTimeout,
		FirstRetry:     c.Delivery.FirstRetry,
		MaxRetry:       c.Delivery.MaxRetry,
		GiveUpAfter:    c.Delivery.GiveUpAfter,
		Retention:      c.Retention,
		PollInterval:   opts.pollInterval,
		Logger:         s.log,
		Now:            opts.Now,
	}
	if s.role != RoleAccept {
		qo.Work = s.work
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	q, err := queue.Open(ctx, loc, qo)
	if err != nil {
		return nil, err
	}
	s.queue = q
	s.ping = q.Ping
	if err := s.importDeadLetters(ctx, c); err != nil {
		q.Close()
		return nil, err
	}
	s.inFlight = newInFlight()
	return opts.Store, nil
}

// idsOf is the verify middleware's store for the webhook: the given store
// under a prefix of the webhook's, or on the queued path by default the
// events table (see acceptedIDs).
func (s *Server) idsOf(webhook string, store verify.Store) verify.Store {
	if store == nil {
		return acceptedIDs{webhook: webhook, inFlight: s.inFlight}
	}
	return idStore{Store: store, prefix: "id/" + webhook + "/"}
}

// Queue is the server's database on the queued path (nil in inline mode),
// for dead-letter tools and tests.
func (s *Server) Queue() *queue.Queue { return s.queue }

// stopWorkers stops the queue's workers at once, cancelling running
// attempts (their jobs stay queued).
func (s *Server) stopWorkers() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.queue.Stop(ctx)
}
