package email

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/smtptest"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/render"
	"github.com/stairhook/stairhook/receiver/internal/sinktest"
	"github.com/stairhook/stairhook/receiver/sink"
)

// newTestEmailSink makes an email sink for srv that trusts its test CA.
func newTestEmailSink(t *testing.T, srv *smtptest.Server, cfg SMTPConfig, route Route) *Sink {
	t.Helper()
	cfg.Host, cfg.Port = srv.Host, srv.Port
	if cfg.From == "" {
		cfg.From = "Staircase alerts <alerts@example.com>"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if len(route.To) == 0 {
		route.To = []string{"csm@example.com"}
	}
	s, err := New("email:test", cfg, route, nil)
	require.NoError(t, err)
	s.rootCAs = srv.RootCAs
	return s
}

func TestEmailSendsOverSTARTTLS(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	s := newTestEmailSink(t, srv, SMTPConfig{Username: srv.Username, Password: srv.Password},
		Route{To: []string{"csm@example.com"}, Cc: []string{"Lead <lead@example.com>"}})
	ev := sinktest.HostileEvent()
	require.NoError(t, s.Deliver(sinktest.Context(t), ev))

	msgs := srv.Messages()
	require.Len(t, msgs, 1)
	m := msgs[0]
	assert.True(t, m.TLS, "STARTTLS is mandatory by default")
	assert.Equal(t, "user", m.User)
	assert.Equal(t, "alerts@example.com", m.From)
	assert.ElementsMatch(t, []string{"csm@example.com", "lead@example.com"}, m.To)

	pm := sinktest.ParseMail(t, m.Data)
	subject, err := new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
	require.NoError(t, err)
	assert.Equal(t, "[TEST] Churn X-Injected: yes (Acme <script>alert(1)</script> Bcc: victim@example.com)", subject)
	assert.Regexp(t, `^<stairhook\.[0-9a-f]{32}@example\.com>$`, pm.Header.Get("Message-Id"))
	assert.Equal(t, "<"+MessageID("email:test", ev.ID, "example.com")+">", pm.Header.Get("Message-Id"))

	// Payload line breaks added no header.
	for _, h := range []string{"X-Injected", "Bcc"} {
		assert.Empty(t, pm.Header.Get(h), h)
	}
	assert.Contains(t, pm.Text, "Acme <script>alert(1)</script>")
	assert.Contains(t, pm.Text, "[TEST] This is a test notification")
	assert.NotContains(t, pm.HTML, "<script>")
	assert.Contains(t, pm.HTML, "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.Contains(t, pm.HTML, "Ann &lt;b&gt;Lee&lt;/b&gt;")
	assert.Contains(t, pm.HTML, `href="https://app.staircase.ai/accounts/1?a=b&amp;c=%3cd%3e"`)
}

func TestEmailTLSPolicies(t *testing.T) {
	t.Run("implicit TLS", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{ImplicitTLS: true})
		s := newTestEmailSink(t, srv, SMTPConfig{TLS: "tls", Username: srv.Username, Password: srv.Password}, Route{})
		require.NoError(t, s.Deliver(sinktest.Context(t), sinktest.HostileEvent()))
		require.Len(t, srv.Messages(), 1)
		assert.True(t, srv.Messages()[0].TLS)
	})
	t.Run("starttls is mandatory STARTTLS", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{NoTLS: true})
		s := newTestEmailSink(t, srv, SMTPConfig{TLS: "starttls", Username: srv.Username, Password: srv.Password}, Route{})
		err := s.Deliver(sinktest.Context(t), sinktest.HostileEvent())
		require.ErrorIs(t, err, sink.ErrPermanent)
		assert.Contains(t, err.Error(), "STARTTLS")
		assert.Equal(t, 0, srv.Attempts())
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{})
		s := newTestEmailSink(t, srv, SMTPConfig{Username: srv.Username, Password: srv.Password}, Route{})
		s.rootCAs = nil // the system roots do not know the test CA
		err := s.Deliver(sinktest.Context(t), sinktest.HostileEvent())
		require.ErrorIs(t, err, sink.ErrPermanent)
		assert.Empty(t, srv.Messages())
	})
	t.Run("opportunistic never sends the password in clear", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{NoTLS: true})
		s := newTestEmailSink(t, srv, SMTPConfig{TLS: "opportunistic", Username: srv.Username, Password: srv.Password}, Route{})
		err := s.Deliver(sinktest.Context(t), sinktest.HostileEvent())
		require.ErrorIs(t, err, sink.ErrPermanent)
		assert.Equal(t, 0, srv.Attempts())
	})
	t.Run("opportunistic uses STARTTLS when offered", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{})
		s := newTestEmailSink(t, srv, SMTPConfig{TLS: "opportunistic", Username: srv.Username, Password: srv.Password}, Route{})
		require.NoError(t, s.Deliver(sinktest.Context(t), sinktest.HostileEvent()))
		assert.True(t, srv.Messages()[0].TLS)
	})
	t.Run("none sends in clear with AUTH PLAIN", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{NoTLS: true})
		s := newTestEmailSink(t, srv, SMTPConfig{TLS: "none", Username: srv.Username, Password: srv.Password}, Route{})
		require.NoError(t, s.Deliver(sinktest.Context(t), sinktest.HostileEvent()))
		m := srv.Messages()[0]
		assert.False(t, m.TLS)
		assert.Equal(t, "user", m.User)
	})
	t.Run("wrong password is permanent", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{})
		s := newTestEmailSink(t, srv, SMTPConfig{Username: srv.Username, Password: "not-the-password"}, Route{})
		err := s.Deliver(sinktest.Context(t), sinktest.HostileEvent())
		require.ErrorIs(t, err, sink.ErrPermanent)
		assert.NotContains(t, err.Error(), "not-the-password")
	})
}

