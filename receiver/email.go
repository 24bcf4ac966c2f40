package receiver

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"log/slog"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/stairhook/stairhook/receiver/event"
	gomail "github.com/wneessen/go-mail"
)

// SMTPConfig is the mail server the email routes send through. Without it,
// email routes write their messages to the outbox instead (dry run).
type SMTPConfig struct {
	// Host is the server's name, also used to verify its certificate.
	Host string `yaml:"host"`
	// Port defaults to 587 (465 with TLS "tls", 25 with "none").
	Port int `yaml:"port"`
	// Username enables SMTP AUTH, with the strongest mechanism the server
	// offers over TLS (SCRAM, CRAM-MD5, PLAIN, LOGIN). Without a username
	// no AUTH is attempted.
	Username string `yaml:"username"`
	// Password is Username's password; it requires a Username.
	Password string `yaml:"password"`
	// TLS is the transport security policy:
	//   - "mandatory" (the default) and its alias "starttls": plain
	//     connection upgraded with STARTTLS; a server that does not offer
	//     it, or whose certificate does not verify, is an error.
	//   - "tls": implicit TLS from the first byte (SMTPS, port 465).
	//   - "opportunistic": STARTTLS when offered, else plain text; the
	//     password is then only sent with challenge-response mechanisms
	//     (SCRAM, CRAM-MD5), never in clear. Open to downgrade; avoid.
	//   - "none": plain text only, with AUTH PLAIN in clear when a username
	//     is set. For a relay on the same host or in tests.
	TLS string `yaml:"tls"`
	// From is the sender, "Name <address>" or a bare address. Required.
	From string `yaml:"from"`
	// Timeout bounds connecting and each SMTP command. Default 30 s.
	Timeout time.Duration `yaml:"timeout"`
}

// EmailRoute says how one route turns an event into an email.
type EmailRoute struct {
	// To are the recipients, addresses or "Name <address>"; at least one
	// is required.
	To []string `yaml:"to"`
	// Cc are the copy recipients, in the same form; none by default.
	Cc []string `yaml:"cc"`
	// Subject is a text/template over the event.Event (default
	// DefaultEmailSubject); line breaks are removed and test events get the
	// "[TEST] " prefix.
	Subject string `yaml:"subject"`
	// Text is the text/plain part, a text/template (default
	// DefaultEmailText).
	Text string `yaml:"text"`
	// HTML is the text/html part, an html/template, so every payload
	// string is escaped for where it lands (default DefaultEmailHTML).
	HTML string `yaml:"html"`
}

// Default templates of an email route.
const (
	DefaultEmailSubject = "{{.Signal.Title}} ({{.Account.Name}})"
	DefaultEmailText    = `{{if .Test}}[TEST] This is a test notification from Staircase.

{{end}}{{.Signal.Title}}

Account: {{.Account.Name}}{{with .Account.Domain}} ({{.}}){{end}}
{{with .Account.StaircaseURL}}Staircase: {{.}}
{{end}}Severity: {{.Signal.Severity}}
Type: {{.Type}}
{{with .Signal.Summary}}
{{.}}
{{end}}{{with .People}}
People:
{{range .}}- {{.Name}}{{with .Title}}, {{.}}{{end}}{{with .Role}}, {{.}}{{end}}{{with .Change}}, {{.}}{{end}}{{with .PreviousTitle}} (previously {{.}}){{end}}
{{end}}{{end}}
Staircase event {{.ID}}
`
	DefaultEmailHTML = `<!DOCTYPE html>
<html><body>
{{if .Test}}<p><strong>[TEST] This is a test notification from Staircase.</strong></p>
{{end}}<h2>{{.Signal.Title}}</h2>
<p><strong>Account:</strong> {{if .Account.StaircaseURL}}<a href="{{.Account.StaircaseURL}}">{{.Account.Name}}</a>{{else}}{{.Account.Name}}{{end}}{{with .Account.Domain}} ({{.}}){{end}}</p>
<p><strong>Severity:</strong> {{.Signal.Severity}}<br><strong>Type:</strong> {{.Type}}</p>
{{with .Signal.Summary}}<p>{{.}}</p>
{{end}}{{with .People}}<p><strong>People</strong></p>
<ul>
{{range .}}<li><strong>{{.Name}}</strong>{{with .Title}}, {{.}}{{end}}{{with .Role}}, {{.}}{{end}}{{with .Change}}, {{.}}{{end}}{{with .PreviousTitle}} (previously {{.}}){{end}}</li>
{{end}}</ul>
{{end}}<p>Staircase event {{.ID}}</p>
</body></html>
`
)

const (
	defaultSMTPTimeout = 30 * time.Second
	defaultDryRunFrom  = "Stairhook <stairhook@localhost>"
)

