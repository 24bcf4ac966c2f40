// Package sender delivers signed webhook requests: it is the side of the
// scheme that the service emitting Staircase signals imports. Start with
// [New] and [Sender.Send].
//
// Every attempt is a POST of the same body and the same x-staircase-id,
// with a fresh timestamp and a fresh signature per attempt (one v1 entry per
// secret of the endpoint, so receivers holding either secret accept it
// during a rotation). Attempts follow a retry schedule, by default
// immediately, then after 5 s, 5 min, 30 min and 2 h, each delay with ±10%
// jitter so that many endpoints failing together do not retry in lockstep.
//
// # Outcomes
//
// Send stops at the first 2xx answer. It also stops, with
// [ErrPermanentRejection], on a 4xx answer other than 408 (timeout), 409
// (the receiver is still processing the same id) and 429 (rate limited):
// retrying an answer such as 400 or 401 cannot help. Everything else (408,
// 409, 429, 3xx, 5xx, a transport error, a timeout) is retried until the
// schedule runs out, then Send returns [ErrGaveUp]. A disabled endpoint is
// never contacted: [ErrDisabled].
//
// Send blocks until one of those outcomes or until its context ends: with
// the default schedule that is about 2 h 35 min for an endpoint that keeps
// failing. Give the context a deadline, or call Send from a job queue or a
// goroutine of its own, never from a request handler that waits for it.
//
// # Event ids
//
// The event id is the request's x-staircase-id, and a receiver requires it
// to equal the body's top-level "id" (SPEC.md: 400 id_mismatch). Send reads
// it from the body when it is given none ([EventID]), and refuses an id that
// differs from the body's with [ErrIDMismatch], before sending anything.
//
// A 429 or 503 answer with a Retry-After header (seconds or an HTTP date)
// lengthens the next delay to what the receiver asked for, when that is
// longer than the schedule's step, capped at [MaxRetryAfter]; it never
// shortens the schedule.
//
// # Security
//
// The [Report] holds statuses, durations, errors and response bodies (at
// most [MaxResponseBytes] each), never the secret or the signature sent.
// An endpoint URL's password never appears in an error either: transport
// errors (a *url.Error) carry the URL's [url.URL.Redacted] form.
// The default client does not follow redirects: a 3xx answer is a failed
// attempt, so a signed body is only ever sent to the configured URL.
package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/stairhook/stairhook/verify"
)

// UserAgent is the User-Agent header of every request.
const UserAgent = "stairhook-sender/1"

// DefaultTimeout bounds one attempt, response body included, when
// Options.Timeout is zero.
const DefaultTimeout = 15 * time.Second

// DefaultJitter is the jitter fraction used when Options.Jitter is zero.
const DefaultJitter = 0.1

// MaxResponseBytes is how much of each response body an Attempt keeps.
const MaxResponseBytes = 64 << 10

// MaxRetryAfter caps the delay a receiver can ask for with Retry-After.
const MaxRetryAfter = 2 * time.Hour

// DefaultSchedule returns the default delays before each attempt:
// immediately, then 5 s, 5 min, 30 min and 2 h (five attempts over about
// 2 h 35 min). It returns a new slice on each call.
func DefaultSchedule() []time.Duration {
	return []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour}
}

// Errors returned by Send. A returned error may wrap one of them with
// details such as the last status; test with errors.Is.
var (
	// ErrDisabled means the endpoint is disabled: nothing was sent.
	ErrDisabled = errors.New("sender: endpoint disabled")
	// ErrGaveUp means every attempt of the schedule failed with a
	// retryable outcome.
	ErrGaveUp = errors.New("sender: gave up after the last attempt")
	// ErrPermanentRejection means the receiver answered a 4xx status that a
	// retry cannot change (anything but 408, 409 and 429).
	ErrPermanentRejection = errors.New("sender: rejected by the receiver")
	// ErrInvalidEndpoint means the endpoint URL is not an absolute http or
	// https URL; nothing was sent. An endpoint without a usable secret
	// fails with verify.ErrInvalidSecret instead.
	ErrInvalidEndpoint = errors.New("sender: invalid endpoint")
	// ErrInvalidID means the event id, given or read from the body, is
	// missing or not 1–256 visible ASCII characters; nothing was sent. The
	// error also wraps the verify package's reason when it has one.
	ErrInvalidID = errors.New("sender: invalid event id")
	// ErrIDMismatch means the id given to Send differs from the body's
	// top-level "id", which a receiver refuses (400 id_mismatch); nothing
	// was sent.
	ErrIDMismatch = errors.New("sender: event id differs from the body's id")
)

// Endpoint is one registered webhook URL. An Endpoint with a URL and a
// secret sends; set Disabled to stop it.
type Endpoint struct {
	// URL receives the POST; absolute http or https. It may carry a user
	// and password for HTTP basic authentication; errors show it redacted.
	URL string
	// Secrets sign every request: one during normal operation, the old and
	// the new one during a rotation.
	Secrets []verify.Secret
	// Disabled stops every delivery to the endpoint: Send returns
	// ErrDisabled without contacting it. Default value is false: the
	// endpoint receives events.
	Disabled bool
}

