package receiver

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stairhook/stairhook/receiver/console"
	"github.com/stairhook/stairhook/receiver/queue"
	"github.com/stairhook/stairhook/verify"
)

// urlSafeName is the shape of webhook and route names.
var urlSafeName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// sinkName is the shape of the names of the sinks in ServerOptions.Sinks:
// that of route names plus ".", and longer. No "/", so the ledger key
// "sink/<webhook>/<event id>/<sink name>" splits at its first and last "/"
// unambiguously.
var sinkName = regexp.MustCompile(`^[a-z0-9_.-]{1,128}$`)

// sinkNameRule says what sinkName requires.
const sinkNameRule = "must be 1 to 128 of a-z, 0-9, _, - and ."

// maxKeys is verify's limit on a keyring.
const maxKeys = 16

// maxTolerance bounds a webhook's tolerance: the sender signs every attempt
// afresh, so the window only needs to cover clock skew and transit, and
// the ids are remembered for twice the window.
const maxTolerance = time.Hour

// validate reports every problem of c, each with its path.
func (c *Config) validate() []error {
	var errs []error
	bad := func(path, msg string) { errs = append(errs, configErr(path, msg)) }

	if !validListen(c.Listen) {
		bad("listen", "must be host:port with a port from 0 to 65535, such as 127.0.0.1:8080")
	}
	if c.Store.Redis != "" {
		if _, err := redis.ParseURL(c.Store.Redis); err != nil {
			// The URL may hold a password: never quote it.
			bad("store.redis", "must be a redis:// or rediss:// URL")
		}
	}
	if c.Store.SQLite != "" && c.Store.Postgres != "" {
		bad("store", "set sqlite or postgres, not both")
	}
	if c.Store.SQLite != "" {
		if _, err := queue.ParseLocation("sqlite:" + c.Store.SQLite); err != nil {
			bad("store.sqlite", "must be a file path without ? or #")
		}
	}
	if c.Store.Postgres != "" {
		if _, err := queue.ParseLocation(c.Store.Postgres); err != nil {
			// The URL may hold a password: never quote it.
			bad("store.postgres", "must be a postgres:// URL")
		}
	}
	d := c.Delivery
	if d.Workers < 0 || d.Workers > maxWorkers {
		bad("delivery.workers", fmt.Sprintf("must be from 1 to %d (0 for the default)", maxWorkers))
	}
	for _, f := range []struct {
		path string
		v    time.Duration
	}{{"delivery.attempt_timeout", d.AttemptTimeout}, {"delivery.first_retry", d.FirstRetry}, {"delivery.max_retry", d.MaxRetry}, {"delivery.give_up_after", d.GiveUpAfter}} {
		if f.v < 0 {
			bad(f.path, "must not be negative")
		}
	}
	if d.FirstRetry > 0 && d.MaxRetry > 0 && d.FirstRetry > d.MaxRetry {
		bad("delivery.first_retry", "must not be longer than delivery.max_retry")
	}
	if c.Admin.Listen != AdminOff && !validListen(c.Admin.Listen) {
		bad("admin.listen", "must be host:port, such as 127.0.0.1:8081, or off")
	}
	if c.Admin.Token != "" && len(c.Admin.Token) < console.MinTokenLength {
		// Not quoted: it is a secret.
		bad("admin.token", fmt.Sprintf("must be at least %d characters (leave it empty to have one generated)", console.MinTokenLength))
	}
	if c.Limits.MaxConnections < 0 {
		bad("limits.max_connections", "must be positive (0 for the default)")
	}
	if c.Limits.MaxBodyBytesInFlight < 0 || (c.Limits.MaxBodyBytesInFlight > 0 && c.Limits.MaxBodyBytesInFlight < verify.DefaultMaxBodyBytes) {
		bad("limits.max_body_bytes_in_flight", fmt.Sprintf("must be at least %d, the body cap (0 for the default)", verify.DefaultMaxBodyBytes))
	}
	if strings.TrimSpace(c.Outbox) == "" || strings.ContainsRune(c.Outbox, 0) {
		bad("outbox", "must be a folder path")
	}
	if c.Retention < 0 {
		bad("retention", "must not be negative")
	}
	if c.Jira != nil {
		errs = append(errs, wrapConfig(c.Jira.Check("jira"))...)
	}
	if c.SMTP != nil {
		errs = append(errs, wrapConfig(c.SMTP.Check("smtp"))...)
	}
	if c.Slack != nil {
		errs = append(errs, wrapConfig(c.Slack.Check("slack"))...)
	}
	if c.Teams != nil {
		errs = append(errs, wrapConfig(c.Teams.Check("teams"))...)
	}
	if len(c.Webhooks) == 0 {
		bad("webhooks", "at least one webhook is required")
	}
	names := map[string]bool{}
	for i, w := range c.Webhooks {
		p := "webhooks[" + strconv.Itoa(i) + "]"
		switch {
		case !urlSafeName.MatchString(w.Name):
			bad(p+".name", "must be 1 to 64 of a-z, 0-9, _ and - (it is part of the URL)")
		case names[w.Name]:
			bad(p+".name", fmt.Sprintf("%q is used by another webhook", w.Name))
		}
		names[w.Name] = true
		errs = append(errs, w.validate(p, c)...)
	}
	return errs
}

