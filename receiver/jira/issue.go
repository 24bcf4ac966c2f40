package jira

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/render"
	"github.com/stairhook/stairhook/receiver/sink"
)

const (
	defaultIssueType = "Task"
	maxSummary       = 255 // UTF-16 units, as Jira counts
	labelPrefix      = "stairhook-"
)

// IssueBuilder turns events into create-issue requests; the sink and the
// dry run (package dryrun) share it, so the dry run writes exactly what
// would be sent.
type IssueBuilder struct {
	route   Route
	summary *template.Template
}

// NewIssueBuilder returns the builder of a sink for route, or the route's
// problems (see Route.Check) without their config path. It takes no
// sink name: the idempotency label depends on the event id only, so that
// renaming, inserting or reordering routes (whose names default to their
// position) never changes it.
func NewIssueBuilder(route Route) (*IssueBuilder, error) {
	if errs := route.Check(""); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	t, err := render.ParseText("summary", render.OrDefault(route.Summary, DefaultSummary))
	if err != nil {
		return nil, err
	}
	if route.IssueType == "" {
		route.IssueType = defaultIssueType
	}
	return &IssueBuilder{route: route, summary: t}, nil
}

// createRequest is the body of POST /rest/api/3/issue.
type createRequest struct {
	Fields issueFields `json:"fields"`
}

type issueFields struct {
	Project     keyRef   `json:"project"`
	IssueType   nameRef  `json:"issuetype"`
	Summary     string   `json:"summary"`
	Labels      []string `json:"labels"`
	Priority    *nameRef `json:"priority,omitempty"`
	Description *adfNode `json:"description"`
}

type keyRef struct {
	Key string `json:"key"`
}

type nameRef struct {
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
	return labelPrefix + hex.EncodeToString(sum[:8])
}

// searchJQL is the query for the issue carrying label in project.
func searchJQL(project, label string) string {
	return "project = " + jqlString(project) + " AND labels = " + jqlString(label)
}

// jqlString quotes s as a JQL string literal.
func jqlString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Build returns the JSON body of the create request for ev (POST
// /rest/api/3/issue) and its idempotency label. Errors are permanent.
func (b *IssueBuilder) Build(ev *event.Event) ([]byte, string, error) {
	summary, err := render.Text(b.summary, ev, render.MaxOutput)
	if err != nil {
		return nil, "", err
	}
	summary = render.OneLine(render.WithTestMarker(ev, render.OneLine(summary)))
	if summary == "" || summary == strings.TrimSpace(render.TestMarker) {
		summary = render.WithTestMarker(ev, "Staircase signal "+render.OneLine(ev.Type))
	}
	summary = strings.TrimSpace(truncateUTF16(summary, maxSummary))

	label := idempotencyLabel(ev.ID)
	labels := append(append([]string(nil), b.route.Labels...), label)
	req := createRequest{Fields: issueFields{
		Project:     keyRef{Key: b.route.Project},
		IssueType:   nameRef{Name: b.route.IssueType},
		Summary:     summary,
		Labels:      labels,
		Description: buildDescription(ev),
	}}
	if p, ok := b.route.Priorities[ev.Signal.Severity]; ok {
		req.Fields.Priority = &nameRef{Name: p}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, "", sink.Permanent(sink.Classed("jira encode", fmt.Errorf("jira: encode request: %w", err)))
	}
	return body, label, nil
}

// truncateUTF16 cuts s to at most n UTF-16 code units (Jira counts field
// lengths the Java way) without splitting a rune.
func truncateUTF16(s string, n int) string {
	units := 0
	for i, r := range s {
		w := 1
		if r >= 0x10000 {
			w = 2
		}
		if units+w > n {
			return s[:i]
		}
		units += w
	}
	return s
}
