package dryrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/email"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/sinktest"
	"github.com/stairhook/stairhook/receiver/jira"
	"github.com/stairhook/stairhook/receiver/jiratest"
	"github.com/stairhook/stairhook/receiver/sink"
	"github.com/stairhook/stairhook/receiver/slack"
	"github.com/stairhook/stairhook/receiver/teams"
)

func TestDryRunJiraWritesExactRequest(t *testing.T) {
	outbox := t.TempDir()
	var logs bytes.Buffer
	route := jira.Route{Project: "CS", Labels: []string{"staircase"}}
	s, err := NewJira("staircase.route1.jira", outbox, route, slog.New(slog.NewJSONHandler(&logs, nil)))
	require.NoError(t, err)
	ev := sinktest.HostileEvent()
	require.NoError(t, s.Deliver(sinktest.Context(t), ev))

	files := outboxFiles(t, outbox)
	require.Len(t, files, 1, "%v", files)
	path := files[0]
	assert.Equal(t, filepath.Join(outbox, "jira"), filepath.Dir(path), "the event id cannot leave the folder")
	got, err := os.ReadFile(path)
	require.NoError(t, err)

	// The file holds exactly what the real sink would POST.
	b, err := jira.NewIssueBuilder("staircase", route)
	require.NoError(t, err)
	want, _, err := b.Build(ev)
	require.NoError(t, err)
	assert.Equal(t, string(want)+"\n", string(got))

	var req struct {
		Fields struct {
			Description json.RawMessage `json:"description"`
		} `json:"fields"`
	}
	require.NoError(t, json.Unmarshal(got, &req))
	require.NoError(t, jiratest.CheckADF(req.Fields.Description))

	assert.Equal(t, 1, strings.Count(logs.String(), "\n"), "one log line")
	assert.Contains(t, logs.String(), `"path":"`+path+`"`)

	// A redelivery replaces the file.
	require.NoError(t, s.Deliver(sinktest.Context(t), ev))
	assert.Len(t, outboxFiles(t, outbox), 1)
}

func TestDryRunEmailWritesMessage(t *testing.T) {
	outbox := t.TempDir()
	s, err := NewEmail("email:0", outbox, "", email.Route{To: []string{"csm@example.com"}}, nil)
	require.NoError(t, err)
	ev := sinktest.HostileEvent()
	require.NoError(t, s.Deliver(sinktest.Context(t), ev))
	files := outboxFiles(t, outbox)
	require.Len(t, files, 1)
	assert.Equal(t, filepath.Join(outbox, "email"), filepath.Dir(files[0]))
	assert.Equal(t, outboxName(ev.ID, "email:0", ".eml"), filepath.Base(files[0]))
	assert.Regexp(t, `^evt_hostile_.._.._x_[0-9a-f]{12}-email_0_[0-9a-f]{12}\.eml$`, filepath.Base(files[0]))
	data, err := os.ReadFile(files[0])
	require.NoError(t, err)
	pm := sinktest.ParseMail(t, data)
	assert.Equal(t, "<"+email.MessageID("email:0", ev.ID, "localhost")+">", pm.Header.Get("Message-Id"))
	assert.Equal(t, `"Stairhook" <stairhook@localhost>`, pm.Header.Get("From"))
	assert.Empty(t, pm.Header.Get("X-Injected"))
	assert.Contains(t, pm.HTML, "&lt;script&gt;")
	// The subject the dry run writes is the one the sink sends: one line,
	// without bidi controls, other format characters or NUL.
	subject, err := new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
	require.NoError(t, err)
	assert.Equal(t, "[TEST] Churn X-Injected: yes (Acme <script>alert(1)</script> Bcc: victim@example.com)", subject)
	assert.NotContains(t, string(data), "\x00")
}

func TestOutboxPermissions(t *testing.T) {
	outbox := filepath.Join(t.TempDir(), "new")
	s, err := NewJira("staircase.route1.jira", outbox, jira.Route{Project: "CS"}, nil)
	require.NoError(t, err)
	require.NoError(t, s.Deliver(sinktest.Context(t), sinktest.HostileEvent()))
	dir, err := os.Stat(filepath.Join(outbox, "jira"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o700), dir.Mode().Perm())
	for _, f := range outboxFiles(t, outbox) {
		st, err := os.Stat(f)
		require.NoError(t, err)
		assert.Equal(t, fs.FileMode(0o600), st.Mode().Perm(), f)
	}
}