// validListen reports whether s is a host:port to listen on.
func validListen(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || port == "" || strings.ContainsAny(host, " /") {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// validate checks w, at path p of c (whose connection sections the
// routes are checked against).
func (w *WebhookConfig) validate(p string, c *Config) []error {
	var errs []error
	bad := func(path, msg string) { errs = append(errs, configErr(path, msg)) }
	if len(w.Secrets) == 0 {
		bad(p+".secrets", "at least one secret is required")
	}
	if len(w.Secrets) > maxKeys {
		bad(p+".secrets", fmt.Sprintf("at most %d secrets", maxKeys))
	}
	labels := map[string]bool{}
	for j, s := range w.Secrets {
		sp := p + ".secrets[" + strconv.Itoa(j) + "]"
		label := secretLabel(s, j)
		if labels[label] {
			bad(sp+".label", fmt.Sprintf("%q is used by another secret of this webhook", label))
		}
		labels[label] = true
		if _, err := verify.ParseSecret(s.Secret); err != nil {
			// ParseSecret's errors describe the format, never the text.
			bad(sp+".secret", "not a whsec_ secret ("+strings.TrimPrefix(err.Error(), "verify: ")+")")
		}
	}
	if w.Tolerance < 0 || w.Tolerance > maxTolerance {
		bad(p+".tolerance", "must be from 0 (the default, 5m) to 1h: a longer window weakens replay protection")
	}
	if len(w.Routes) == 0 {
		bad(p+".routes", "at least one route is required")
	}
	routes := map[string]bool{}
	for j, r := range w.Routes {
		rp := p + ".routes[" + strconv.Itoa(j) + "]"
		name := routeName(r, j)
		if r.Name != "" && !urlSafeName.MatchString(r.Name) {
			bad(rp+".name", "must be 1 to 64 of a-z, 0-9, _ and -")
		} else if routes[name] {
			bad(rp+".name", fmt.Sprintf("%q is used by another route of this webhook", name))
		}
		routes[name] = true
		for _, l := range []struct {
			field string
			list  []string
		}{
			{"types", r.When.Types}, {"severities", r.When.Severities},
			{"account_statuses", r.When.AccountStatuses}, {"roles", r.When.Roles},
		} {
			for k, v := range l.list {
				if strings.TrimSpace(v) == "" {
					bad(rp+".when."+l.field+"["+strconv.Itoa(k)+"]", "must not be empty (leave the list out to match anything)")
				}
			}
		}
		if r.Jira == nil && r.Email == nil && r.Slack == nil && r.Teams == nil && r.Forward == nil && len(r.Sinks) == 0 {
			bad(rp, "needs at least one sink (jira, email, slack, teams, forward or sinks)")
		}
		listed := map[string]bool{}
		for k, n := range r.Sinks {
			sp := rp + ".sinks[" + strconv.Itoa(k) + "]"
			switch {
			case !sinkName.MatchString(n):
				bad(sp, sinkNameRule+" (the Name of a sink in ServerOptions.Sinks)")
			case listed[n]:
				bad(sp, fmt.Sprintf("%q is listed twice in this route", n))
			}
			listed[n] = true
		}
		if r.Jira != nil {
			errs = append(errs, wrapConfig(r.Jira.Check(rp+".jira"))...)
		}
		if r.Email != nil {
			errs = append(errs, wrapConfig(r.Email.Check(rp+".email"))...)
		}
		if r.Slack != nil {
			errs = append(errs, wrapConfig(r.Slack.Check(rp+".slack"))...)
			if c.Slack != nil {
				errs = append(errs, wrapConfig(c.Slack.CheckRoute(rp+".slack", r.Slack))...)
			}
		}
		if r.Teams != nil {
			errs = append(errs, wrapConfig(r.Teams.Check(rp+".teams"))...)
			if c.Teams != nil {
				errs = append(errs, wrapConfig(c.Teams.CheckRoute(rp+".teams", r.Teams))...)
			}
		}
		if r.Forward != nil {
			errs = append(errs, wrapConfig(r.Forward.Check(rp+".forward"))...)
		}
	}
	return errs
}

func secretLabel(s SecretConfig, i int) string {
	if s.Label != "" {
		return s.Label
	}
	return "key" + strconv.Itoa(i+1)
}

func routeName(r RouteConfig, i int) string {
	if r.Name != "" {
		return r.Name
	}
	return "route" + strconv.Itoa(i+1)
}

// configError is one configuration problem at a path.
type configError struct {
	path, msg string
	// line is the line of a ${NAME} problem, found before the YAML is
	// parsed; ParseConfig then names the field on that line if it can.
	line int
}

func (e *configError) Error() string {
	if e.path == "" {
		return e.msg
	}
	return e.path + ": " + e.msg
}

func (e *configError) Unwrap() error { return ErrInvalidConfig }

func configErr(path, msg string) error { return &configError{path: path, msg: msg} }

// sinkConfigError keeps a sink's own message (already prefixed with its
// path) and adds ErrInvalidConfig.
type sinkConfigError struct{ err error }

func (e *sinkConfigError) Error() string   { return e.err.Error() }
func (e *sinkConfigError) Unwrap() []error { return []error{ErrInvalidConfig, e.err} }

func wrapConfig(errs []error) []error {
	for i, err := range errs {
		if !errors.Is(err, ErrInvalidConfig) {
			errs[i] = &sinkConfigError{err}
		}
	}
	return errs
}