// TLS policies of SMTPConfig.TLS.
const (
	tlsMandatory     = "mandatory"
	tlsSTARTTLS      = "starttls"
	tlsImplicit      = "tls"
	tlsOpportunistic = "opportunistic"
	tlsNone          = "none"
)

func (c *SMTPConfig) check(path string) []error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, fieldError(path, field, msg)) }
	if strings.TrimSpace(c.Host) == "" || strings.ContainsAny(c.Host, " \t\r\n/:") {
		bad("host", "required, a host name or IP address without port")
	}
	if c.Port < 0 || c.Port > 65535 {
		bad("port", "must be between 1 and 65535 (0 for the policy's default)")
	}
	switch c.TLS {
	case "", tlsMandatory, tlsSTARTTLS, tlsImplicit, tlsOpportunistic, tlsNone:
	default:
		bad("tls", "unknown policy (want mandatory, starttls, tls, opportunistic or none)")
	}
	if c.Password != "" && c.Username == "" {
		bad("password", "set without a username")
	}
	if _, err := parseFrom(c.From); err != nil {
		bad("from", err.Error())
	}
	if c.Timeout < 0 {
		bad("timeout", "must not be negative")
	}
	return errs
}

func parseFrom(s string) (*mail.Address, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("required, an address such as \"Alerts <alerts@example.com>\"")
	}
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("must be one line")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("not an email address: %v", err)
	}
	return a, nil
}

func (r *EmailRoute) check(path string) []error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, fieldError(path, field, msg)) }
	if len(r.To) == 0 {
		bad("to", "at least one recipient is required")
	}
	for name, list := range map[string][]string{"to": r.To, "cc": r.Cc} {
		for i, a := range list {
			if strings.ContainsAny(a, "\r\n") {
				bad(name+"["+strconv.Itoa(i)+"]", "must be one line")
			} else if _, err := mail.ParseAddress(a); err != nil {
				bad(name+"["+strconv.Itoa(i)+"]", fmt.Sprintf("not an email address: %v", err))
			}
		}
	}
	if _, err := parseText("subject", orDefault(r.Subject, DefaultEmailSubject)); err != nil {
		bad("subject", err.Error())
	}
	if _, err := parseText("text", orDefault(r.Text, DefaultEmailText)); err != nil {
		bad("text", err.Error())
	}
	if _, err := parseHTML("html", orDefault(r.HTML, DefaultEmailHTML)); err != nil {
		bad("html", err.Error())
	}
	// Map order is random: keep the errors in a stable order.
	sortErrors(errs)
	return errs
}

func sortErrors(errs []error) {
	for i := 1; i < len(errs); i++ {
		for j := i; j > 0 && errs[j].Error() < errs[j-1].Error(); j-- {
			errs[j], errs[j-1] = errs[j-1], errs[j]
		}
	}
}

