package receiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/redisstore"
)

// Sink outcomes, as reported in responses and logs.
const (
	outcomeDelivered   = "delivered"   // the sink succeeded now
	outcomeSkipped     = "skipped"     // it had succeeded before for this event
	outcomeInFlight    = "in_flight"   // another delivery of the event runs it
	outcomeFailed      = "failed"      // transient failure: retry
	outcomeRejected    = "rejected"    // permanent failure: dead-lettered
	outcomeUnavailable = "unavailable" // the store failed: retry
)

type sinkResult struct {
	Name    string `json:"name"`
	Outcome string `json:"outcome"`
	// Reason is the reason class of a rejection, such as "jira 400",
	// "smtp 550" or "template": fixed text derived from the error's type,
	// never the destination's words.
	Reason string `json:"reason,omitempty"`

	// err is the sink's error. It goes to the log and the dead-letter
	// file, never to the sender: a destination's error text is internal
	// detail and may echo what it was sent.
	err        error
	retryAfter time.Duration
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Reason is the reason class of the first rejected sink (see
	// sinkResult.Reason).
	Reason string `json:"reason,omitempty"`
}

type deliveryResponse struct {
	Status string       `json:"status"`
	Error  *errorBody   `json:"error,omitempty"`
	Sinks  []sinkResult `json:"sinks,omitempty"`
}

// deliver runs behind the verify middleware in inline mode (see
// ServerOptions.Inline): the request is authentic and its id reserved; the
// sinks run inside the request. A 2xx answer marks the id done; anything else releases
// it, so the sender's retry comes back here.
func (s *Server) deliver(w http.ResponseWriter, r *http.Request, h *webhook) {
	start := time.Now()
	ev, res, ok := s.decodeVerified(w, r, h)
	if !ok {
		return
	}

	sinks := matchSinks(h.routes, ev)
	if len(sinks) == 0 {
		s.logDelivery(r.Context(), h, ev, res, http.StatusOK, nil, start)
		writeJSON(w, http.StatusOK, deliveryResponse{Status: "ignored"})
		return
	}

	// The sinks run to completion (bounded) even if the sender hangs up
	// or the server shuts down: a half-run sink would be neither recorded
	// nor released in time for the retry.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.deliveryTimeout)
	defer cancel()
	results := make([]sinkResult, len(sinks))
	for i, sink := range sinks {
		results[i] = s.runSink(ctx, h.name, ev, sink)
	}

	status, resp, retryAfter := summarize(results)
	if status == http.StatusUnprocessableEntity {
		if err := s.deadLetter(h, ev, results); err != nil {
			// Not on disk: the sender must keep the event.
			s.log.LogAttrs(r.Context(), slog.LevelError, "dead-letter write failed", slog.String("error", err.Error()))
			status, retryAfter = http.StatusServiceUnavailable, DefaultRetryAfter
			resp.Status = "retry"
			resp.Error = &errorBody{Code: "dead_letter_unavailable", Message: "a sink rejected the event and the dead-letter file could not be written"}
		}
	}
	s.logDelivery(r.Context(), h, ev, res, status, results, start)
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	writeJSON(w, status, resp)
}

// runSink runs one sink for ev, as delivered to the named webhook, unless
// the ledger says it already succeeded.
func (s *Server) runSink(ctx context.Context, webhook string, ev *event.Event, sink Sink) sinkResult {
	out := sinkResult{Name: sink.Name()}
	resv, state, err := s.ledger.reserve(ctx, webhook, ev.ID, out.Name)
	switch {
	case err != nil:
		out.Outcome, out.err = outcomeUnavailable, err
		return out
	case state == verify.StateDone:
		out.Outcome = outcomeSkipped
		return out
	case state == verify.StateInFlight:
		out.Outcome, out.err, out.retryAfter = outcomeInFlight, errors.New("another delivery of this event is running this sink"), time.Second
		return out
	}
	err = callSink(ctx, sink, ev)
	if err == nil {
		if err := s.ledger.done(ctx, resv); err != nil {
			// Delivered but not recorded. The reservation is kept (not
			// released) so a retry waits for it to expire rather than run
			// the sink again at once.
			out.Outcome, out.err = outcomeUnavailable, fmt.Errorf("delivered, but recording it failed: %w", err)
			return out
		}
		out.Outcome = outcomeDelivered
		return out
	}
	if rerr := s.ledger.release(ctx, resv); rerr != nil {
		s.log.Warn("ledger release failed", "sink", out.Name, "id", ev.ID, "error", rerr.Error())
	}
	out.err = err
	if errors.Is(err, ErrPermanent) {
		out.Outcome, out.Reason = outcomeRejected, reasonClassOf(err)
		return out
	}
	out.Outcome = outcomeFailed
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		out.retryAfter = ra.After
	}
	return out
}

