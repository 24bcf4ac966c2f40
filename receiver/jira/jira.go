package jira

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/render"
	"github.com/stairhook/stairhook/receiver/sink"
)

const (
	defaultTimeout = 10 * time.Second
	maxErrorBody   = 64 << 10
	maxAttempts    = 3
	defaultBudget  = 30 * time.Second // when the caller's ctx has no deadline
	backoffBase    = 500 * time.Millisecond
	backoffMax     = 10 * time.Second
	issuePath      = "rest/api/3/issue"
	searchPath     = "rest/api/3/search/jql"
	gatewayHost    = "api.atlassian.com"
)

// Sink creates one Jira issue per event, at most once: before creating it
// searches the route's project for the event's idempotency label, which
// depends on the event id and the webhook the sink serves. Jira's search
// index lags behind creates by a few seconds, so a redelivery that arrives
// inside that window would not see the issue; the server's record of done
// sinks covers it (a sink that succeeded is not run again for the same
// event id). The remaining window is a create whose response was lost
// (timeout, reset, 5xx after the request was sent) followed by a
// redelivery within the search lag; the sink does not retry such a create
// itself, so the sender's next attempt comes seconds later, when search
// normally sees the issue.
type Sink struct {
	name    string
	builder *IssueBuilder
	issue   string // absolute URL of the create endpoint
	search  string // absolute URL of the search endpoint
	browse  string // absolute URL of the issues' pages, "" behind the gateway
	email   string
	token   string
	timeout time.Duration
	client  *http.Client
	log     *slog.Logger
	// sleep waits between attempts; tests replace it.
	sleep func(context.Context, time.Duration) error
	// now is the clock of the legacy label's window; tests replace it.
	now func() time.Time
}

// New returns the sink named name that creates the issues of route in the
// site of cfg, or the problems of cfg (with the config path "jira") or of
// route. The part of name before its first "." is the webhook whose events
// the sink receives (receiver names its sinks <webhook>.<route>.jira): it
// scopes the issues' idempotency label (see NewIssueBuilder). Its requests
// go through a copy of client (nil means a zero http.Client) that never
// follows a redirect; log (nil discards) gets a line per issue created or
// found.
func New(name string, cfg Config, route Route, client *http.Client, log *slog.Logger) (*Sink, error) {
	if errs := cfg.Check("jira"); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	b, err := NewIssueBuilder(render.WebhookOf(name), route)
	if err != nil {
		return nil, err
	}
	issue, err := url.JoinPath(cfg.BaseURL, issuePath)
	if err != nil {
		return nil, err
	}
	search, err := url.JoinPath(cfg.BaseURL, searchPath)
	if err != nil {
		return nil, err
	}
	// An issue's page is on the site; the gateway serves the API only.
	var browse string
	if u, err := url.Parse(cfg.BaseURL); err == nil && u.Hostname() != gatewayHost {
		browse, _ = url.JoinPath(cfg.BaseURL, "browse")
	}
	// Whatever client is given, a copy of it never follows a redirect: the
	// API never redirects a POST, and following a 307/308 would send the
	// body (and, to the same host, the Authorization header) elsewhere.
	// once turns a 3xx answer into a permanent error.
	c := http.Client{}
	if client != nil {
		c = *client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client = &c
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	return &Sink{
		name: name, builder: b, issue: issue, search: search, browse: browse,
		email: cfg.Email, token: cfg.APIToken, timeout: timeout,
		client: client, log: log, sleep: sleepCtx, now: time.Now,
	}, nil
}

// Name returns the sink's name, as given to New.
func (s *Sink) Name() string { return s.name }

// Deliver searches for the event's issue and creates it when absent. The
// search is for the event's label, and for the label of earlier versions
// while the event is recent (see LegacyLabelWindow); the issue is created
// with the label only. The issue found or created is noted (sink.Note)
// under sink.NoteJiraIssue, and its page under sink.NoteJiraURL unless
// BaseURL is the gateway, which has no pages.
func (s *Sink) Deliver(ctx context.Context, ev *event.Event) error {
	body, label, err := s.builder.Build(ev)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultBudget)
		defer cancel()
	}

	labels := []string{label}
	if legacy, ok := legacyFor(ev, s.now()); ok {
		labels = append(labels, legacy)
	}
	query, _ := json.Marshal(map[string]any{
		"jql":        searchJQL(s.builder.route.Project, labels...),
		"maxResults": 1,
		"fields":     []string{"key"},
	})
	var found struct {
		Issues []struct {
			Key string `json:"key"`
		} `json:"issues"`
	}
	if err := s.call(ctx, "search", s.search, query, true, &found); err != nil {
		return err
	}
	if len(found.Issues) > 0 {
		s.log.InfoContext(ctx, "jira issue exists", "sink", s.name, "event_id", ev.ID, "issue", found.Issues[0].Key)
		s.note(ctx, found.Issues[0].Key)
		return nil
	}

	var created struct {
		Key string `json:"key"`
	}
	if err := s.call(ctx, "create issue", s.issue, body, false, &created); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "jira issue created", "sink", s.name, "event_id", ev.ID, "issue", created.Key)
	s.note(ctx, created.Key)
	return nil
}

