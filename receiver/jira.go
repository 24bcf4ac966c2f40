package receiver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"

	"github.com/stairhook/stairhook/receiver/event"
)

// JiraConfig is the Jira Cloud site the jira routes create issues in. Without
// it, jira routes write their requests to the outbox instead (dry run).
type JiraConfig struct {
	// BaseURL is the site, "https://your-domain.atlassian.net", or the
	// gateway "https://api.atlassian.com/ex/jira/{cloudId}". It must be
	// https; http is accepted for loopback test servers only, because the
	// API token travels in every request.
	BaseURL string `yaml:"base_url"`
	// Email is the Atlassian account the issues are created as, the user
	// name of Basic auth. Required.
	Email string `yaml:"email"`
	// APIToken is that account's API token, the password of Basic auth.
	// Required; the sink removes it from error text the API sends back.
	APIToken string `yaml:"api_token"`
	// Timeout bounds each HTTP request. Default 10 s.
	Timeout time.Duration `yaml:"timeout"`
}

// JiraRoute says how one route turns an event into a Jira issue.
type JiraRoute struct {
	// Project is the project key, for example "CS". Required.
	Project string `yaml:"project"`
	// IssueType is the issue type name. Default "Task".
	IssueType string `yaml:"issue_type"`
	// Labels are added to every issue, beside the stairhook-<hash> label
	// (a hash of the event id alone) that makes creation idempotent: the
	// sink searches the route's project for it before creating.
	Labels []string `yaml:"labels"`
	// Summary is a text/template over the event.Event. Default
	// DefaultJiraSummary. The result is made one line and cut to 255
	// characters; test events get the "[TEST] " prefix whatever the
	// template says.
	Summary string `yaml:"summary"`
	// Priorities maps a signal severity to a Jira priority name. A
	// severity not in the map leaves the project's default priority.
	Priorities map[string]string `yaml:"priorities"`
}

// DefaultJiraSummary is the summary template of a route that sets none.
const DefaultJiraSummary = "{{if .Test}}[TEST] {{end}}{{.Signal.Title}} ({{.Account.Name}})"

const (
	defaultJiraTimeout   = 10 * time.Second
	defaultIssueType     = "Task"
	jiraMaxSummary       = 255 // UTF-16 units, as Jira counts
	jiraMaxErrorBody     = 64 << 10
	jiraMaxAttempts      = 3
	jiraDefaultBudget    = 30 * time.Second // when the caller's ctx has no deadline
	jiraBackoffBase      = 500 * time.Millisecond
	jiraBackoffMax       = 10 * time.Second
	jiraMaxLabelLen      = 255
	jiraIssuePath        = "rest/api/3/issue"
	jiraSearchPath       = "rest/api/3/search/jql"
	jiraIdempotencyLabel = "stairhook-"
)

func (c *JiraConfig) check(path string) []error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, fieldError(path, field, msg)) }
	if err := checkBaseURL(c.BaseURL); err != nil {
		bad("base_url", err.Error())
	}
	if strings.TrimSpace(c.Email) == "" {
		bad("email", "required (the Atlassian account the API token belongs to)")
	}
	if c.APIToken == "" {
		bad("api_token", "required")
	}
	if c.Timeout < 0 {
		bad("timeout", "must not be negative")
	}
	return errs
}

func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if s == "" || err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("must be an absolute http(s) URL")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not carry credentials, a query or a fragment")
	}
	if u.Scheme == "http" {
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return errors.New("must be https (http only for a loopback test server: the API token is sent with every request)")
		}
	}
	return nil
}

