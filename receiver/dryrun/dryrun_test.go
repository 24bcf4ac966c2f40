package dryrun

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/stairhook/stairhook/receiver/internal/sinktest"
	"github.com/stairhook/stairhook/receiver/jira"
	"github.com/stairhook/stairhook/receiver/jiratest"
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
		"evt_123":               "evt_123",
		"evt-1.2":               "evt-1.2",
		"../../etc/passwd":      "",
		"..":                    "",
		"":                      "",
		"a/b":                   "",
		"a\\b":                  "",
		"a\x00b":                "",
		"évt":                   "",
		strings.Repeat("x", 81): "",
	}
	seen := map[string]string{}
	for id, want := range cases {
		got := safeNamePart(id)
		if want != "" {
			assert.Equal(t, want, got)
		}
		assert.Regexp(t, `^[A-Za-z0-9_-][A-Za-z0-9._-]*$`, got, "%q", id)
		assert.LessOrEqual(t, len(got), maxNamePart+13)
		assert.Equal(t, got, filepath.Base(got), "%q", id)
		assert.NotContains(t, []string{".", ".."}, got)
		if prev, dup := seen[got]; dup {
			t.Errorf("%q and %q share the name %q", prev, id, got)
		}
		seen[got] = id
	}
	// Ids that clean up the same way still get distinct names.
	assert.NotEqual(t, safeNamePart("a/b"), safeNamePart("a_b"))
	assert.NotEqual(t, safeNamePart("a/b"), safeNamePart("a:b"))
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