// note reports the event's issue, and its page on the site, to the caller
// of Deliver (see sink.Note). BaseURL carries no credentials (Check).
func (s *Sink) note(ctx context.Context, key string) {
	if key == "" {
		return
	}
	sink.Note(ctx, sink.NoteJiraIssue, key)
	if s.browse != "" {
		sink.Note(ctx, sink.NoteJiraURL, s.browse+"/"+url.PathEscape(key))
	}
}

// call POSTs body to endpoint and decodes a 2xx answer into out. 429 and 503
// are retried (the request was not processed), honouring the delay the API
// asks for; when idempotent, so are 500, 502, 504 and network failures.
// Attempts stop at maxAttempts or when the next wait would pass ctx's
// deadline: a sink.RetryAfterError then carries the delay the API asked
// for, if it asked for one, to the queue (or, inline, to the sender).
func (s *Sink) call(ctx context.Context, what, endpoint string, body []byte, idempotent bool, out any) error {
	for attempt := 1; ; attempt++ {
		err := s.once(ctx, what, endpoint, body, out)
		if err == nil || errors.Is(err, sink.ErrPermanent) {
			return err
		}
		var je *statusError
		throttled := errors.As(err, &je) && (je.status == http.StatusTooManyRequests || je.status == http.StatusServiceUnavailable)
		if !throttled && !idempotent {
			return err // the create may have happened; let search decide next time
		}
		if ctx.Err() != nil {
			return err
		}
		// A delay Jira asked for (Retry-After, X-RateLimit-Reset) is passed
		// on as one, to be waited exactly; without one, the failure is a
		// plain transient one, for the queue's own backoff.
		asked := throttled && je.retryAfter > 0
		wait := backoff(attempt)
		if asked {
			wait = je.retryAfter
		}
		giveUp := func() error {
			if asked {
				return &sink.RetryAfterError{Err: err, After: wait}
			}
			return err
		}
		if attempt >= maxAttempts {
			return giveUp()
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return giveUp()
		}
		s.log.DebugContext(ctx, "jira retry", "sink", s.name, "attempt", attempt, "wait", wait, "error", err)
		if s.sleep(ctx, wait) != nil { // ctx ended first: report the API's failure
			return giveUp()
		}
	}
}

// statusError is a non-2xx answer from the Jira API.
type statusError struct {
	what       string
	status     int
	messages   []string
	retryAfter time.Duration
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("jira: %s: %d %s", e.what, e.status, http.StatusText(e.status))
	if len(e.messages) > 0 {
		msg += ": " + strings.Join(e.messages, "; ")
	}
	return msg
}