// Options configures a Sender. The zero value is ready to use.
type Options struct {
	// Client sends the requests. Default value is a client that does not
	// follow redirects, with http.DefaultTransport.
	Client *http.Client

	// Timeout bounds each attempt, from connecting to reading the response
	// body. Default value is DefaultTimeout (15 s).
	Timeout time.Duration

	// Schedule holds the delay before each attempt; its length is the
	// number of attempts. Default value is DefaultSchedule().
	Schedule []time.Duration

	// Jitter spreads each non-zero delay uniformly within ±Jitter of it.
	// Default value is DefaultJitter (±10%); a negative value disables
	// jitter. Values above 1 are treated as 1.
	Jitter float64

	// Sleep waits d or until ctx is done, returning ctx.Err() then. Default
	// value is the package's Sleep. Tests replace it to skip real waits.
	Sleep func(ctx context.Context, d time.Duration) error

	// Now returns the current time, used for the signed timestamps and the
	// measured durations. Default value is time.Now.
	Now func() time.Time

	// OnAttempt, when set, is called after each attempt with its record,
	// for progress output or metrics. Default value is nil.
	OnAttempt func(Attempt)
}

// Sender posts signed webhook requests with retries. It is safe for
// concurrent use.
type Sender struct {
	client    *http.Client
	timeout   time.Duration
	schedule  []time.Duration
	jitter    float64
	sleep     func(context.Context, time.Duration) error
	now       func() time.Time
	onAttempt func(Attempt)
}

