package receiver

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/stairhook/stairhook/receiver/console"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/queue"
)

// The receiver's traces (see ServerOptions.TracerProvider). One trace per
// event: the span that accepts it, under it one span per attempt of each
// sink (on whichever instance works the job: the accept span's
// traceparent is kept with the jobs), and under each attempt a client
// span per HTTP request the sink makes.
//
// A span holds names the configuration chose, the event's id and type,
// counts, outcomes and error types; never a secret, a signature, a body, a
// URL's path or query (a Slack or Teams webhook URL is a secret itself),
// nor an error's text, which may quote a destination's answer: the
// attempt's log line, which carries the trace_id, has it.

// tracerName is the instrumentation scope of the receiver's spans.
const tracerName = "github.com/stairhook/stairhook/receiver"

// Span names.
const (
	spanAccept  = "stairhook.accept"
	spanDeliver = "stairhook.deliver"
)

// Span attributes of the receiver's own.
const (
	attrWebhook   = attribute.Key("stairhook.webhook")
	attrEventID   = attribute.Key("stairhook.event.id")
	attrEventType = attribute.Key("stairhook.event.type")
	attrSinks     = attribute.Key("stairhook.sinks") // how many sinks the event is queued for
	attrSink      = attribute.Key("stairhook.sink")
	attrAttempt   = attribute.Key("stairhook.attempt")
	// attrOutcome is a request's outcome (console.Outcome…) on the accept
	// span, an attempt's (console.Attempt…) on a deliver span.
	attrOutcome = attribute.Key("stairhook.outcome")
	// attrReason is a refused request's error code, or a failed attempt's
	// reason class (sink.ReasonClass).
	attrReason = attribute.Key("stairhook.reason")
)

// traceContext is the W3C Trace Context format, in which an accept span's
// context is kept with its jobs and sent on by the forward sink. It is
// used directly, not the global propagator: what the database holds must
// not depend on what a program set globally.
var traceContext propagation.TraceContext

// The spans' start options, made once: made per span they would cost
// every request and attempt two allocations with tracing off.
var (
	acceptStart  = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	deliverStart = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
)

// startAccept starts the span of one webhook request. Its parent is the
// span of ctx, if any (an embedder's server span); the sender's own
// traceparent header is not honoured: the sender is another party, whose
// trace ids and sampling decisions are not ours to take. ctx is returned
// unchanged when there is nothing to trace, so that tracing off costs the
// request no new context.
func (s *Server) startAccept(ctx context.Context, webhook string) (context.Context, trace.Span) {
	sctx, span := s.tracer.Start(ctx, spanAccept, acceptStart...)
	if !span.SpanContext().IsValid() {
		return ctx, span
	}
	if span.IsRecording() {
		span.SetAttributes(attrWebhook.String(webhook))
	}
	return sctx, span
}

// traceEvent notes the decoded event on the accept span of ctx.
func traceEvent(ctx context.Context, ev *event.Event, sinks int) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attrEventID.String(clipText(ev.ID, 256)), attrEventType.String(clipText(ev.Type, 128)), attrSinks.Int(sinks))
	}
}

// traceAnswer notes how the request of ctx was answered: outcome is a
// console.Outcome…, reason the error code of a refusal ("" otherwise). A
// 5xx marks the span as an error; a refusal of the sender's request (4xx)
// is the server doing its job.
func traceAnswer(ctx context.Context, outcome, reason string, status int) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attrOutcome.String(outcome), semconv.HTTPResponseStatusCode(status))
	if reason != "" {
		span.SetAttributes(attrReason.String(reason))
	}
	if status >= 500 {
		span.SetStatus(codes.Error, reason)
	}
}

// traceparent is the W3C traceparent of the span of ctx, "" when there is
// none (tracing off).
func traceparent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	traceContext.Inject(ctx, c)
	return c["traceparent"]
}

// traceLog is the log attribute that ties a log line to its trace, for
// the lines of a traced request or attempt.
func traceLog(ctx context.Context, attrs []slog.Attr) []slog.Attr {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	}
	return attrs
}