func TestOutboxNameIsSafe(t *testing.T) {
	cases := map[string]string{
		"evt_123":                 "evt_123",
		"evt.1":                   "evt.1",
		"evt-1":                   "", // a "-" ends the event id part only
		"../../etc/passwd":        "",
		"..":                      "",
		"":                        "",
		"a/b":                     "",
		"a\\b":                    "",
		"a\x00b":                  "",
		"évt":                     "",
		strings.Repeat("x", 81):   "",
		"a_b_0123456789ab":        "", // ends like a hashed part
		"a_b_0123456789AB":        "a_b_0123456789AB",
		"evt_01J9Z3K7QK2V8M4N6P0": "evt_01J9Z3K7QK2V8M4N6P0",
	}
	seen := map[string]string{}
	for id, want := range cases {
		got := safeNamePart(id, false)
		if want != "" {
			assert.Equal(t, want, got)
		} else {
			assert.NotEqual(t, id, got, "%q is changed", id)
		}
		assert.Regexp(t, `^[A-Za-z0-9_][A-Za-z0-9._]*$`, got, "%q", id)
		assert.LessOrEqual(t, len(got), maxNamePart+hashSuffixLen)
		assert.Equal(t, got, filepath.Base(got), "%q", id)
		assert.NotContains(t, []string{".", ".."}, got)
		if prev, dup := seen[got]; dup {
			t.Errorf("%q and %q share the name %q", prev, id, got)
		}
		seen[got] = id
	}
	// Ids that clean up the same way still get distinct names, and so does
	// an id that copies another's hashed name.
	assert.NotEqual(t, safeNamePart("a/b", false), safeNamePart("a_b", false))
	assert.NotEqual(t, safeNamePart("a/b", false), safeNamePart("a:b", false))
	assert.NotEqual(t, safeNamePart("a/b", false), safeNamePart(safeNamePart("a/b", false), false))
	// Sink names keep their "-".
	assert.Equal(t, "x-w.route1.jira", safeNamePart("x-w.route1.jira", true))
}

// Issue 14, item 3: event e-x of webhook w and event e of webhook x-w had
// one file name, e-x-w.route1.jira.json, so one overwrote the other. The
// event id part has no "-" now, so the first "-" ends it.
func TestOutboxNamesDoNotCollideAcrossWebhooks(t *testing.T) {
	outbox := t.TempDir()
	route := jira.Route{Project: "CS"}
	w, err := NewJira("w.route1.jira", outbox, route, nil)
	require.NoError(t, err)
	xw, err := NewJira("x-w.route1.jira", outbox, route, nil)
	require.NoError(t, err)
	first := &event.Event{ID: "e-x", Type: event.TypeRenewal, Account: event.Account{ID: "a", Name: "First"}}
	second := &event.Event{ID: "e", Type: event.TypeRenewal, Account: event.Account{ID: "a", Name: "Second"}}
	require.NoError(t, w.Deliver(sinktest.Context(t), first))
	require.NoError(t, xw.Deliver(sinktest.Context(t), second))

	files := outboxFiles(t, outbox)
	require.Len(t, files, 2, "%v", files)
	var contents []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		contents = append(contents, string(data))
	}
	assert.True(t, strings.Contains(contents[0], "First") != strings.Contains(contents[1], "First"), "each event has its file")
	assert.NotEqual(t, outboxName("e-x", "w.route1.jira", ".json"), outboxName("e", "x-w.route1.jira", ".json"))

	es, err := NewEmail("w.route1.email", outbox, "", email.Route{To: []string{"a@example.com"}}, nil)
	require.NoError(t, err)
	xes, err := NewEmail("x-w.route1.email", outbox, "", email.Route{To: []string{"a@example.com"}}, nil)
	require.NoError(t, err)
	require.NoError(t, es.Deliver(sinktest.Context(t), first))
	require.NoError(t, xes.Deliver(sinktest.Context(t), second))
	assert.Len(t, outboxFiles(t, outbox), 4)
}

// A symbolic link planted where a file goes is replaced by the file, never
// written through: the file it pointed to is untouched.
func TestOutboxSymlinkAtFilePath(t *testing.T) {
	outbox := t.TempDir()
	s, err := NewJira("staircase.route1.jira", outbox, jira.Route{Project: "CS"}, nil)
	require.NoError(t, err)
	ev := sinktest.HostileEvent()
	victim := filepath.Join(t.TempDir(), "authorized_keys")
	require.NoError(t, os.WriteFile(victim, []byte("keep me\n"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(outbox, "jira"), 0o700))
	target := filepath.Join(outbox, "jira", outboxName(ev.ID, s.Name(), ".json"))
	require.NoError(t, os.Symlink(victim, target))

	require.NoError(t, s.Deliver(sinktest.Context(t), ev))
	data, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "keep me\n", string(data), "not written through the link")
	st, err := os.Lstat(target)
	require.NoError(t, err)
	assert.True(t, st.Mode().IsRegular(), "the link was replaced by the file")
	assert.Equal(t, fs.FileMode(0o600), st.Mode().Perm())
}

