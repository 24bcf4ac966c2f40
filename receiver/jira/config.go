package jira

import (
	"errors"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/stairhook/stairhook/receiver/internal/render"
)

// Config is the Jira Cloud site the jira routes create issues in. Without
// it, jira routes write their requests to the outbox instead (dry run).
type Config struct {
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

// Route says how one route turns an event into a Jira issue.
type Route struct {
	// Project is the project key, for example "CS". Required.
	Project string `yaml:"project"`
	// IssueType is the issue type name. Default "Task".
	IssueType string `yaml:"issue_type"`
	// Labels are added to every issue, beside the stairhook-<hash> label
	// (a hash of the webhook's name and the event id) that makes creation
	// idempotent: the sink searches the route's project for it before
	// creating.
	Labels []string `yaml:"labels"`
	// Summary is a text/template over the event.Event. Default
	// DefaultSummary. The result is made one line and cut to 255
	// characters; test events get the "[TEST] " prefix whatever the
	// template says.
	Summary string `yaml:"summary"`
	// Priorities maps a signal severity to a Jira priority name. A
	// severity not in the map leaves the project's default priority.
	Priorities map[string]string `yaml:"priorities"`
}

// DefaultSummary is the summary template of a route that sets none.
const DefaultSummary = "{{if .Test}}[TEST] {{end}}{{.Signal.Title}} ({{.Account.Name}})"

// maxLabelLen is Jira's limit on a label.
const maxLabelLen = 255

// Check reports every problem of c, each error naming its field under
// path, such as "jira.base_url: must be an absolute http(s) URL". It never
// quotes the API token.
func (c *Config) Check(path string) []error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, render.FieldError(path, field, msg)) }
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

// Check reports every problem of r, each error naming its field under
// path, such as "webhooks[0].routes[1].jira.project: required". A summary
// template that does not parse, or names a field the event does not have,
// is reported with the parser's message, which quotes the template.
func (r *Route) Check(path string) []error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, render.FieldError(path, field, msg)) }
	if strings.TrimSpace(r.Project) == "" {
		bad("project", "required (a project key such as CS)")
	} else if strings.IndexFunc(r.Project, unicode.IsSpace) >= 0 {
		bad("project", "must be a project key without spaces")
	}
	for i, l := range r.Labels {
		if l == "" || strings.IndexFunc(l, unicode.IsSpace) >= 0 || len(l) > maxLabelLen {
			bad("labels["+strconv.Itoa(i)+"]", "must be 1 to 255 characters without spaces (Jira labels cannot contain spaces)")
		}
	}
	if _, err := render.ParseText("summary", render.OrDefault(r.Summary, DefaultSummary)); err != nil {
		bad("summary", err.Error())
	}
	for _, sev := range sortedKeys(r.Priorities) {
		if strings.TrimSpace(r.Priorities[sev]) == "" {
			bad("priorities."+sev, "must name a Jira priority")
		}
	}
	return errs
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