// startDeliver starts the span of one attempt, under the accept span whose
// traceparent the job kept; a job without one (accepted while tracing was
// off) starts a trace of its own.
func (s *Server) startDeliver(ctx context.Context, d *queue.Delivery) (context.Context, trace.Span) {
	if d.Trace != "" {
		ctx = traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": d.Trace})
	}
	ctx, span := s.tracer.Start(ctx, spanDeliver, deliverStart...)
	if span.IsRecording() {
		span.SetAttributes(attrWebhook.String(d.Webhook), attrEventID.String(clipText(d.EventID, 256)),
			attrSink.String(d.Sink), attrAttempt.Int(d.Attempt))
	}
	return ctx, span
}

// endDeliver notes the attempt's outcome, as the queue acts on it, and
// ends its span.
func endDeliver(span trace.Span, res queue.Result) {
	defer span.End()
	if !span.IsRecording() {
		return
	}
	outcome := attemptOutcome(res)
	span.SetAttributes(attrOutcome.String(string(outcome)))
	if res.Err != nil {
		reason := reasonClassOf(res.Err)
		span.SetAttributes(attrReason.String(reason))
		span.SetStatus(codes.Error, string(outcome)+": "+reason)
	}
}

// attemptOutcome names what the queue does with an attempt's result.
func attemptOutcome(res queue.Result) console.AttemptOutcome {
	switch {
	case res.Err == nil:
		return console.AttemptDelivered
	case res.Permanent:
		return console.AttemptDead
	case res.Wait > 0:
		return console.AttemptWait
	}
	return console.AttemptRetry
}

// tracedClient returns a copy of c (nil: a zero client) whose requests
// are client spans under the span of their context, when it is
// recording. With propagate, the request also carries the span's
// traceparent.
//
// The Jira, Slack and Teams sinks get a client without propagate: their
// destinations are third parties, who have no use for our trace ids. The
// forward sink's gets one with: its destination is the operator's own
// service, which can continue the trace.
//
// This is not otelhttp's transport, which records the request's full URL
// (url.full): a Slack or Teams webhook URL is a secret, and a forward
// URL may carry a token in its query.
func (s *Server) tracedClient(c *http.Client, propagate bool) *http.Client {
	out := &http.Client{}
	if c != nil {
		*out = *c
	}
	out.Transport = &tracedTransport{base: out.Transport, tracer: s.tracer, propagate: propagate}
	return out
}

// tracedTransport makes a client span of each request; see tracedClient.
type tracedTransport struct {
	base      http.RoundTripper // nil: http.DefaultTransport
	tracer    trace.Tracer
	propagate bool
}

func (t *tracedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	// Tracing off, an unsampled attempt, or a request outside any attempt
	// (a sink checking its destination at start): no span, nothing to do.
	if !trace.SpanFromContext(req.Context()).IsRecording() {
		return base.RoundTrip(req)
	}
	attrs := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(req.Method), semconv.URLScheme(req.URL.Scheme)}
	attrs = append(attrs, semconv.ServerAddress(req.URL.Hostname()))
	port, err := strconv.Atoi(req.URL.Port())
	if err != nil { // the scheme's
		port = 80
		if req.URL.Scheme == "https" {
			port = 443
		}
	}
	attrs = append(attrs, semconv.ServerPort(port))
	ctx, span := t.tracer.Start(req.Context(), req.Method, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End() // at the answer's headers: the sinks read small bodies
	if t.propagate {
		// A RoundTripper must not change the caller's request.
		req = req.Clone(ctx)
		traceContext.Inject(ctx, propagation.HeaderCarrier(req.Header))
	} else {
		req = req.WithContext(ctx)
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		et := semconv.ErrorType(err)
		span.SetAttributes(et)
		span.SetStatus(codes.Error, et.Value.AsString())
		return resp, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(resp.StatusCode)))
		span.SetStatus(codes.Error, "")
	}
	return resp, nil
}

// traceRequests wraps a webhook's handler (the verify middleware and what
// follows it) in the request's accept span, so the span covers the
// verification and records the request's refusal as well as its
// acceptance.
func (s *Server) traceRequests(webhook string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := s.startAccept(r.Context(), webhook)
		defer span.End()
		if ctx != r.Context() {
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}