func TestEmailFaults(t *testing.T) {
	cases := []struct {
		name      string
		fault     smtptest.Fault
		permanent bool
	}{
		{"421 after data", smtptest.Fault{Code: 421}, false},
		{"451 after data", smtptest.Fault{Code: 451}, false},
		{"451 at MAIL FROM", smtptest.Fault{Stage: smtptest.AtMail, Code: 451}, false},
		{"550 after data", smtptest.Fault{Code: 550}, true},
		{"550 at RCPT TO", smtptest.Fault{Stage: smtptest.AtRcpt, Code: 550}, true},
		{"dropped connection", smtptest.Fault{Drop: true}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, smtptest.Options{})
			s := newTestEmailSink(t, srv, SMTPConfig{Username: srv.Username, Password: srv.Password}, Route{})
			srv.Inject(1, tc.fault)
			ev := sinktest.HostileEvent()
			err := s.Deliver(sinktest.Context(t), ev)
			require.Error(t, err)
			assert.Equal(t, tc.permanent, errors.Is(err, sink.ErrPermanent), "%v", err)
			assert.Empty(t, srv.Messages())
			// Once the fault clears, the sender's retry delivers once.
			require.NoError(t, s.Deliver(sinktest.Context(t), ev))
			assert.Len(t, srv.Messages(), 1)
		})
	}
}

func TestEmailTemplateOutputCap(t *testing.T) {
	b, err := NewMessageBuilder("", "a@example.com", Route{To: []string{"b@example.com"}, Text: "{{.Signal.Summary}}", HTML: "<p>{{.Signal.Title}}</p>"})
	require.NoError(t, err)
	ev := &event.Event{ID: "e", Account: event.Account{ID: "a"}}
	ev.Signal.Summary = strings.Repeat("s", render.MaxOutput)
	_, err = b.Build(ev)
	require.NoError(t, err, "exactly at the cap")
	ev.Signal.Summary += "s"
	_, err = b.Build(ev)
	require.ErrorIs(t, err, render.ErrOutputTooLarge)
	require.ErrorIs(t, err, sink.ErrPermanent)

	// The HTML cap counts escaped output: 4 bytes per '<' after escaping.
	ev.Signal.Summary = ""
	ev.Signal.Title = strings.Repeat("<", render.MaxOutput/4)
	_, err = b.Build(ev)
	require.ErrorIs(t, err, render.ErrOutputTooLarge)
}