// summarize chooses the answer: any retryable outcome → 503 with the
// longest Retry-After asked; else any rejection → 422; else 200.
func summarize(results []sinkResult) (status int, resp deliveryResponse, retryAfter int) {
	var retry, rejected, storeDown bool
	var after time.Duration
	var reason, class string
	for _, r := range results {
		switch r.Outcome {
		case outcomeFailed, outcomeInFlight, outcomeUnavailable:
			retry = true
			storeDown = storeDown || r.Outcome == outcomeUnavailable
			after = max(after, r.retryAfter)
		case outcomeRejected:
			if !rejected {
				reason = "sink " + r.Name + " rejected the event (" + r.Reason + "); the details are in the receiver's log and dead-letter file"
				class = r.Reason
			}
			rejected = true
		}
	}
	resp = deliveryResponse{Status: "delivered", Sinks: results}
	switch {
	case retry:
		secs := DefaultRetryAfter
		if after > 0 {
			secs = int(min(math.Ceil(after.Seconds()), maxRetryAfter))
		}
		resp.Status = "retry"
		resp.Error = &errorBody{Code: "sink_unavailable", Message: "a sink failed temporarily; retry later"}
		if storeDown {
			resp.Error = &errorBody{Code: "store_unavailable", Message: "the record of delivered sinks is unavailable; retry later"}
		}
		return http.StatusServiceUnavailable, resp, secs
	case rejected:
		resp.Status = "rejected"
		resp.Error = &errorBody{Code: "sink_rejected", Message: reason, Reason: class}
		return http.StatusUnprocessableEntity, resp, 0
	}
	return http.StatusOK, resp, 0
}

func (s *Server) deadLetter(h *webhook, ev *event.Event, results []sinkResult) error {
	var recs []DeadLetter
	for _, r := range results {
		if r.Outcome == outcomeRejected {
			recs = append(recs, DeadLetter{
				Time: s.now().UTC(), Webhook: h.name, EventID: ev.ID,
				Sink: r.Name, Error: r.err.Error(), Body: ev.Raw,
			})
		}
	}
	return s.deadLetters.append(recs)
}

func (s *Server) logDelivery(ctx context.Context, h *webhook, ev *event.Event, res verify.Result, status int, results []sinkResult, start time.Time) {
	level := slog.LevelInfo
	if status != http.StatusOK {
		level = slog.LevelWarn
	}
	outcomes := make([]any, 0, len(results))
	var errs []any
	for _, r := range results {
		outcomes = append(outcomes, slog.String(r.Name, r.Outcome))
		if r.err != nil {
			errs = append(errs, slog.String(r.Name, clipText(r.err.Error(), 1024)))
		}
	}
	attrs := []slog.Attr{
		slog.String("webhook", h.name),
		slog.String("id", ev.ID),
		slog.String("type", ev.Type),
		slog.String("account", ev.Account.ID),
		slog.String("key", res.KeyLabel),
		slog.Bool("test", ev.Test),
		slog.Int("status", status),
		slog.Group("sinks", outcomes...),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
	}
	if len(errs) > 0 {
		attrs = append(attrs, slog.Group("errors", errs...))
	}
	s.log.LogAttrs(ctx, level, "delivery", attrs...)
}

// inlineStores makes the stores of inline mode: the ids and the ledger of
// done sinks, in ServerOptions.Store, Config.Store.Redis or memory.
func (s *Server) inlineStores(c *Config, opts ServerOptions) (verify.Store, error) {
	store := opts.Store
	switch {
	case store != nil:
		if p, ok := store.(interface{ Ping(context.Context) error }); ok {
			s.ping = p.Ping
		}
	case c.Store.Redis != "":
		ro, err := redis.ParseURL(c.Store.Redis)
		if err != nil {
			return nil, configErr("store.redis", "must be a redis:// or rediss:// URL")
		}
		rc := redis.NewClient(ro)
		store = redisstore.New(rc, redisstore.Options{})
		s.ping = func(ctx context.Context) error { return rc.Ping(ctx).Err() }
		s.closeStore = rc.Close
	}
	ledgerStore := store
	if store == nil {
		// Apart, because the two fill differently: the ids live minutes and
		// must not be forgotten early (a replay would get through), while
		// the done sinks live Retention (days) and forgetting the oldest
		// only risks running a sink again for a very late redelivery. In
		// one store the done sinks would fill it and every new event would
		// be refused.
		s.memIDs = verify.NewMemoryStore(verify.MemoryStoreOptions{MaxEntries: opts.idEntries, Now: opts.Now})
		store = s.memIDs
		ledgerStore = verify.NewMemoryStore(verify.MemoryStoreOptions{
			MaxEntries: opts.ledgerEntries,
			EvictDone:  true,
			Now:        opts.Now,
		})
	}
	s.ledger = ledger{store: ledgerStore, retention: c.Retention, hold: s.deliveryTimeout + time.Minute}

	return store, nil
}