// once makes one request, bounded by the sink's timeout.
func (s *Sink) once(ctx context.Context, what, endpoint string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return sink.Permanent(fmt.Errorf("jira: %s: %w", what, err))
	}
	req.SetBasicAuth(s.email, s.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		// url.Error names the URL: base_url holds no user name or password
		// (Check refuses them), net/http would show a password as ***, and
		// the API token travels in a header.
		return fmt.Errorf("jira: %s: %w", what, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return fmt.Errorf("jira: %s: read response: %w", what, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("jira: %s: decode response: %w", what, err)
		}
		return nil
	}
	se := &statusError{what: what, status: resp.StatusCode, messages: errorMessages(data, s.redact)}
	// The reason class is "jira" and the status code, such as "jira 400".
	classed := sink.Classed("jira "+strconv.Itoa(resp.StatusCode), se)
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		// The Location is not followed nor quoted: check jira.base_url.
		se.messages = []string{"the API answered with a redirect, which is not followed; check jira.base_url (the site or gateway URL, https)"}
		return sink.Permanent(classed)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		se.retryAfter = retryDelay(resp.Header, time.Now())
		return classed
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusConflict:
		// 408: the request took too long on the way; 409: Jira's
		// optimistic locking lost a race. Both may pass on a later try.
		return classed
	default:
		// 400 bad fields, 401/403 credentials or permissions, 404 no such
		// project or site: retrying the same request cannot help.
		return sink.Permanent(classed)
	}
}

// redact removes the credentials from text the API sent back: Jira, or a
// proxy or gateway in front of it, may echo the Authorization header (or the
// token decoded from it) in an error body, and that text ends up in the
// sink's error, which reaches logs, the dead-letter file and the sender.
func (s *Sink) redact(text string) string {
	basic := s.email + ":" + s.token
	for _, secret := range []string{
		base64.StdEncoding.EncodeToString([]byte(basic)),
		base64.RawStdEncoding.EncodeToString([]byte(basic)),
		base64.URLEncoding.EncodeToString([]byte(basic)),
		base64.RawURLEncoding.EncodeToString([]byte(basic)),
		s.token,
	} {
		if secret != "" {
			text = strings.ReplaceAll(text, secret, "[redacted]")
		}
	}
	return text
}

// errorMessages extracts errorMessages and errors ("field: message")
// from a Jira error body, each passed through redact and bounded, in a
// stable order.
func errorMessages(data []byte, redact func(string) string) []string {
	var body struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
	}
	if json.Unmarshal(data, &body) != nil {
		return nil
	}
	var out []string
	for _, m := range body.ErrorMessages {
		out = append(out, clip(render.OneLine(redact(m)), 500))
	}
	for _, k := range sortedKeys(body.Errors) {
		out = append(out, clip(render.OneLine(redact(k+": "+body.Errors[k])), 500))
	}
	if len(out) > 20 {
		out = append(out[:20], fmt.Sprintf("(%d more)", len(out)-20))
	}
	return out
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// retryDelay reads Retry-After (see sink.RetryAfter) or, when there is
// none, Jira's X-RateLimit-Reset (an ISO 8601 timestamp); 0 when neither
// gives a delay. The delay is capped at sink.MaxRetryAfter, one hour.
func retryDelay(h http.Header, now time.Time) time.Duration {
	if strings.TrimSpace(h.Get("Retry-After")) != "" {
		return sink.RetryAfter(h, now)
	}
	v := strings.TrimSpace(h.Get("X-RateLimit-Reset"))
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05.000Z0700"} {
		if t, err := time.Parse(layout, v); err == nil {
			return max(0, min(t.Sub(now), sink.MaxRetryAfter))
		}
	}
	return 0
}

// backoff is the wait after the given failed attempt when the API named
// none: exponential from backoffBase, capped, with jitter over its
// upper half so that many receivers do not retry in step.
func backoff(attempt int) time.Duration {
	d := backoffBase << min(attempt-1, 10)
	d = min(d, backoffMax)
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