// A symbolic link planted at the jira or email folder is refused, when the
// sink is built and when it delivers; nothing is written where it points.
func TestOutboxSymlinkedFolder(t *testing.T) {
	for _, kind := range []string{"jira", "email", "slack", "teams"} {
		t.Run(kind, func(t *testing.T) {
			outbox, elsewhere := t.TempDir(), t.TempDir()
			newSink := func() (interface {
				Deliver(context.Context, *event.Event) error
			}, error) {
				switch kind {
				case "jira":
					return NewJira("staircase.route1.jira", outbox, jira.Route{Project: "CS"}, nil)
				case "slack":
					return NewSlack("staircase.route1.slack", outbox, slack.Route{}, nil)
				case "teams":
					return NewTeams("staircase.route1.teams", outbox, teams.Route{}, nil)
				}
				return NewEmail("staircase.route1.email", outbox, "", email.Route{To: []string{"a@example.com"}}, nil)
			}
			// Planted before the start: the sink is not built.
			require.NoError(t, os.Symlink(elsewhere, filepath.Join(outbox, kind)))
			_, err := newSink()
			require.ErrorIs(t, err, ErrUnsafeOutbox)
			assert.ErrorContains(t, err, filepath.Join(outbox, kind)+" is a symbolic link")

			// Planted after the start: the delivery fails, writing nothing.
			require.NoError(t, os.Remove(filepath.Join(outbox, kind)))
			s, err := newSink()
			require.NoError(t, err)
			require.NoError(t, os.Symlink(elsewhere, filepath.Join(outbox, kind)))
			err = s.Deliver(sinktest.Context(t), sinktest.HostileEvent())
			require.ErrorIs(t, err, ErrUnsafeOutbox)
			assert.False(t, errors.Is(err, sink.ErrPermanent), "fixing the folder fixes the next attempt")
			entries, err := os.ReadDir(elsewhere)
			require.NoError(t, err)
			assert.Empty(t, entries, "nothing written through the link")

			// A link to a folder inside the outbox is refused as well.
			require.NoError(t, os.Remove(filepath.Join(outbox, kind)))
			require.NoError(t, os.Mkdir(filepath.Join(outbox, "inside"), 0o700))
			require.NoError(t, os.Symlink("inside", filepath.Join(outbox, kind)))
			require.ErrorIs(t, s.Deliver(sinktest.Context(t), sinktest.HostileEvent()), ErrUnsafeOutbox)
		})
	}
}

// An outbox, or a jira or email folder in it, that group or others may
// write to is refused at the start, and at a delivery if it became so.
func TestOutboxWritableByOthers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		folder string // under the outbox; "" is the outbox itself
		mode   fs.FileMode
	}{
		{"outbox 0777", "", 0o777},
		{"outbox 0770", "", 0o770},
		{"outbox 0702", "", 0o702},
		{"jira folder 0777", "jira", 0o777},
		{"email folder 0720", "email", 0o720},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outbox := t.TempDir()
			folder := filepath.Join(outbox, tc.folder)
			require.NoError(t, os.MkdirAll(folder, 0o700))
			require.NoError(t, os.Chmod(folder, tc.mode))
			_, err := NewJira("staircase.route1.jira", outbox, jira.Route{Project: "CS"}, nil)
			require.ErrorIs(t, err, ErrUnsafeOutbox)
			assert.ErrorContains(t, err, folder+" is writable by group or others")
			assert.ErrorContains(t, err, "chmod go-w")
			_, err = NewEmail("staircase.route1.email", outbox, "", email.Route{To: []string{"a@example.com"}}, nil)
			require.ErrorIs(t, err, ErrUnsafeOutbox)

			require.NoError(t, os.Chmod(folder, 0o700))
			s, err := NewJira("staircase.route1.jira", outbox, jira.Route{Project: "CS"}, nil)
			require.NoError(t, err, "0700 is fine")
			if tc.folder == "email" {
				return // the jira sink does not open the email folder
			}
			require.NoError(t, os.Chmod(folder, tc.mode))
			require.ErrorIs(t, s.Deliver(sinktest.Context(t), sinktest.HostileEvent()), ErrUnsafeOutbox)
			assert.Empty(t, outboxFiles(t, outbox))
		})
	}
	// 0755, the usual mode of a folder made by hand, is fine.
	outbox := t.TempDir()
	require.NoError(t, os.Chmod(outbox, 0o755))
	_, err := NewJira("staircase.route1.jira", outbox, jira.Route{Project: "CS"}, nil)
	require.NoError(t, err)
}

