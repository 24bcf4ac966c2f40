package jira

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/internal/sinktest"
	"github.com/stairhook/stairhook/receiver/sink"
)

// notes collects what a Deliver noted (sink.Note), by key.
func notes(t *testing.T) (context.Context, map[string]string) {
	got := map[string]string{}
	return sink.WithNotes(sinktest.Context(t), func(k, v string) { got[k] = v }), got
}

// The console shows the issue a delivery made or found, linked to its page
// on the site; a failed delivery notes nothing.
func TestJiraNotesIssue(t *testing.T) {
	f := newJiraFixture(t, Route{})
	ev := sinktest.HostileEvent()
	ctx, got := notes(t)
	require.NoError(t, f.sink.Deliver(ctx, ev))
	require.Len(t, f.srv.Issues(), 1)
	key := f.srv.Issues()[0].Key
	want := map[string]string{sink.NoteJiraIssue: key, sink.NoteJiraURL: f.srv.URL + "/browse/" + key}
	assert.Equal(t, want, got, "created")

	ctx, got = notes(t)
	require.NoError(t, f.sink.Deliver(ctx, ev))
	assert.Equal(t, want, got, "found by the search")
	assert.Equal(t, 1, f.srv.Requests("/rest/api/3/issue"))
	for _, v := range got {
		assert.NotContains(t, v, f.srv.APIToken)
		assert.NotContains(t, v, f.srv.Email)
	}

	ctx, got = notes(t)
	f.srv.FailNext(1, 400, "")
	other := sinktest.HostileEvent()
	other.ID = "evt_other"
	require.ErrorIs(t, f.sink.Deliver(ctx, other), sink.ErrPermanent)
	assert.Empty(t, got)

	require.NoError(t, f.sink.Deliver(sinktest.Context(t), other), "without WithNotes, nothing to tell")
}

// The page is on the site, under its path if it has one; the gateway has
// no pages, so behind it only the key is noted.
func TestJiraBrowseURL(t *testing.T) {
	for base, want := range map[string]string{
		"https://x.atlassian.net":                   "https://x.atlassian.net/browse/CS-7",
		"https://x.atlassian.net/":                  "https://x.atlassian.net/browse/CS-7",
		"https://jira.example.com/jira/":            "https://jira.example.com/jira/browse/CS-7",
		"https://api.atlassian.com/ex/jira/abc-123": "",
	} {
		s, err := New("j", Config{BaseURL: base, Email: "a@b", APIToken: "t"}, Route{Project: "CS"}, nil, nil)
		require.NoError(t, err)
		ctx, got := notes(t)
		s.note(ctx, "CS-7")
		assert.Equal(t, "CS-7", got[sink.NoteJiraIssue], base)
		assert.Equal(t, want, got[sink.NoteJiraURL], base)
	}
}
