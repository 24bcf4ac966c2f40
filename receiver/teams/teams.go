package teams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/secreturl"
	"github.com/stairhook/stairhook/receiver/sink"
)

// Outcomes of a delivery, each usable with errors.Is on the error Deliver
// returns (beside sink.ErrPermanent for the permanent ones).
var (
	// ErrRejected means the workflow refused the card in a way a retry
	// cannot change: a 4xx answer (a deleted or disabled workflow, a bad
	// signature, a card it cannot read) or a redirect. Permanent.
	ErrRejected = errors.New("teams: message rejected")
	// ErrRateLimited means the workflow answered 429. With a Retry-After
	// the error is a *sink.RetryAfterError carrying it, for the queue to
	// wait exactly that long.
	ErrRateLimited = errors.New("teams: rate limited")
	// ErrUnavailable means the workflow could not take the card now: a 5xx
	// answer, 408, a timeout, a network failure. Transient.
	ErrUnavailable = errors.New("teams: unavailable")
)

const (
	// maxResponseBody bounds what is read of an answer.
	maxResponseBody = 64 << 10
)

// errorCode is the shape of the code in a Power Automate error answer
// ({"error":{"code":"WorkflowTriggerIsNotEnabled",…}}); nothing else an
// answer holds is quoted.
var errorCode = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.]{0,63}$`)

// Sink posts one Adaptive Card per event to a Teams workflow. Workflows
// have no idempotency key: an attempt whose answer was lost is retried by
// the queue and posts the card again.
type Sink struct {
	name    string
	builder *MessageBuilder
	url     string // the workflow's URL, a secret
	target  string // its host, for errors and logs
	secrets []string
	client  *http.Client
	timeout time.Duration
	log     *slog.Logger
}

// New returns the sink named name that posts the cards of route to the
// route's workflow URL, else to that of cfg, or the problems of cfg (with
// the config path "teams") or of route. Its requests go through a copy of
// client (nil means a zero http.Client) that never follows a redirect; log
// (nil discards) gets a line per card posted.
func New(name string, cfg Config, route Route, client *http.Client, log *slog.Logger) (*Sink, error) {
	errs := cfg.Check("teams")
	errs = append(errs, route.Check("")...)
	errs = append(errs, cfg.CheckRoute("", &route)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	b, err := NewMessageBuilder(route)
	if err != nil {
		return nil, err
	}
	target := cfg.WebhookURL
	if route.WebhookURL != "" {
		target = route.WebhookURL
	}
	c := http.Client{}
	if client != nil {
		c = *client
	}
	// A redirect would send the card elsewhere: it is answered as a
	// permanent failure instead.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	return &Sink{
		name: name, builder: b, url: target, target: "workflow " + secreturl.Host(target),
		secrets: workflowSecrets(target), client: &c, timeout: timeout, log: log,
	}, nil
}

// Name returns the sink's name, as given to New.
func (s *Sink) Name() string { return s.name }

// Deliver posts the card for ev. 2xx is done; 429 with Retry-After is a
// *sink.RetryAfterError; 5xx, 408 and network failures are transient;
// every other answer is permanent.
func (s *Sink) Deliver(ctx context.Context, ev *event.Event) error {
	body, err := s.builder.Build(ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return sink.Permanent(sink.Classed("teams config", fmt.Errorf("%w: %s: %w", ErrRejected, s.target, s.scrub(err))))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return sink.Classed("teams network", fmt.Errorf("%w: %s: %w", ErrUnavailable, s.target, s.scrub(err)))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err := s.classify(resp, data); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "teams card posted", "sink", s.name, "event_id", ev.ID, "to", s.target, "status", resp.StatusCode)
	return nil
}

// classify turns the workflow's answer into the sink's outcome.
func (s *Sink) classify(resp *http.Response, body []byte) error {
	status := resp.StatusCode
	if status >= 200 && status < 300 {
		return nil
	}
	reason := strconv.Itoa(status) + " " + http.StatusText(status)
	if code := codeOf(body); code != "" {
		reason += ": " + code
	}
	class := "teams " + strconv.Itoa(status)
	after := sink.RetryAfter(resp.Header, time.Now())
	switch {
	case status == http.StatusTooManyRequests:
		e := sink.Classed(class, fmt.Errorf("%w: %s: %s", ErrRateLimited, s.target, reason))
		if after > 0 {
			return &sink.RetryAfterError{Err: e, After: after}
		}
		return e
	case status >= 500 || status == http.StatusRequestTimeout:
		e := sink.Classed(class, fmt.Errorf("%w: %s: %s", ErrUnavailable, s.target, reason))
		if after > 0 {
			return &sink.RetryAfterError{Err: e, After: after}
		}
		return e
	case status >= 300 && status < 400:
		return sink.Permanent(sink.Classed(class, fmt.Errorf(
			"%w: %s: %s: the answer is a redirect, which is not followed; check the webhook URL", ErrRejected, s.target, reason)))
	default:
		return sink.Permanent(sink.Classed(class, fmt.Errorf("%w: %s: %s", ErrRejected, s.target, reason)))
	}
}

// codeOf is the error code of a Power Automate error answer, when it has
// the shape of one.
func codeOf(body []byte) string {
	var answer struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &answer) != nil || !errorCode.MatchString(answer.Error.Code) {
		return ""
	}
	return answer.Error.Code
}

// scrub removes the webhook URL from err (see secreturl.Scrub).
func (s *Sink) scrub(err error) error { return secreturl.Scrub(err, s.secrets) }

// workflowSecrets are the forms in which a workflow URL could appear in an
// error's text: those of secreturl.Forms, and each query value long
// enough to be a key (sig, the workflow id).
func workflowSecrets(raw string) []string {
	return append(secreturl.Forms(raw), secreturl.QueryValues(raw)...)
}
