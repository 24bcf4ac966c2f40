package dryrun

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/stairhook/stairhook/receiver/email"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/render"
	"github.com/stairhook/stairhook/receiver/jira"
	"github.com/stairhook/stairhook/receiver/sink"
)

// defaultFrom is the sender of the dry-run messages when none is given.
const defaultFrom = "Stairhook <stairhook@localhost>"

// JiraSink writes Jira create-issue requests to the outbox.
type JiraSink struct {
	name    string
	dir     string
	builder *jira.IssueBuilder
	log     *slog.Logger
}

// NewJira returns the sink named name that writes the create-issue request
// of route for each event to <outbox>/jira/<event id>-<name>.json, or the
// route's problems (see jira.Route.Check). log (nil discards) gets a line
// per file written.
func NewJira(name, outbox string, route jira.Route, log *slog.Logger) (*JiraSink, error) {
	if outbox == "" {
		return nil, errors.New("dry-run jira sink: outbox folder not set")
	}
	b, err := jira.NewIssueBuilder(render.WebhookOf(name), route)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &JiraSink{name: name, dir: filepath.Join(outbox, "jira"), builder: b, log: log}, nil
}

// Name returns the sink's name, as given to NewJira.
func (s *JiraSink) Name() string { return s.name }

// Deliver writes the request for ev, replacing the file of an earlier
// delivery.
func (s *JiraSink) Deliver(ctx context.Context, ev *event.Event) error {
	body, _, err := s.builder.Build(ev)
	if err != nil {
		return err
	}
	path, err := writeOutbox(s.dir, outboxName(ev.ID, s.name, ".json"), append(body, '\n'))
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "dry run: jira request written", "sink", s.name, "event_id", ev.ID, "path", path)
	return nil
}

// EmailSink writes MIME messages to the outbox.
type EmailSink struct {
	name    string
	dir     string
	builder *email.MessageBuilder
	log     *slog.Logger
}

// NewEmail returns the sink named name that writes the message of route
// for each event to <outbox>/email/<event id>-<name>.eml, sent from from
// (blank means "Stairhook <stairhook@localhost>"), or the route's problems
// (see email.Route.Check). The message has the Message-ID the real sink of
// that name would send. log (nil discards) gets a line per file written.
func NewEmail(name, outbox, from string, route email.Route, log *slog.Logger) (*EmailSink, error) {
	if outbox == "" {
		return nil, errors.New("dry-run email sink: outbox folder not set")
	}
	b, err := email.NewMessageBuilder(name, render.OrDefault(from, defaultFrom), route)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &EmailSink{name: name, dir: filepath.Join(outbox, "email"), builder: b, log: log}, nil
}

// Name returns the sink's name, as given to NewEmail.
func (s *EmailSink) Name() string { return s.name }

// Deliver writes the message for ev, replacing the file of an earlier
// delivery.
func (s *EmailSink) Deliver(ctx context.Context, ev *event.Event) error {
	m, err := s.builder.Build(ev)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		return sink.Permanent(sink.Classed("email render", fmt.Errorf("dry-run email: render message: %w", err)))
	}
	path, err := writeOutbox(s.dir, outboxName(ev.ID, s.name, ".eml"), buf.Bytes())
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "dry run: email written", "sink", s.name, "event_id", ev.ID, "path", path)
	return nil
}

// maxNamePart bounds each part of an outbox file name.
const maxNamePart = 80

// outboxName is the file name for an event and a sink. Both come from
// outside (the event id from the payload), so each is reduced to
// [A-Za-z0-9._-] without leading dots; when that changed anything, a hash
// of the original keeps distinct ids apart. No name can leave the folder.
func outboxName(eventID, sink, ext string) string {
	return safeNamePart(eventID) + "-" + safeNamePart(sink) + ext
}

func safeNamePart(s string) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			return r
		}
		return '_'
	}, s)
	clean = strings.TrimLeft(clean, ".")
	if clean == s && clean != "" && len(clean) <= maxNamePart {
		return clean
	}
	sum := sha256.Sum256([]byte(s))
	if len(clean) > maxNamePart {
		clean = clean[:maxNamePart]
	}
	return clean + "_" + hex.EncodeToString(sum[:6])
}

// writeOutbox writes data to dir/name atomically (a temporary file renamed
// over the target, so a reader never sees half a file), the folder 0700 and
// the file 0600: outbox files hold customer data. There is no fsync: the
// outbox is a dry run for trying the receiver, and a sync per delivery
// would cap it at a few hundred deliveries per second. Failures are
// transient (a full disk can be freed).
func writeOutbox(dir, name string, data []byte) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return "", fmt.Errorf("outbox: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", fmt.Errorf("outbox: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	path := filepath.Join(dir, name)
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	return path, nil
}