func (r *JiraRoute) check(path string) []error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, fieldError(path, field, msg)) }
	if strings.TrimSpace(r.Project) == "" {
		bad("project", "required (a project key such as CS)")
	} else if strings.IndexFunc(r.Project, unicode.IsSpace) >= 0 {
		bad("project", "must be a project key without spaces")
	}
	for i, l := range r.Labels {
		if l == "" || strings.IndexFunc(l, unicode.IsSpace) >= 0 || len(l) > jiraMaxLabelLen {
			bad("labels["+strconv.Itoa(i)+"]", "must be 1 to 255 characters without spaces (Jira labels cannot contain spaces)")
		}
	}
	if _, err := parseText("summary", orDefault(r.Summary, DefaultJiraSummary)); err != nil {
		bad("summary", err.Error())
	}
	for _, sev := range sortedKeys(r.Priorities) {
		if strings.TrimSpace(r.Priorities[sev]) == "" {
			bad("priorities."+sev, "must name a Jira priority")
		}
	}
	return errs
}

// fieldError prefixes msg with the field's config path.
func fieldError(path, field, msg string) error {
	if path != "" {
		field = path + "." + field
	}
	return fmt.Errorf("%s: %s", field, msg)
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// jiraIssueBuilder turns events into create-issue requests; the real and the
// dry-run Jira sinks share it, so the dry run writes exactly what would be
// sent.
type jiraIssueBuilder struct {
	route   JiraRoute
	summary *template.Template
}

// newJiraIssueBuilder returns the builder of a sink for route. It takes no
// sink name: the idempotency label depends on the event id only, so that
// renaming, inserting or reordering routes (whose names default to their
// position) never changes it.
func newJiraIssueBuilder(route JiraRoute) (*jiraIssueBuilder, error) {
	if errs := route.check(""); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	t, err := parseText("summary", orDefault(route.Summary, DefaultJiraSummary))
	if err != nil {
		return nil, err
	}
	if route.IssueType == "" {
		route.IssueType = defaultIssueType
	}
	return &jiraIssueBuilder{route: route, summary: t}, nil
}

// jiraCreateRequest is the body of POST /rest/api/3/issue.
type jiraCreateRequest struct {
	Fields jiraFields `json:"fields"`
}

type jiraFields struct {
	Project     jiraKey   `json:"project"`
	IssueType   jiraName  `json:"issuetype"`
	Summary     string    `json:"summary"`
	Labels      []string  `json:"labels"`
	Priority    *jiraName `json:"priority,omitempty"`
	Description *adfNode  `json:"description"`
}

type jiraKey struct {
	Key string `json:"key"`
}

type jiraName struct {
	Name string `json:"name"`
}

// idempotencyLabel is the label that marks the issue made for event id:
// stairhook- and the first 16 hex digits (8 bytes) of SHA-256 over the id's
// bytes. It depends on nothing but the id, so a redelivery finds the issue
// whatever became of the configuration in between. The search is limited to
// the route's project: routes into different projects each get their own
// issue, routes into one project share one.
func idempotencyLabel(id string) string {
	sum := sha256.Sum256([]byte(id))
	return jiraIdempotencyLabel + hex.EncodeToString(sum[:8])
}

// searchJQL is the query for the issue carrying label in project.
func searchJQL(project, label string) string {
	return "project = " + jqlString(project) + " AND labels = " + jqlString(label)
}

// jqlString quotes s as a JQL string literal.
func jqlString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// build returns the JSON body of the create request for ev and its
// idempotency label. Errors are permanent.
func (b *jiraIssueBuilder) build(ev *event.Event) ([]byte, string, error) {
	summary, err := renderText(b.summary, ev, MaxTemplateOutput)
	if err != nil {
		return nil, "", err
	}
	summary = oneLine(withTestMarker(ev, oneLine(summary)))
	if summary == "" || summary == strings.TrimSpace(testMarker) {
		summary = withTestMarker(ev, "Staircase signal "+oneLine(ev.Type))
	}
	summary = strings.TrimSpace(truncateUTF16(summary, jiraMaxSummary))

	label := idempotencyLabel(ev.ID)
	labels := append(append([]string(nil), b.route.Labels...), label)
	req := jiraCreateRequest{Fields: jiraFields{
		Project:     jiraKey{Key: b.route.Project},
		IssueType:   jiraName{Name: b.route.IssueType},
		Summary:     summary,
		Labels:      labels,
		Description: buildDescription(ev),
	}}
	if p, ok := b.route.Priorities[ev.Signal.Severity]; ok {
		req.Fields.Priority = &jiraName{Name: p}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, "", Permanent(&classedError{"jira encode", fmt.Errorf("jira: encode request: %w", err)})
	}
	return body, label, nil
}

// jiraSink creates one Jira issue per event, at most once: before creating it
// searches for the event's idempotency label. Jira's search index lags
// behind creates by a few seconds, so a redelivery that arrives inside that
// window would not see the issue; the server's record of done sinks covers
// it (a sink that succeeded is not run again for the same event id). The
// remaining window is a create whose response was lost (timeout, reset,
// 5xx after the request was sent) followed by a redelivery within the
// search lag; the sink does not retry such a create itself, so the sender's
// next attempt comes seconds later, when search normally sees the issue.
type jiraSink struct {
	name    string
	builder *jiraIssueBuilder
	issue   string // absolute URL of the create endpoint
	search  string // absolute URL of the search endpoint
	email   string
	token   string
	timeout time.Duration
	client  *http.Client
	log     *slog.Logger
	// sleep waits between attempts; tests replace it.
	sleep func(context.Context, time.Duration) error
}

func newJiraSink(name string, cfg JiraConfig, route JiraRoute, client *http.Client, log *slog.Logger) (Sink, error) {
	if errs := cfg.check("jira"); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	b, err := newJiraIssueBuilder(route)
	if err != nil {
		return nil, err
	}
	issue, err := url.JoinPath(cfg.BaseURL, jiraIssuePath)
	if err != nil {
		return nil, err
	}
	search, err := url.JoinPath(cfg.BaseURL, jiraSearchPath)
	if err != nil {
		return nil, err
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
		timeout = defaultJiraTimeout
	}
	return &jiraSink{
		name: name, builder: b, issue: issue, search: search,
		email: cfg.Email, token: cfg.APIToken, timeout: timeout,
		client: client, log: log, sleep: sleepCtx,
	}, nil
}

func (s *jiraSink) Name() string { return s.name }

// Deliver searches for the event's issue and creates it when absent.
func (s *jiraSink) Deliver(ctx context.Context, ev *event.Event) error {
	body, label, err := s.builder.build(ev)
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, jiraDefaultBudget)
		defer cancel()
	}

	query, _ := json.Marshal(map[string]any{
		"jql":        searchJQL(s.builder.route.Project, label),
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
		return nil
	}

	var created struct {
		Key string `json:"key"`
	}
	if err := s.call(ctx, "create issue", s.issue, body, false, &created); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "jira issue created", "sink", s.name, "event_id", ev.ID, "issue", created.Key)
	return nil
}

