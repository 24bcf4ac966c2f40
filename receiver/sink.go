package receiver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/stairhook/stairhook/receiver/dryrun"
	"github.com/stairhook/stairhook/receiver/email"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/render"
	"github.com/stairhook/stairhook/receiver/jira"
	"github.com/stairhook/stairhook/receiver/sink"
	"github.com/stairhook/stairhook/receiver/slack"
	"github.com/stairhook/stairhook/receiver/teams"
)

// Sink delivers an event to one destination (a Jira project, a mailbox, the
// dry-run outbox, or one of your own given in ServerOptions.Sinks): it is
// sink.Sink, the single interface a sink of one's own implements. See
// package sink for the contract of Deliver and its errors.
type Sink = sink.Sink

// ErrPermanent marks a sink failure that a retry cannot fix: a rejected
// request, a bad recipient, a template error. It is sink.ErrPermanent.
var ErrPermanent = sink.ErrPermanent

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds; see
// sink.Permanent.
func Permanent(err error) error { return sink.Permanent(err) }

// RetryAfterError is a transient failure with the delay the destination
// asked for; the server passes it on to the sender as Retry-After. It is
// sink.RetryAfterError.
type RetryAfterError = sink.RetryAfterError

// MaxTemplateOutput bounds what one template may produce for one event (a
// summary, a subject, a text or an HTML body): 256 KiB. Past it the
// delivery fails with ErrTemplateOutputTooLarge, a permanent error: the
// same event and the same template would produce the same output again.
const MaxTemplateOutput = render.MaxOutput

// ErrTemplateOutputTooLarge reports a template whose output for an event
// exceeded MaxTemplateOutput. It is always wrapped with ErrPermanent.
var ErrTemplateOutputTooLarge = render.ErrOutputTooLarge

// reasonClassOf is the reason class of a sink error, "unclassified" when
// no error in its chain has one (see sink.Classed).
func reasonClassOf(err error) string { return sink.ReasonClass(err) }

// callSink runs s.Deliver, turning a panic into a permanent failure so
// the ledger reservation is released and the event dead-lettered.
func callSink(ctx context.Context, s Sink, ev *event.Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = sink.Permanent(sink.Classed("panic", fmt.Errorf("sink %s panicked: %v", s.Name(), p)))
		}
	}()
	return s.Deliver(ctx, ev)
}

// newJiraSink is the sink of a route's jira section: Jira itself when the
// configuration has a jira section, else the dry run into the outbox.
func newJiraSink(name string, c *Config, route JiraRoute, client *http.Client, log *slog.Logger) (Sink, error) {
	if c.Jira == nil {
		return asSink(dryrun.NewJira(name, c.Outbox, route, log))
	}
	return asSink(jira.New(name, *c.Jira, route, client, log))
}

// newEmailSink is the sink of a route's email section: the mail server
// when the configuration has an smtp section, else the dry run into the
// outbox.
func newEmailSink(name string, c *Config, route EmailRoute, log *slog.Logger) (Sink, error) {
	if c.SMTP == nil {
		return asSink(dryrun.NewEmail(name, c.Outbox, "", route, log))
	}
	return asSink(email.New(name, *c.SMTP, route, log))
}

// newSlackSink is the sink of a route's slack section: Slack itself when
// the configuration has a slack section, else the dry run into the outbox.
func newSlackSink(name string, c *Config, route SlackRoute, client *http.Client, log *slog.Logger) (Sink, error) {
	if c.Slack == nil {
		return asSink(dryrun.NewSlack(name, c.Outbox, route, log))
	}
	return asSink(slack.New(name, *c.Slack, route, client, log))
}

// newTeamsSink is the sink of a route's teams section: the Workflows
// webhook when the configuration has a teams section, else the dry run
// into the outbox.
func newTeamsSink(name string, c *Config, route TeamsRoute, client *http.Client, log *slog.Logger) (Sink, error) {
	if c.Teams == nil {
		return asSink(dryrun.NewTeams(name, c.Outbox, route, log))
	}
	return asSink(teams.New(name, *c.Teams, route, client, log))
}

// asSink returns a sink a constructor made, or nil (not a nil pointer in a
// Sink) with its error.
func asSink[S Sink](s S, err error) (Sink, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}
