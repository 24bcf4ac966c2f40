package email

import (
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/stairhook/stairhook/receiver/internal/render"
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

// Route says how one route turns an event into an email.
type Route struct {
	// To are the recipients, addresses or "Name <address>"; at least one
	// is required.
	To []string `yaml:"to"`
	// Cc are the copy recipients, in the same form; none by default.
	Cc []string `yaml:"cc"`
	// Subject is a text/template over the event.Event (default
	// DefaultSubject); the result is made one line (line breaks and other
	// control characters become spaces; NUL and Unicode format characters
	// such as the bidi controls are removed) and test events get the
	// "[TEST] " prefix.
	Subject string `yaml:"subject"`
	// Text is the text/plain part, a text/template (default
	// DefaultText); NUL bytes are removed from the result. Templates
	// can call oneline (see Subject) on values that should stay on
	// one line, and link on a URL (see DefaultText).
	Text string `yaml:"text"`
	// HTML is the text/html part, an html/template, so every payload
	// string is escaped for where it lands (default DefaultHTML); NUL
	// bytes are removed from the result.
	HTML string `yaml:"html"`
}

// Default templates of an email route. Every value that stands on a line
// of its own or beside a label goes through oneline (see Route.Subject),
// so payload text cannot break the layout or reverse a line; the summary
// keeps its lines. link gives the Staircase URL only when it is an http(s)
// URL, without any user name or password it carries.
const (
	DefaultSubject = "{{.Signal.Title}} ({{.Account.Name}})"
	DefaultText    = `{{if .Test}}[TEST] This is a test notification from Staircase.

{{end}}{{oneline .Signal.Title}}

Account: {{oneline .Account.Name}}{{with oneline .Account.Domain}} ({{.}}){{end}}
{{with link .Account.StaircaseURL}}Staircase: {{.}}
{{end}}Severity: {{oneline .Signal.Severity}}
Type: {{oneline .Type}}
{{with .Signal.Summary}}
{{.}}
{{end}}{{with .People}}
People:
{{range .}}- {{oneline .Name}}{{with oneline .Title}}, {{.}}{{end}}{{with oneline .Role}}, {{.}}{{end}}{{with oneline .Change}}, {{.}}{{end}}{{with oneline .PreviousTitle}} (previously {{.}}){{end}}
{{end}}{{end}}
Staircase event {{.ID}}
`
	DefaultHTML = `<!DOCTYPE html>
<html><body>
{{if .Test}}<p><strong>[TEST] This is a test notification from Staircase.</strong></p>
{{end}}<h2>{{oneline .Signal.Title}}</h2>
<p><strong>Account:</strong> {{with link .Account.StaircaseURL}}<a href="{{.}}">{{oneline $.Account.Name}}</a>{{else}}{{oneline .Account.Name}}{{end}}{{with oneline .Account.Domain}} ({{.}}){{end}}</p>
<p><strong>Severity:</strong> {{oneline .Signal.Severity}}<br><strong>Type:</strong> {{oneline .Type}}</p>
{{with .Signal.Summary}}<p>{{.}}</p>
{{end}}{{with .People}}<p><strong>People</strong></p>
<ul>
{{range .}}<li><strong>{{oneline .Name}}</strong>{{with oneline .Title}}, {{.}}{{end}}{{with oneline .Role}}, {{.}}{{end}}{{with oneline .Change}}, {{.}}{{end}}{{with oneline .PreviousTitle}} (previously {{.}}){{end}}</li>
{{end}}</ul>
{{end}}<p>Staircase event {{.ID}}</p>
</body></html>
`
)

// defaultTimeout is SMTPConfig.Timeout's default.
const defaultTimeout = 30 * time.Second

// TLS policies of SMTPConfig.TLS.
const (
	tlsMandatory     = "mandatory"
	tlsSTARTTLS      = "starttls"
	tlsImplicit      = "tls"
	tlsOpportunistic = "opportunistic"
	tlsNone          = "none"
)

// Check reports every problem of c, each error naming its field under
// path, such as "smtp.from: required". It never quotes the password, nor
// a TLS policy it does not know (which may be a misplaced secret).
func (c *SMTPConfig) Check(path string) []error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, render.FieldError(path, field, msg)) }
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

// Check reports every problem of r, each error naming its field under
// path, such as "webhooks[0].routes[1].email.to[0]: not an email address",
// in a stable order. A template that does not parse, or names a field the
// event does not have, is reported with the parser's message, which quotes
// the template.
func (r *Route) Check(path string) []error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, render.FieldError(path, field, msg)) }
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
	if _, err := render.ParseText("subject", render.OrDefault(r.Subject, DefaultSubject)); err != nil {
		bad("subject", err.Error())
	}
	if _, err := render.ParseText("text", render.OrDefault(r.Text, DefaultText)); err != nil {
		bad("text", err.Error())
	}
	if _, err := render.ParseHTML("html", render.OrDefault(r.HTML, DefaultHTML)); err != nil {
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