// call POSTs body to endpoint and decodes a 2xx answer into out. 429 and 503
// are retried (the request was not processed), honouring the delay the API
// asks for; when idempotent, so are 500, 502, 504 and network failures.
// Attempts stop at jiraMaxAttempts or when the next wait would pass ctx's
// deadline, in which case a RetryAfterError carries the delay to the sender.
func (s *jiraSink) call(ctx context.Context, what, endpoint string, body []byte, idempotent bool, out any) error {
	for attempt := 1; ; attempt++ {
		err := s.once(ctx, what, endpoint, body, out)
		if err == nil || errors.Is(err, ErrPermanent) {
			return err
		}
		var je *jiraStatusError
		throttled := errors.As(err, &je) && (je.status == http.StatusTooManyRequests || je.status == http.StatusServiceUnavailable)
		if !throttled && !idempotent {
			return err // the create may have happened; let search decide next time
		}
		if ctx.Err() != nil {
			return err
		}
		wait := backoff(attempt)
		if throttled && je.retryAfter > 0 {
			wait = je.retryAfter
		}
		if attempt >= jiraMaxAttempts {
			if throttled {
				return &RetryAfterError{Err: err, After: wait}
			}
			return err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return &RetryAfterError{Err: err, After: wait}
		}
		s.log.DebugContext(ctx, "jira retry", "sink", s.name, "attempt", attempt, "wait", wait, "error", err)
		if s.sleep(ctx, wait) != nil { // ctx ended first: report the API's failure
			return &RetryAfterError{Err: err, After: wait}
		}
	}
}