// emailBuilder turns events into MIME messages; the real and the dry-run
// email sinks share it, so the dry run writes exactly what would be sent.
type emailBuilder struct {
	from    *mail.Address
	to, cc  []string
	domain  string // of From, for Message-IDs
	sink    string // the sink's name, for Message-IDs; set by the sink
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

func newEmailBuilder(from string, route EmailRoute) (*emailBuilder, error) {
	if errs := route.check(""); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	addr, err := parseFrom(from)
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	b := &emailBuilder{from: addr, to: route.To, cc: route.Cc, domain: "localhost"}
	if at := strings.LastIndexByte(addr.Address, '@'); at >= 0 && at+1 < len(addr.Address) {
		b.domain = addr.Address[at+1:]
	}
	if b.subject, err = parseText("subject", orDefault(route.Subject, DefaultEmailSubject)); err != nil {
		return nil, err
	}
	if b.text, err = parseText("text", orDefault(route.Text, DefaultEmailText)); err != nil {
		return nil, err
	}
	if b.html, err = parseHTML("html", orDefault(route.HTML, DefaultEmailHTML)); err != nil {
		return nil, err
	}
	return b, nil
}

// sinkMessageID is the Message-ID (without angle brackets) of the mail the
// sink named sink sends for an event: "stairhook.", 32 hex digits (16
// bytes) of SHA-256 over the sink name, a zero byte and the event id, "@"
// and the domain of From. A sink gives an event the same id on every
// redelivery, so a mailbox can recognise it; two email routes that match
// one event send messages with different ids, so a mailbox that drops
// repeated ids keeps both.
func sinkMessageID(sink, eventID, domain string) string {
	sum := sha256.Sum256([]byte(sink + "\x00" + eventID))
	return "stairhook." + hex.EncodeToString(sum[:16]) + "@" + domain
}

// build renders the message for ev. Errors are permanent.
func (b *emailBuilder) build(ev *event.Event) (*gomail.Msg, error) {
	subject, err := renderText(b.subject, ev, MaxTemplateOutput)
	if err != nil {
		return nil, err
	}
	text, err := renderText(b.text, ev, MaxTemplateOutput)
	if err != nil {
		return nil, err
	}
	html, err := renderHTML(b.html, ev, MaxTemplateOutput)
	if err != nil {
		return nil, err
	}
	// The subject is the only header built from the payload: one line,
	// whatever the payload holds.
	subject = oneLine(withTestMarker(ev, oneLine(subject)))
	if subject == "" {
		subject = oneLine(withTestMarker(ev, "Staircase signal "+ev.Type))
	}

	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	m.FromMailAddress(b.from)
	if err := m.To(b.to...); err != nil {
		return nil, Permanent(&classedError{"email address", fmt.Errorf("email: to: %w", err)})
	}
	if len(b.cc) > 0 {
		if err := m.Cc(b.cc...); err != nil {
			return nil, Permanent(&classedError{"email address", fmt.Errorf("email: cc: %w", err)})
		}
	}
	m.Subject(subject)
	m.SetMessageIDWithValue(sinkMessageID(b.sink, ev.ID, b.domain))
	m.SetDate()
	m.SetUserAgent("stairhook")
	m.SetBodyString(gomail.TypeTextPlain, text)
	m.AddAlternativeString(gomail.TypeTextHTML, html)
	return m, nil
}

// emailSink sends one message per event through an SMTP server.
type emailSink struct {
	name    string
	builder *emailBuilder
	cfg     SMTPConfig
	log     *slog.Logger
	// rootCAs replaces the system roots for verifying the server; only the
	// package's tests set it, to trust their own test CA.
	rootCAs *x509.CertPool
}

func newEmailSink(name string, cfg SMTPConfig, route EmailRoute, log *slog.Logger) (Sink, error) {
	if errs := cfg.check("smtp"); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	b, err := newEmailBuilder(cfg.From, route)
	if err != nil {
		return nil, err
	}
	b.sink = name
	if cfg.TLS == "" {
		cfg.TLS = tlsMandatory
	}
	if cfg.Port == 0 {
		switch cfg.TLS {
		case tlsImplicit:
			cfg.Port = 465
		case tlsNone:
			cfg.Port = 25
		default:
			cfg.Port = 587
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultSMTPTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &emailSink{name: name, builder: b, cfg: cfg, log: log}, nil
}

func (s *emailSink) Name() string { return s.name }

func (s *emailSink) client() (*gomail.Client, error) {
	tlsConfig := &tls.Config{ServerName: s.cfg.Host, MinVersion: tls.VersionTLS12, RootCAs: s.rootCAs}
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port),
		gomail.WithTimeout(s.cfg.Timeout),
		gomail.WithTLSConfig(tlsConfig),
		gomail.WithHELO("localhost"),
	}
	switch s.cfg.TLS {
	case tlsImplicit:
		opts = append(opts, gomail.WithSSL())
	case tlsOpportunistic:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case tlsNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.cfg.Username != "" {
		auth := gomail.SMTPAuthAutoDiscover
		if s.cfg.TLS == tlsNone {
			// Explicitly unencrypted: discovery would refuse PLAIN.
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth),
			gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	return gomail.NewClient(s.cfg.Host, opts...)
}

// Deliver renders and sends the message for ev. SMTP 4xx replies and
// network failures are transient; 5xx replies are permanent.
func (s *emailSink) Deliver(ctx context.Context, ev *event.Event) error {
	m, err := s.builder.build(ev)
	if err != nil {
		return err
	}
	c, err := s.client()
	if err != nil {
		return Permanent(&classedError{"smtp config", fmt.Errorf("email: client: %w", err)})
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return classifySMTP(err)
	}
	s.log.InfoContext(ctx, "email sent", "sink", s.name, "event_id", ev.ID, "message_id", m.GetMessageID())
	return nil
}

// classifySMTP wraps an SMTP failure as permanent when the server answered
// with a 5xx reply (a rejected sender, recipient or message, failed
// authentication); everything else (4xx replies, refused or dropped
// connections, timeouts) is transient.
func classifySMTP(err error) error {
	err = fmt.Errorf("email: %w", err)
	var se *gomail.SendError
	if errors.As(err, &se) {
		code := se.ErrorCode()
		if code > 0 {
			err = &classedError{"smtp " + strconv.Itoa(code), err}
		}
		if code >= 500 && code < 600 {
			return Permanent(err)
		}
		return err
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		err = &classedError{"smtp " + strconv.Itoa(te.Code), err}
		if te.Code >= 500 && te.Code < 600 {
			return Permanent(err)
		}
	}
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	if errors.As(err, &ue) || errors.As(err, &he) || errors.Is(err, gomail.ErrNoSupportedAuthDiscovered) ||
		strings.Contains(err.Error(), "does not support STARTTLS") {
		// The server cannot be trusted, or offers no way to authenticate
		// safely, as configured: the operator must act, and retrying
		// would fail the same way.
		return Permanent(&classedError{"smtp tls or auth", err})
	}
	return err
}
