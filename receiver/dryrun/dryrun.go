package dryrun

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
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

// The folders of the outbox the sinks write into, one per kind of sink.
const (
	jiraFolder  = "jira"
	emailFolder = "email"
	slackFolder = "slack"
	teamsFolder = "teams"
)

// folders are the outbox's folders, each checked by CheckOutbox.
var folders = []string{jiraFolder, emailFolder, slackFolder, teamsFolder}

// ErrUnsafeOutbox means the outbox folder, or its jira or email folder,
// could let another user read or replace what the dry run writes: it
// belongs to another user, others can write to it, or (for jira and email)
// it is a symbolic link or not a folder. The sinks refuse it when they are
// built and at every delivery; the error names the folder and the fix.
var ErrUnsafeOutbox = errors.New("dry-run outbox: unsafe folder")

// JiraSink writes Jira create-issue requests to the outbox.
type JiraSink struct {
	name    string
	outbox  string
	builder *jira.IssueBuilder
	log     *slog.Logger
}

// NewJira returns the sink named name that writes the create-issue request
// of route for each event to <outbox>/jira/<event id>-<name>.json, or the
// route's problems (see jira.Route.Check), or an error wrapping
// ErrUnsafeOutbox when outbox exists and is unsafe (see CheckOutbox). As
// for jira.New, the part of name before its first "." is the webhook
// whose events the sink receives. log (nil discards) gets a line per file
// written.
func NewJira(name, outbox string, route jira.Route, log *slog.Logger) (*JiraSink, error) {
	if outbox == "" {
		return nil, errors.New("dry-run jira sink: outbox folder not set")
	}
	b, err := jira.NewIssueBuilder(render.WebhookOf(name), route)
	if err != nil {
		return nil, err
	}
	if err := CheckOutbox(outbox); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &JiraSink{name: name, outbox: outbox, builder: b, log: log}, nil
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
	path, err := writeOutbox(s.outbox, jiraFolder, outboxName(ev.ID, s.name, ".json"), append(body, '\n'))
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "dry run: jira request written", "sink", s.name, "event_id", ev.ID, "path", path)
	return nil
}

// EmailSink writes MIME messages to the outbox.
type EmailSink struct {
	name    string
	outbox  string
	builder *email.MessageBuilder
	log     *slog.Logger
}

// NewEmail returns the sink named name that writes the message of route
// for each event to <outbox>/email/<event id>-<name>.eml, sent from from
// (blank means "Stairhook <stairhook@localhost>"), or the route's problems
// (see email.Route.Check), or an error wrapping ErrUnsafeOutbox when
// outbox exists and is unsafe (see CheckOutbox). The message has the
// Message-ID the real sink of that name would send. log (nil discards)
// gets a line per file written.
func NewEmail(name, outbox, from string, route email.Route, log *slog.Logger) (*EmailSink, error) {
	if outbox == "" {
		return nil, errors.New("dry-run email sink: outbox folder not set")
	}
	b, err := email.NewMessageBuilder(name, render.OrDefault(from, defaultFrom), route)
	if err != nil {
		return nil, err
	}
	if err := CheckOutbox(outbox); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &EmailSink{name: name, outbox: outbox, builder: b, log: log}, nil
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
	path, err := writeOutbox(s.outbox, emailFolder, outboxName(ev.ID, s.name, ".eml"), buf.Bytes())
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
// [A-Za-z0-9._-] without leading dots, the event id without "-" too; when
// that changed anything, a hash of the original keeps distinct ids apart.
// No name can leave the folder, and the first "-" always ends the event
// id, so two (event, sink) pairs never share a name: event "e-x" of the
// sink "w.route1.jira" and event "e" of "x-w.route1.jira" (webhooks w and
// x-w) get e_x_<hash>-w.route1.jira.json and e-x-w.route1.jira.json.
func outboxName(eventID, sink, ext string) string {
	return safeNamePart(eventID, false) + "-" + safeNamePart(sink, true) + ext
}

// hashSuffixLen is the length of the "_<12 hex digits>" safeNamePart adds.
const hashSuffixLen = 13

// safeNamePart returns s when it is a safe name part ([A-Za-z0-9._], and -
// when dash is set, not starting with a dot, at most maxNamePart bytes)
// that does not end like a hashed one; else s cleaned and cut, then "_"
// and 12 hex digits of SHA-256 over s. Distinct inputs give distinct
// parts (short of a hash collision).
func safeNamePart(s string, dash bool) string {
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.':
			return r
		case r == '-' && dash:
			return r
		}
		return '_'
	}, s)
	clean = strings.TrimLeft(clean, ".")
	if clean == s && clean != "" && len(clean) <= maxNamePart && !looksHashed(clean) {
		return clean
	}
	sum := sha256.Sum256([]byte(s))
	if len(clean) > maxNamePart {
		clean = clean[:maxNamePart]
	}
	return clean + "_" + hex.EncodeToString(sum[:6])
}