// jiraStatusError is a non-2xx answer from the Jira API.
type jiraStatusError struct {
	what       string
	status     int
	messages   []string
	retryAfter time.Duration
}

func (e *jiraStatusError) Error() string {
	msg := fmt.Sprintf("jira: %s: %d %s", e.what, e.status, http.StatusText(e.status))
	if len(e.messages) > 0 {
		msg += ": " + strings.Join(e.messages, "; ")
	}
	return msg
}

// reasonClass is "jira" and the status code, such as "jira 400".
func (e *jiraStatusError) reasonClass() string { return "jira " + strconv.Itoa(e.status) }

// once makes one request, bounded by the sink's timeout.
func (s *jiraSink) once(ctx context.Context, what, endpoint string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("jira: %s: %w", what, err))
	}
	req.SetBasicAuth(s.email, s.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		// url.Error names the URL (no credentials: they are in a header).
		return fmt.Errorf("jira: %s: %w", what, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, jiraMaxErrorBody))
	if err != nil {
		return fmt.Errorf("jira: %s: read response: %w", what, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("jira: %s: decode response: %w", what, err)
		}
		return nil
	}
	se := &jiraStatusError{what: what, status: resp.StatusCode, messages: jiraErrorMessages(data, s.redact)}
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		// The Location is not followed nor quoted: check jira.base_url.
		se.messages = []string{"the API answered with a redirect, which is not followed; check jira.base_url (the site or gateway URL, https)"}
		return Permanent(se)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		se.retryAfter = retryDelay(resp.Header, time.Now())
		return se
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusConflict:
		// 408: the request took too long on the way; 409: Jira's
		// optimistic locking lost a race. Both may pass on a later try.
		return se
	default:
		// 400 bad fields, 401/403 credentials or permissions, 404 no such
		// project or site: retrying the same request cannot help.
		return Permanent(se)
	}
}

// redact removes the credentials from text the API sent back: Jira, or a
// proxy or gateway in front of it, may echo the Authorization header (or the
// token decoded from it) in an error body, and that text ends up in the
// sink's error, which reaches logs, the dead-letter file and the sender.
func (s *jiraSink) redact(text string) string {
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

// jiraErrorMessages extracts errorMessages and errors ("field: message")
// from a Jira error body, each passed through redact and bounded, in a
// stable order.
func jiraErrorMessages(data []byte, redact func(string) string) []string {
	var body struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
	}
	if json.Unmarshal(data, &body) != nil {
		return nil
	}
	var out []string
	for _, m := range body.ErrorMessages {
		out = append(out, clip(oneLine(redact(m)), 500))
	}
	for _, k := range sortedKeys(body.Errors) {
		out = append(out, clip(oneLine(redact(k+": "+body.Errors[k])), 500))
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

// retryDelay reads Retry-After (seconds or an HTTP date) or Jira's
// X-RateLimit-Reset (an ISO 8601 timestamp); 0 when neither gives a delay.
// The delay is capped at one hour.
func retryDelay(h http.Header, now time.Time) time.Duration {
	const maxDelay = time.Hour
	var d time.Duration
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
			d = time.Duration(min(secs, int(maxDelay/time.Second))) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	} else if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05.000Z0700"} {
			if t, err := time.Parse(layout, v); err == nil {
				d = t.Sub(now)
				break
			}
		}
	}
	if d < 0 {
		d = 0
	}
	return min(d, maxDelay)
}

// backoff is the wait after the given failed attempt when the API named
// none: exponential from jiraBackoffBase, capped, with jitter over its
// upper half so that many receivers do not retry in step.
func backoff(attempt int) time.Duration {
	d := jiraBackoffBase << min(attempt-1, 10)
	d = min(d, jiraBackoffMax)
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
