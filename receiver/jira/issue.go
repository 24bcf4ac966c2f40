package jira

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

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
	webhook string
	route   Route
	summary *template.Template
}

// NewIssueBuilder returns the builder of the issues route creates for the
// events of webhook (the name in its path, /webhooks/{name}), or the
// route's problems (see Route.Check) without their config path. The
// idempotency label depends on the webhook and the event id only, so that
// renaming, inserting or reordering routes (whose names default to their
// position) never changes it, and a sender on another webhook cannot
// claim an event id first.
func NewIssueBuilder(webhook string, route Route) (*IssueBuilder, error) {
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
	return &IssueBuilder{webhook: webhook, route: route, summary: t}, nil
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

// idempotencyLabel is the label that marks the issue made for event id
// received on webhook: stairhook- and the first 32 hex digits (16 bytes) of
// SHA-256 over the webhook's name, a zero byte and the id. It depends on
// nothing else, so a redelivery finds the issue whatever became of the
// routes in between. The search is limited to the route's project: the
// routes of one webhook into one project share one issue, routes into
// different projects get one each, and so do two webhooks, whose senders
// hold different secrets: one cannot make the label of the other.
func idempotencyLabel(webhook, id string) string {
	sum := sha256.Sum256([]byte(webhook + "\x00" + id))
	return labelPrefix + hex.EncodeToString(sum[:16])
}

// legacyLabel is the label versions before the per-webhook label gave the
// issue of event id, whatever the webhook: stairhook- and the first 16 hex
// digits of SHA-256 over the id. Nothing creates it any more; the sink
// looks for it beside the new one, for LegacyLabelWindow (see legacyFor).
func legacyLabel(id string) string {
	sum := sha256.Sum256([]byte(id))
	return labelPrefix + hex.EncodeToString(sum[:8])
}

// LegacyLabelWindow is how long after an event's created_at the Jira sink
// also looks for the event's issue under the label earlier versions gave
// it (stairhook- and 16 hex digits of SHA-256 over the id alone), so that
// a redelivery or a replay, after the upgrade, of an event delivered
// before it finds that issue instead of creating a second one. No version
// creates that label any more, so only issues made before the upgrade
// carry it. An event without a created_at, or created longer ago, is
// looked for under its per-webhook label only.
const LegacyLabelWindow = 30 * 24 * time.Hour

// legacyFor returns the legacy label of ev when its issue may carry one at
// now: ev was created (by its created_at) at most LegacyLabelWindow ago.
func legacyFor(ev *event.Event, now time.Time) (string, bool) {
	if ev.CreatedAt.IsZero() || now.Sub(ev.CreatedAt) > LegacyLabelWindow {
		return "", false
	}
	return legacyLabel(ev.ID), true
}

// searchJQL is the query for the issues carrying any of labels in project.
func searchJQL(project string, labels ...string) string {
	quoted := make([]string, len(labels))
	for i, l := range labels {
		quoted[i] = jqlString(l)
	}
	return "project = " + jqlString(project) + " AND labels in (" + strings.Join(quoted, ", ") + ")"
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

	label := idempotencyLabel(b.webhook, ev.ID)
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
