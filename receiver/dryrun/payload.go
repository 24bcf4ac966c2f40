package dryrun

import (
	"context"
	"errors"
	"log/slog"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/slack"
	"github.com/stairhook/stairhook/receiver/teams"
)

// PayloadSink writes, for each event, the exact JSON body a chat sink
// (Slack, Teams) would post, to <outbox>/<kind>/<event id>-<name>.json.
type PayloadSink struct {
	name   string
	outbox string
	kind   string
	build  func(*event.Event) ([]byte, error)
	log    *slog.Logger
}

// NewSlack returns the sink named name that writes the Block Kit message
// of route for each event to <outbox>/slack/<event id>-<name>.json: the
// body slack.New's sink would post to an incoming webhook. It fails on the
// route's problems (see slack.Route.Check) or, wrapping ErrUnsafeOutbox,
// on an unsafe outbox (see CheckOutbox). log (nil discards) gets a line
// per file written.
func NewSlack(name, outbox string, route slack.Route, log *slog.Logger) (*PayloadSink, error) {
	b, err := slack.NewMessageBuilder(route)
	if err != nil {
		return nil, err
	}
	return newPayloadSink(name, outbox, slackFolder, b.Build, log)
}

// NewTeams returns the sink named name that writes the Adaptive Card
// message of route for each event to <outbox>/teams/<event id>-<name>.json:
// the body teams.New's sink would post to the Workflows webhook. It fails
// on the route's problems (see teams.Route.Check) or, wrapping
// ErrUnsafeOutbox, on an unsafe outbox. log (nil discards) gets a line per
// file written.
func NewTeams(name, outbox string, route teams.Route, log *slog.Logger) (*PayloadSink, error) {
	b, err := teams.NewMessageBuilder(route)
	if err != nil {
		return nil, err
	}
	return newPayloadSink(name, outbox, teamsFolder, b.Build, log)
}

func newPayloadSink(name, outbox, kind string, build func(*event.Event) ([]byte, error), log *slog.Logger) (*PayloadSink, error) {
	if outbox == "" {
		return nil, errors.New("dry-run " + kind + " sink: outbox folder not set")
	}
	if err := CheckOutbox(outbox); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PayloadSink{name: name, outbox: outbox, kind: kind, build: build, log: log}, nil
}

// Name returns the sink's name, as given to NewSlack or NewTeams.
func (s *PayloadSink) Name() string { return s.name }

// Deliver writes the body for ev, replacing the file of an earlier
// delivery.
func (s *PayloadSink) Deliver(ctx context.Context, ev *event.Event) error {
	body, err := s.build(ev)
	if err != nil {
		return err
	}
	path, err := writeOutbox(s.outbox, s.kind, outboxName(ev.ID, s.name, ".json"), append(body, '\n'))
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "dry run: "+s.kind+" message written", "sink", s.name, "event_id", ev.ID, "path", path)
	return nil
}