// looksHashed reports whether s ends like a part safeNamePart hashed, "_"
// and 12 lower-case hex digits: such an s is hashed too, so that it cannot
// name the file of the input whose hash it copies.
func looksHashed(s string) bool {
	if len(s) < hashSuffixLen || s[len(s)-hashSuffixLen] != '_' {
		return false
	}
	for _, c := range s[len(s)-hashSuffixLen+1:] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CheckOutbox reports, wrapped in ErrUnsafeOutbox, what makes the outbox
// folder unsafe to write customer data into: the folder (followed if the
// configured path is a symbolic link: the operator chose it) must belong
// to this process's user and not be writable by group or others; its
// jira, email, slack and teams folders, where they exist, the same, and must be real
// folders, not symbolic links. A folder that does not exist yet is fine:
// the sinks create it, 0700. NewJira and NewEmail call it, and every
// delivery checks again, on the folders it opens. On systems other than
// Unix only the symbolic links are checked.
func CheckOutbox(outbox string) error {
	st, err := os.Stat(outbox)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dry-run outbox %s: %w", outbox, err)
	}
	if err := checkFolder(outbox, st); err != nil {
		return err
	}
	for _, kind := range folders {
		path := filepath.Join(outbox, kind)
		st, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("dry-run outbox %s: %w", path, err)
		}
		if err := checkFolder(path, st); err != nil {
			return err
		}
	}
	return nil
}

// checkFolder checks what CheckOutbox requires of the folder at path, from
// its Lstat (or, for the outbox itself, Stat).
func checkFolder(path string, st fs.FileInfo) error {
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w: %s is a symbolic link; the dry run writes only into real folders: remove it", ErrUnsafeOutbox, path)
	case !st.IsDir():
		return fmt.Errorf("%w: %s is not a folder", ErrUnsafeOutbox, path)
	}
	return checkOwnerAndMode(path, st)
}

// writeOutbox writes data to <outbox>/<kind>/<name> atomically (a temporary
// file renamed over the target, so a reader never sees half a file), the
// folders 0700 and the file 0600: outbox files hold customer data.
//
// No symbolic link is followed below the outbox: the kind folder is
// opened relative to the outbox (os.Root) after an Lstat, and must be the
// very folder the Lstat saw; the temporary file is created exclusively
// (O_EXCL), and the rename replaces a link at the target instead of
// writing through it. The outbox and the kind folder are checked on the
// opened folders themselves, so a folder swapped in after the start is
// refused too.
//
// There is no fsync: the outbox is a dry run for trying the receiver, and
// a sync per delivery would cap it at a few hundred deliveries per second.
// Failures are transient (a full disk can be freed, an unsafe folder
// fixed).
func writeOutbox(outbox, kind, name string, data []byte) (string, error) {
	if err := os.MkdirAll(outbox, 0o700); err != nil {
		return "", fmt.Errorf("dry-run outbox: %w", err)
	}
	root, err := os.OpenRoot(outbox)
	if err != nil {
		return "", fmt.Errorf("dry-run outbox: %w", err)
	}
	defer root.Close()
	st, err := root.Stat(".")
	if err != nil {
		return "", fmt.Errorf("dry-run outbox: %w", err)
	}
	if err := checkFolder(outbox, st); err != nil {
		return "", err
	}
	dir, err := openFolder(root, outbox, kind)
	if err != nil {
		return "", err
	}
	defer dir.Close()

	tmp := ".tmp-" + rand.Text()
	f, err := dir.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("dry-run outbox: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = dir.Rename(tmp, name)
	}
	if err != nil {
		_ = dir.Remove(tmp)
		return "", fmt.Errorf("dry-run outbox: %w", err)
	}
	return filepath.Join(outbox, kind, name), nil
}

// openFolder opens the folder kind of the outbox root, creating it 0700,
// and refuses it unless it is a real folder that CheckOutbox would accept,
// the same one on disk as the one Lstat saw (not swapped for a link in
// between).
func openFolder(root *os.Root, outbox, kind string) (*os.Root, error) {
	path := filepath.Join(outbox, kind)
	if err := root.Mkdir(kind, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("dry-run outbox: %w", err)
	}
	seen, err := root.Lstat(kind)
	if err != nil {
		return nil, fmt.Errorf("dry-run outbox: %w", err)
	}
	if err := checkFolder(path, seen); err != nil {
		return nil, err
	}
	dir, err := root.OpenRoot(kind)
	if err != nil {
		return nil, fmt.Errorf("dry-run outbox: %w", err)
	}
	opened, err := dir.Stat(".")
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("dry-run outbox: %w", err)
	}
	if !os.SameFile(seen, opened) {
		dir.Close()
		return nil, fmt.Errorf("%w: %s changed while it was opened", ErrUnsafeOutbox, path)
	}
	return dir, nil
}