func TestEmailSubjectOneLine(t *testing.T) {
	b, err := NewMessageBuilder("", "a@example.com", Route{To: []string{"b@example.com"}, Subject: "{{.Signal.Title}}\r\nBcc: x@example.com"})
	require.NoError(t, err)
	ev := &event.Event{ID: "e", Type: event.TypeRenewal, Account: event.Account{ID: "a"}, Signal: event.Signal{Title: "a\nb\rc"}}
	m, err := b.Build(ev)
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = m.WriteTo(&buf)
	require.NoError(t, err)
	pm := sinktest.ParseMail(t, buf.Bytes())
	assert.Equal(t, "a b c Bcc: x@example.com", pm.Header.Get("Subject"))
	assert.Empty(t, pm.Header.Get("Bcc"))

	ev.Signal.Title = ""
	m, err = b.Build(&event.Event{ID: "e", Type: event.TypeRenewal, Test: true, Account: event.Account{ID: "a"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"[TEST] Bcc: x@example.com"}, m.GetGenHeader("Subject"))
}

func TestSMTPConfigCheck(t *testing.T) {
	ok := SMTPConfig{Host: "smtp.example.com", Port: 587, Username: "u", Password: "p", TLS: "starttls", From: "A <a@example.com>"}
	assert.Empty(t, ok.Check("smtp"))
	bad := SMTPConfig{Host: "smtp.example.com:587", Port: 70000, Password: "p", TLS: "ssl", From: "nobody", Timeout: -1}
	var msgs []string
	for _, e := range bad.Check("smtp") {
		msgs = append(msgs, e.Error())
	}
	require.Len(t, msgs, 6, "%q", msgs)
	for i, prefix := range []string{"smtp.host:", "smtp.port:", "smtp.tls: unknown policy (want", "smtp.password: set without a username", "smtp.from: not an email address", "smtp.timeout:"} {
		assert.True(t, strings.HasPrefix(msgs[i], prefix), "%q", msgs[i])
	}
	assert.NotContains(t, strings.Join(msgs, "\n"), "ssl", "a value put in the wrong key may be a secret: never quoted")
	assert.Len(t, (&SMTPConfig{Host: "h", From: "a@example.com\r\nBcc: b@example.com"}).Check(""), 1)
}

func TestEmailRouteCheck(t *testing.T) {
	assert.Empty(t, (&Route{To: []string{"a@example.com"}}).Check("r"))
	bad := Route{Cc: []string{"not an address", "a@example.com\nBcc: b@example.com"}, Subject: "{{.Nope}}", HTML: "{{"}
	var msgs []string
	for _, e := range bad.Check("webhooks[0].routes[0].email") {
		msgs = append(msgs, e.Error())
	}
	require.Len(t, msgs, 5, "%q", msgs)
	want := []*regexp.Regexp{
		regexp.MustCompile(`^webhooks\[0\]\.routes\[0\]\.email\.cc\[0\]: not an email address`),
		regexp.MustCompile(`^webhooks\[0\]\.routes\[0\]\.email\.cc\[1\]: must be one line`),
		regexp.MustCompile(`^webhooks\[0\]\.routes\[0\]\.email\.html: `),
		regexp.MustCompile(`^webhooks\[0\]\.routes\[0\]\.email\.subject: .*Nope`),
		regexp.MustCompile(`^webhooks\[0\]\.routes\[0\]\.email\.to: at least one recipient`),
	}
	for i, re := range want {
		assert.Regexp(t, re, msgs[i])
	}
}

func TestEmailServerHangsPastTimeout(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	s := newTestEmailSink(t, srv, SMTPConfig{Username: srv.Username, Password: srv.Password, Timeout: time.Second}, Route{})
	srv.HangNext(1)
	ev := sinktest.HostileEvent()
	err := s.Deliver(sinktest.Context(t), ev)
	require.Error(t, err)
	assert.False(t, errors.Is(err, sink.ErrPermanent), "%v", err)
	require.Equal(t, 1, srv.Attempts(), "the message reached the server, which hung")
	s.cfg.Timeout = 10 * time.Second // the retry must not trip on a loaded machine
	require.NoError(t, s.Deliver(sinktest.Context(t), ev))
	assert.Len(t, srv.Messages(), 1)
}

func TestEmailDeliverHonoursContext(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	s := newTestEmailSink(t, srv, SMTPConfig{Username: srv.Username, Password: srv.Password}, Route{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Deliver(ctx, sinktest.HostileEvent())
	require.Error(t, err)
	assert.False(t, errors.Is(err, sink.ErrPermanent))
	assert.Empty(t, srv.Messages())
}

func BenchmarkEmailBuild(b *testing.B) {
	builder, err := NewMessageBuilder("", "a@example.com", Route{To: []string{"b@example.com"}})
	require.NoError(b, err)
	ev := sinktest.HostileEvent()
	b.ReportAllocs()
	for b.Loop() {
		m, err := builder.Build(ev)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// The Message-ID depends on the sink and the event: one sink gives a
// redelivery the same id, two email routes matching one event send two
// messages with different ids, so a mailbox that drops repeated ids keeps
// both.
func TestEmailMessageIDPerSink(t *testing.T) {
	cfg := SMTPConfig{Host: "smtp.example.com", From: "alerts@example.com"}
	route := Route{To: []string{"csm@example.com"}}
	id := func(name string, ev *event.Event) string {
		t.Helper()
		s, err := New(name, cfg, route, nil)
		require.NoError(t, err)
		m, err := s.builder.Build(ev)
		require.NoError(t, err)
		return m.GetMessageID()
	}
	ev := sinktest.HostileEvent()
	r1 := id("staircase.route1.email", ev)
	assert.Regexp(t, `^<stairhook\.[0-9a-f]{32}@example\.com>$`, r1)
	assert.Equal(t, r1, id("staircase.route1.email", ev), "deterministic across redeliveries")
	assert.NotEqual(t, r1, id("staircase.route2.email", ev), "per sink")
	other := sinktest.HostileEvent()
	other.ID = "evt_other"
	assert.NotEqual(t, r1, id("staircase.route1.email", other), "per event")
	// The zero byte keeps (sink, id) pairs apart.
	assert.NotEqual(t, MessageID("a", "bc", "x"), MessageID("ab", "c", "x"))
	// SHA-256 of "email:a", a zero byte and "evt_1", first 16 bytes.
	assert.Equal(t, "stairhook.19295726ebaa1aadbae7dc41da729885@example.com", MessageID("email:a", "evt_1", "example.com"))
}

// Bidi controls and other format characters make a subject read backwards
// or hide what it says; NUL has no place in a message. The subject and
// every one-line field of the default parts lose them; the summary keeps
// its lines, without NUL.
func TestEmailStripsFormatCharacters(t *testing.T) {
	b, err := NewMessageBuilder("staircase.route1.email", "a@example.com", Route{To: []string{"b@example.com"}})
	require.NoError(t, err)
	m, err := b.Build(sinktest.HostileEvent())
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = m.WriteTo(&buf)
	require.NoError(t, err)
	pm := sinktest.ParseMail(t, buf.Bytes())

	subject, err := new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
	require.NoError(t, err)
	assert.Equal(t, "[TEST] Churn X-Injected: yes (Acme <script>alert(1)</script> Bcc: victim@example.com)", subject)
	assert.NotContains(t, pm.Text, "\x00")
	assert.NotContains(t, pm.HTML, "\x00")
	assert.Contains(t, pm.Text, "\r\nChurn X-Injected: yes\r\n")
	assert.Contains(t, pm.Text, "\r\nAccount: Acme <script>alert(1)</script> Bcc: victim@example.com (acme.com)\r\n")
	assert.Contains(t, pm.Text, "\r\n- Ann <b>Lee</b> Subject: hijack, VP Finance, decision_maker, joined\r\n")
	assert.Contains(t, pm.HTML, "<h2>Churn X-Injected: yes</h2>")
	for _, r := range sinktest.FormatCharacters {
		assert.NotContains(t, subject, string(r), "U+%04X in the subject", r)
		assert.NotContains(t, pm.Text, string(r), "U+%04X in the text part", r)
		assert.NotContains(t, pm.HTML, string(r), "U+%04X in the HTML part", r)
	}
	assert.Contains(t, pm.Text, "Second paragraph  with NUL\u2028and LS", "the summary keeps its lines")
}

// The Staircase link is shown and followed without the user name and
// password a URL can carry, and only when it is http(s).
func TestEmailLinkWithoutCredentials(t *testing.T) {
	b, err := NewMessageBuilder("staircase.route1.email", "a@example.com", Route{To: []string{"b@example.com"}})
	require.NoError(t, err)
	for url, want := range map[string]string{
		"https://bot:S3cr3t@app.staircase.ai/a/1": "https://app.staircase.ai/a/1",
		"https://app.staircase.ai@evil.example/x": "https://evil.example/x",
		"javascript:alert(1)":                     "",
	} {
		ev := sinktest.HostileEvent()
		ev.Account.StaircaseURL = url
		m, err := b.Build(ev)
		require.NoError(t, err)
		var buf bytes.Buffer
		_, err = m.WriteTo(&buf)
		require.NoError(t, err)
		pm := sinktest.ParseMail(t, buf.Bytes())
		for _, part := range []string{pm.Text, pm.HTML} {
			assert.NotContains(t, part, "S3cr3t", url)
			assert.NotContains(t, part, "app.staircase.ai@", url)
			assert.NotContains(t, part, "javascript", url)
		}
		if want != "" {
			assert.Contains(t, pm.Text, "Staircase: "+want+"\r\n", url)
			assert.Contains(t, pm.HTML, `<a href="`+want+`">`, url)
		} else {
			assert.NotContains(t, pm.Text, "Staircase: ", url)
			assert.NotContains(t, pm.HTML, "<a href", url)
		}
	}
}
