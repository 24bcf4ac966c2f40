// Package sinktest holds what the tests of the built-in sinks (packages
// jira, email and dryrun) share: [HostileEvent], the event whose every
// string tries to break out of where a sink puts it; [Context], the bound
// of one test delivery; and [ParseMail], which splits a MIME message the
// email sinks made into the parts the tests check.
package sinktest

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/event"
)

// HostileEvent carries markup, line breaks, control characters, NUL, bidi
// controls and other invisible format characters, and odd Unicode in every
// string a sink renders. Once the one-line fields lose their format
// characters (see render.OneLine), its title reads "Churn X-Injected: yes"
// and its account name "Acme <script>alert(1)</script> Bcc:
// victim@example.com". Each call returns a new event.
func HostileEvent() *event.Event {
	return &event.Event{
		ID: "evt_hostile/../../x", Type: event.TypeChurnRisk, Test: true,
		CreatedAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
		Account: event.Account{
			ID: "acc_<1>", Name: "Acme\u2067 <script>alert(1)</script>\u2069\r\nBcc: victim@\u200Bexample.com\x00",
			Domain: "acme.com\u200E", Status: "active", StaircaseURL: "https://app.staircase.ai/accounts/1?a=b&c=<d>",
		},
		Signal: event.Signal{
			Title:    "\uFEFFChurn\u202E\r\nX-Injected: yes\u202C\x00",
			Summary:  "First line\nsecond line\n\nSecond paragraph \x00 with NUL\u2028and LS\r\n\r\n\r\n",
			Severity: "high", Sentiment: "negative", Category: "risk",
			DetectedAt: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC),
		},
		People: []event.Person{
			{Name: "Ann <b>Lee</b>\r\nSubject: hijack\u2066", Email: "ann@acme.com", Title: "VP\nFinance", Role: "decision_maker", Change: "joined"},
			{Name: "Bo 😀 Chen", Title: "CTO", PreviousTitle: "VP Eng", Change: "title_changed"},
			{},
		},
	}
}

// FormatCharacters are the characters HostileEvent hides in its one-line
// fields and that no one-line field may keep: NUL and format characters
// (Unicode category Cf) such as the bidi controls.
const FormatCharacters = "\x00\u200B\u200E\u200F\u202C\u202E\u2066\u2067\u2069\uFEFF"

// Context is the context of one test delivery: ten seconds, cancelled when
// the test ends.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Mail is a received message split into what the tests check.
type Mail struct {
	Header mail.Header
	// Text and HTML are the decoded bodies of the text/plain and text/html
	// parts of the multipart/alternative message.
	Text, HTML string
}

// ParseMail parses a multipart/alternative message with a text/plain and a
// text/html part, failing t on anything else.
func ParseMail(t testing.TB, data []byte) Mail {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	require.NoError(t, err)
	pm := Mail{Header: m.Header}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/alternative", mt)
	r := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(p) // NextPart decodes quoted-printable
		require.NoError(t, err)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			pm.Text = string(body)
		case "text/html":
			pm.HTML = string(body)
		default:
			t.Fatalf("unexpected part %s", ct)
		}
	}
	return pm
}