// New returns a Sender for opts.
func New(opts Options) *Sender {
	s := &Sender{
		client:    opts.Client,
		timeout:   opts.Timeout,
		schedule:  append([]time.Duration(nil), opts.Schedule...),
		jitter:    opts.Jitter,
		sleep:     opts.Sleep,
		now:       opts.Now,
		onAttempt: opts.OnAttempt,
	}
	if s.client == nil {
		s.client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if len(s.schedule) == 0 {
		s.schedule = DefaultSchedule()
	}
	switch {
	case s.jitter == 0:
		s.jitter = DefaultJitter
	case s.jitter < 0:
		s.jitter = 0
	case s.jitter > 1:
		s.jitter = 1
	}
	if s.sleep == nil {
		s.sleep = Sleep
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Sleep waits d, or until ctx is done and then returns ctx.Err(). It is the
// default Options.Sleep; a replacement that reports the wait can call it.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Report describes one Send: every attempt made, in order.
type Report struct {
	// ID is the event id sent on every attempt.
	ID string
	// Attempts lists what happened on each attempt.
	Attempts []Attempt
}

// Delivered reports whether the last attempt got a 2xx answer.
func (r *Report) Delivered() bool {
	if r == nil || len(r.Attempts) == 0 {
		return false
	}
	return r.Attempts[len(r.Attempts)-1].Success()
}

// Attempt is the record of one POST.
type Attempt struct {
	// Number counts attempts from 1.
	Number int
	// Waited is the delay slept before this attempt, jitter and
	// Retry-After included.
	Waited time.Duration
	// Start is when the request was signed and sent.
	Start time.Time
	// Duration is the time from sending to the end of the response body.
	Duration time.Duration
	// Status is the HTTP status code, or 0 when no response arrived.
	Status int
	// Err is the transport error (connection refused, timeout, …), or the
	// error that cut reading the response body short; nil otherwise.
	Err error
	// Body is the start of the response body, at most MaxResponseBytes.
	Body []byte
	// Truncated reports that the response body was longer than Body.
	Truncated bool
	// RetryAfter is the delay asked for by a 429 or 503 answer's
	// Retry-After header, or zero.
	RetryAfter time.Duration
	// Duplicate reports a 2xx answer marked with verify.DuplicateHeader:
	// the receiver had already processed this event id and did nothing
	// again.
	Duplicate bool
}

// Success reports whether the attempt got a 2xx answer.
func (a Attempt) Success() bool { return a.Status >= 200 && a.Status <= 299 }

// permanent reports whether a retry cannot change the outcome.
func (a Attempt) permanent() bool {
	return a.Status >= 400 && a.Status <= 499 &&
		a.Status != http.StatusRequestTimeout && a.Status != http.StatusConflict && a.Status != http.StatusTooManyRequests
}

// Send posts body to ep under the event id, retrying on the schedule. It
// returns nil once an attempt gets a 2xx answer.
//
// Send blocks until an attempt succeeds, an answer is permanent, the
// schedule runs out or ctx ends. With the default schedule an endpoint that
// keeps failing holds it for about 2 h 35 min (longer when the receiver
// asks for more with Retry-After: each wait is at most the longer of its
// step and MaxRetryAfter), so give ctx a deadline that suits the caller.
//
// An empty id means the body's own: its top-level "id" string ([EventID]).
// A non-empty id must equal the body's id when the body has one.
//
// On failure the error wraps ErrDisabled, ErrInvalidEndpoint,
// verify.ErrInvalidSecret, ErrInvalidID, ErrIDMismatch,
// ErrPermanentRejection, ErrGaveUp, or the context's error when ctx ends
// first. The first five are reported before anything is sent. The Report
// is never nil and lists the attempts made so far.
func (s *Sender) Send(ctx context.Context, ep Endpoint, id string, body []byte) (*Report, error) {
	rep := &Report{ID: id}
	if ep.Disabled {
		return rep, ErrDisabled
	}
	u, err := url.Parse(ep.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return rep, fmt.Errorf("%w: URL must be an absolute http or https URL", ErrInvalidEndpoint)
	}
	signer, err := verify.NewSigner(ep.Secrets...)
	if err != nil {
		return rep, err
	}
	inBody := EventID(body)
	switch {
	case id == "" && inBody == "":
		return rep, fmt.Errorf(`%w: none given, and the body has no top-level "id" string`, ErrInvalidID)
	case id == "":
		id, rep.ID = inBody, inBody
	case inBody != "" && inBody != id:
		return rep, ErrIDMismatch
	}
	// Fail on a bad id before anything is sent. Whatever verify calls the
	// error, it is wrapped next to ErrInvalidID.
	if _, err := signer.Sign(id, s.now(), nil); err != nil {
		return rep, fmt.Errorf("%w: %w", ErrInvalidID, err)
	}
	redacted := u.Redacted()
	var retryAfter time.Duration
	for i, step := range s.schedule {
		wait := s.jittered(step)
		if retryAfter > wait {
			wait = retryAfter
		}
		if wait > 0 {
			if err := s.sleep(ctx, wait); err != nil {
				return rep, err
			}
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		a := s.attempt(ctx, signer, u.String(), redacted, id, body)
		a.Number = i + 1
		a.Waited = wait
		rep.Attempts = append(rep.Attempts, a)
		if s.onAttempt != nil {
			s.onAttempt(a)
		}
		switch {
		case a.Success():
			return rep, nil
		case a.permanent():
			return rep, fmt.Errorf("%w: status %d", ErrPermanentRejection, a.Status)
		}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		retryAfter = a.RetryAfter
	}
	last := rep.Attempts[len(rep.Attempts)-1]
	if last.Err != nil {
		return rep, fmt.Errorf("%w: %d attempts, last: %v", ErrGaveUp, len(rep.Attempts), last.Err)
	}
	return rep, fmt.Errorf("%w: %d attempts, last status %d", ErrGaveUp, len(rep.Attempts), last.Status)
}

// jittered spreads d within ±jitter of it.
func (s *Sender) jittered(d time.Duration) time.Duration {
	if d <= 0 || s.jitter == 0 {
		return d
	}
	f := 1 + s.jitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

// attempt signs and posts once, bounded by the per-attempt timeout. shown
// is the target as errors may quote it.
func (s *Sender) attempt(ctx context.Context, signer *verify.Signer, target, shown, id string, body []byte) Attempt {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	a := Attempt{Start: s.now()}
	h, err := signer.Sign(id, a.Start, body)
	if err != nil {
		a.Err = err
		return a
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		a.Err = err
		return a
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	// The event id is the request's idempotency key, as receivers drop a
	// second delivery of an id. It also lets net/http send the request
	// again, on a new connection, when a kept-alive one was closed under
	// it (a receiver shutting down closes idle connections as a request
	// arrives), instead of failing the attempt.
	req.Header.Set("Idempotency-Key", id)
	resp, err := s.client.Do(req)
	if err != nil {
		a.Duration = s.now().Sub(a.Start)
		a.Err = redactURLError(err, shown)
		return a
	}
	defer resp.Body.Close()
	a.Status = resp.StatusCode
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if len(b) > MaxResponseBytes {
		b, a.Truncated = b[:MaxResponseBytes], true
	}
	a.Body = b
	if err != nil {
		// The status stands; the partial body is kept for the report.
		a.Err = err
	}
	a.Duration = s.now().Sub(a.Start)
	a.Duplicate = a.Success() && resp.Header.Get(verify.DuplicateHeader) == "true"
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		a.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), s.now())
	}
	return a
}

// parseRetryAfter reads delay-seconds or an HTTP date, capped at
// MaxRetryAfter; anything unreadable is zero.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		if n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, MaxRetryAfter)
}

// redactURLError returns err with the URL of its *url.Error (every
// http.Client error is one) in the redacted form, "user:xxxxx@", that all of
// the module's messages use. net/http masks a password as "***" itself;
// this keeps one form, and holds whatever the client does.
func redactURLError(err error, shown string) error {
	if ue, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue.Op, URL: shown, Err: ue.Err}
	}
	return err
}

// EventID returns the event id a body carries: its top-level "id" when the
// body is a JSON object whose "id" is a string, else "". It reads the key
// exactly, and the last of repeated keys, as a receiver does. Send uses it
// when given no id.
func EventID(body []byte) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return ""
	}
	var id string
	if json.Unmarshal(fields["id"], &id) != nil {
		return ""
	}
	return id
}