// An outbox owned by another user is refused: that user could read and
// replace everything the dry run writes. The tests run as root, which can
// give a folder away.
func TestOutboxOwnedByAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a folder to another user")
	}
	const nobody = 65534
	for _, folder := range []string{"", "jira"} {
		outbox := t.TempDir()
		path := filepath.Join(outbox, folder)
		require.NoError(t, os.MkdirAll(path, 0o700))
		require.NoError(t, os.Chown(path, nobody, nobody))
		_, err := NewJira("staircase.route1.jira", outbox, jira.Route{Project: "CS"}, nil)
		require.ErrorIs(t, err, ErrUnsafeOutbox, folder)
		assert.ErrorContains(t, err, path+" belongs to uid 65534, not to this process's user (uid 0)")

		require.NoError(t, os.Chown(path, 0, 0))
		s, err := NewJira("staircase.route1.jira", outbox, jira.Route{Project: "CS"}, nil)
		require.NoError(t, err)
		require.NoError(t, os.Chown(path, nobody, nobody))
		require.ErrorIs(t, s.Deliver(sinktest.Context(t), sinktest.HostileEvent()), ErrUnsafeOutbox, "checked at delivery too")
	}
}

// An outbox that does not exist yet is fine; it is created 0700 at the
// first delivery. One that is a file is refused.
func TestCheckOutbox(t *testing.T) {
	assert.NoError(t, CheckOutbox(filepath.Join(t.TempDir(), "not", "yet")))
	assert.NoError(t, CheckOutbox(t.TempDir()))
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	err := CheckOutbox(file)
	require.ErrorIs(t, err, ErrUnsafeOutbox)
	assert.ErrorContains(t, err, "is not a folder")
	// The outbox itself may be a link the operator made; what it points to
	// is checked.
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "outbox")
	require.NoError(t, os.Symlink(dir, link))
	assert.NoError(t, CheckOutbox(link))
	require.NoError(t, os.Chmod(dir, 0o777))
	assert.ErrorIs(t, CheckOutbox(link), ErrUnsafeOutbox)
}

func TestDryRunNeedsOutbox(t *testing.T) {
	_, err := NewJira("j", "", jira.Route{Project: "CS"}, nil)
	assert.Error(t, err)
	_, err = NewEmail("e", "", "", email.Route{To: []string{"a@example.com"}}, nil)
	assert.Error(t, err)
	_, err = NewJira("j", t.TempDir(), jira.Route{}, nil)
	assert.ErrorContains(t, err, "project: required")
}

// outboxFiles lists the regular files under dir, failing on leftovers of
// the atomic write.
func outboxFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			assert.False(t, strings.HasPrefix(d.Name(), ".tmp-"), "temporary file left: %s", p)
			files = append(files, p)
		}
		return nil
	}))
	return files
}

func BenchmarkDryRunDeliver(b *testing.B) {
	outbox := b.TempDir()
	js, err := NewJira("staircase.route1.jira", outbox, jira.Route{Project: "CS"}, nil)
	require.NoError(b, err)
	es, err := NewEmail("email:0", outbox, "", email.Route{To: []string{"a@example.com"}}, nil)
	require.NoError(b, err)
	ev := sinktest.HostileEvent()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := js.Deliver(ctx, ev); err != nil {
			b.Fatal(err)
		}
		if err := es.Deliver(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// The chat sinks write exactly the body the real sink would post.
func TestDryRunChatWritesExactPayload(t *testing.T) {
	ev := sinktest.HostileEvent()
	for _, tc := range []struct {
		kind  string
		sink  func(outbox string) (*PayloadSink, error)
		build func() ([]byte, error)
	}{
		{"slack", func(outbox string) (*PayloadSink, error) {
			return NewSlack("staircase.route1.slack", outbox, slack.Route{}, nil)
		}, func() ([]byte, error) {
			b, err := slack.NewMessageBuilder(slack.Route{})
			require.NoError(t, err)
			return b.Build(ev)
		}},
		{"teams", func(outbox string) (*PayloadSink, error) {
			return NewTeams("staircase.route1.teams", outbox, teams.Route{}, nil)
		}, func() ([]byte, error) {
			b, err := teams.NewMessageBuilder(teams.Route{})
			require.NoError(t, err)
			return b.Build(ev)
		}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			outbox := t.TempDir()
			s, err := tc.sink(outbox)
			require.NoError(t, err)
			require.NoError(t, s.Deliver(sinktest.Context(t), ev))
			files := outboxFiles(t, outbox)
			require.Len(t, files, 1)
			assert.Equal(t, filepath.Join(outbox, tc.kind), filepath.Dir(files[0]))
			got, err := os.ReadFile(files[0])
			require.NoError(t, err)
			want, err := tc.build()
			require.NoError(t, err)
			assert.Equal(t, string(want)+"\n", string(got))
			assert.True(t, json.Valid(got))
		})
	}
}
