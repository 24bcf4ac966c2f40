package email

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

	gomail "github.com/wneessen/go-mail"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/internal/render"
	"github.com/stairhook/stairhook/receiver/sink"
)

// MessageBuilder turns events into MIME messages; the sink and the dry run
// (package dryrun) share it, so the dry run writes exactly what would be
// sent.
type MessageBuilder struct {
	from    *mail.Address
	to, cc  []string
	domain  string // of From, for Message-IDs
	sink    string // the sink's name, for Message-IDs
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// NewMessageBuilder returns the builder of the messages the sink named
// name sends for route from the address from, or the route's problems
// (see Route.Check) without their config path. The sink's name goes into
// each Message-ID (see MessageID).
func NewMessageBuilder(name, from string, route Route) (*MessageBuilder, error) {
	if errs := route.Check(""); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	addr, err := parseFrom(from)
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	b := &MessageBuilder{from: addr, to: route.To, cc: route.Cc, domain: "localhost", sink: name}
	if at := strings.LastIndexByte(addr.Address, '@'); at >= 0 && at+1 < len(addr.Address) {
		b.domain = addr.Address[at+1:]
	}
	if b.subject, err = render.ParseText("subject", render.OrDefault(route.Subject, DefaultSubject)); err != nil {
		return nil, err
	}
	if b.text, err = render.ParseText("text", render.OrDefault(route.Text, DefaultText)); err != nil {
		return nil, err
	}
	if b.html, err = render.ParseHTML("html", render.OrDefault(route.HTML, DefaultHTML)); err != nil {
		return nil, err
	}
	return b, nil
}

// MessageID is the Message-ID (without angle brackets) of the mail the
// sink named sinkName sends for an event: "stairhook.", 32 hex digits (16
// bytes) of SHA-256 over the sink name, a zero byte and the event id, "@"
// and the domain of From. A sink gives an event the same id on every
// redelivery, so a mailbox can recognise it; two email routes that match
// one event send messages with different ids, so a mailbox that drops
// repeated ids keeps both.
func MessageID(sinkName, eventID, domain string) string {
	sum := sha256.Sum256([]byte(sinkName + "\x00" + eventID))
	return "stairhook." + hex.EncodeToString(sum[:16]) + "@" + domain
}

// Build renders the message for ev. Errors are permanent.
func (b *MessageBuilder) Build(ev *event.Event) (*gomail.Msg, error) {
	subject, err := render.Text(b.subject, ev, render.MaxOutput)
	if err != nil {
		return nil, err
	}
	text, err := render.Text(b.text, ev, render.MaxOutput)
	if err != nil {
		return nil, err
	}
	html, err := render.HTML(b.html, ev, render.MaxOutput)
	if err != nil {
		return nil, err
	}
	// The subject is the only header built from the payload: one line,
	// without format characters, whatever the payload holds. The bodies
	// lose their NUL bytes only.
	subject = render.OneLine(render.WithTestMarker(ev, render.OneLine(subject)))
	if subject == "" {
		subject = render.OneLine(render.WithTestMarker(ev, "Staircase signal "+ev.Type))
	}
	text, html = render.Body(text), render.Body(html)

	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	m.FromMailAddress(b.from)
	if err := m.To(b.to...); err != nil {
		return nil, sink.Permanent(sink.Classed("email address", fmt.Errorf("email: to: %w", err)))
	}
	if len(b.cc) > 0 {
		if err := m.Cc(b.cc...); err != nil {
			return nil, sink.Permanent(sink.Classed("email address", fmt.Errorf("email: cc: %w", err)))
		}
	}
	m.Subject(subject)
	m.SetMessageIDWithValue(MessageID(b.sink, ev.ID, b.domain))
	m.SetDate()
	m.SetUserAgent("stairhook")
	m.SetBodyString(gomail.TypeTextPlain, text)
	m.AddAlternativeString(gomail.TypeTextHTML, html)
	return m, nil
}

// Sink sends one message per event through an SMTP server.
type Sink struct {
	name    string
	builder *MessageBuilder
	cfg     SMTPConfig
	log     *slog.Logger
	// rootCAs replaces the system roots for verifying the server; only the
	// package's tests set it, to trust their own test CA.
	rootCAs *x509.CertPool
}

// New returns the sink named name that sends the messages of route through
// the server of cfg, or the problems of cfg (with the config path "smtp")
// or of route. log (nil discards) gets a line per message sent.
func New(name string, cfg SMTPConfig, route Route, log *slog.Logger) (*Sink, error) {
	if errs := cfg.Check("smtp"); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	b, err := NewMessageBuilder(name, cfg.From, route)
	if err != nil {
		return nil, err
	}
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
		cfg.Timeout = defaultTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{name: name, builder: b, cfg: cfg, log: log}, nil
}

// Name returns the sink's name, as given to New.
func (s *Sink) Name() string { return s.name }

func (s *Sink) client() (*gomail.Client, error) {
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
// network failures are transient; 5xx replies are permanent. The message
// sent is noted (sink.Note) under sink.NoteMessageID, with its angle
// brackets, as its Message-ID header has it.
func (s *Sink) Deliver(ctx context.Context, ev *event.Event) error {
	m, err := s.builder.Build(ev)
	if err != nil {
		return err
	}
	c, err := s.client()
	if err != nil {
		return sink.Permanent(sink.Classed("smtp config", fmt.Errorf("email: client: %w", err)))
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, m); err != nil {
		return classifySMTP(err)
	}
	s.log.InfoContext(ctx, "email sent", "sink", s.name, "event_id", ev.ID, "message_id", m.GetMessageID())
	sink.Note(ctx, sink.NoteMessageID, m.GetMessageID())
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
			err = sink.Classed("smtp "+strconv.Itoa(code), err)
		}
		if code >= 500 && code < 600 {
			return sink.Permanent(err)
		}
		return err
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		err = sink.Classed("smtp "+strconv.Itoa(te.Code), err)
		if te.Code >= 500 && te.Code < 600 {
			return sink.Permanent(err)
		}
	}
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	if errors.As(err, &ue) || errors.As(err, &he) || errors.Is(err, gomail.ErrNoSupportedAuthDiscovered) ||
		strings.Contains(err.Error(), "does not support STARTTLS") {
		// The server cannot be trusted, or offers no way to authenticate
		// safely, as configured: the operator must act, and retrying
		// would fail the same way.
		return sink.Permanent(sink.Classed("smtp tls or auth", err))
	}
	return err
}
