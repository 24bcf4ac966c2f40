package receiver

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/stairhook/stairhook/receiver/email"
	"github.com/stairhook/stairhook/receiver/jira"
	"github.com/stairhook/stairhook/receiver/queue"
	"github.com/stairhook/stairhook/verify"
)

// ErrInvalidConfig is wrapped by every error ParseConfig and LoadConfig
// report about the content of a configuration.
var ErrInvalidConfig = errors.New("receiver: invalid config")

// Defaults applied by ParseConfig to keys left out or empty.
const (
	DefaultListen = "127.0.0.1:8080"
	DefaultOutbox = "./stairhook-outbox"
	// DefaultSQLite is the database file when the store section is empty.
	DefaultSQLite    = "./stairhook.db"
	DefaultRetention = 7 * 24 * time.Hour
)

// maxConfigBytes bounds the configuration text, and maxConfigNodes the YAML
// nodes visited while decoding it (aliases are followed, so a small file
// could otherwise expand without bound).
const (
	maxConfigBytes = 1 << 20
	maxConfigNodes = 100_000
)

// Config is the receiver's configuration, usually read from a YAML file by
// LoadConfig. See examples/receiver/config.yaml for an annotated example.
type Config struct {
	// Listen is the host:port ListenAndServe listens on. Default
	// DefaultListen (loopback only).
	Listen string `yaml:"listen"`
	// Store chooses where event ids and done sinks are recorded.
	Store StoreConfig `yaml:"store"`
	// Outbox is the folder the dry-run sinks and the dead-letter file
	// (deadletter.jsonl) write to. Default DefaultOutbox.
	Outbox string `yaml:"outbox"`
	// Retention is how long an accepted event is kept in the database
	// once its jobs are all done (a job still queued or dead keeps it),
	// and so how long a redelivery of its id is answered as a duplicate.
	// Default DefaultRetention (7 days): keep it above the webhooks'
	// tolerance and delivery.give_up_after.
	//
	// In inline mode it is how long a sink that succeeded stays recorded,
	// so a redelivery or a dead-letter replay within it does not run the
	// sink again: Redis keeps the record for all of it; the in-memory
	// default keeps verify.DefaultMemoryStoreEntries records and forgets
	// the oldest when full, and a restart forgets them all.
	Retention time.Duration `yaml:"retention"`
	// Delivery tunes the queue's workers and retries.
	Delivery DeliveryConfig `yaml:"delivery"`
	// Jira is the Jira Cloud site; nil makes every jira route a dry run.
	Jira *JiraConfig `yaml:"jira"`
	// SMTP is the mail server; nil makes every email route a dry run.
	SMTP *SMTPConfig `yaml:"smtp"`
	// Webhooks are served at POST /webhooks/{name}; at least one.
	Webhooks []WebhookConfig `yaml:"webhooks"`
}

// StoreConfig chooses the store of event ids and done sinks.
type StoreConfig struct {
	// SQLite is the path of the server's database file, created with mode
	// 0600 when missing. Default value is ./stairhook.db when Postgres is
	// empty too.
	SQLite string `yaml:"sqlite"`
	// Postgres is a postgres:// URL: several instances on one database
	// share the ids, the events and the work. At most one of SQLite and
	// Postgres is set.
	Postgres string `yaml:"postgres"`
	// Redis is a redis:// or rediss:// URL for the ids and done sinks of
	// inline mode (ServerOptions.Inline, the AWS Lambda bootstrap); empty
	// means bounded in-memory stores, which protect one process only (see
	// Config.Retention). The queued server refuses it at start: its ids
	// live in its database.
	Redis string `yaml:"redis"`
}

// DeliveryConfig tunes the queue's workers and retries. Zero values take
// the defaults of package queue.
type DeliveryConfig struct {
	// Workers is how many jobs one process works at once. Default 8.
	Workers int `yaml:"workers"`
	// AttemptTimeout bounds one attempt of one sink. Default 30s.
	AttemptTimeout time.Duration `yaml:"attempt_timeout"`
	// FirstRetry is the wait after a first failed attempt; it doubles,
	// with jitter, up to MaxRetry. Default 5s.
	FirstRetry time.Duration `yaml:"first_retry"`
	// MaxRetry is the longest wait between attempts. Default 1h.
	MaxRetry time.Duration `yaml:"max_retry"`
	// GiveUpAfter makes a job still failing this long after it was queued
	// a dead letter. Default 72h.
	GiveUpAfter time.Duration `yaml:"give_up_after"`
}

// maxWorkers bounds delivery.workers.
const maxWorkers = 1000

// ParseStore reads the --store flag's and STAIRHOOK_STORE's form,
// "sqlite:PATH" or a postgres:// URL, into a StoreConfig.
func ParseStore(s string) (StoreConfig, error) {
	loc, err := queue.ParseLocation(s)
	if err != nil {
		return StoreConfig{}, err
	}
	return StoreConfig{SQLite: loc.SQLitePath, Postgres: loc.PostgresURL}, nil
}

// location is where the queued server's database is.
func (sc StoreConfig) location() (queue.Location, error) {
	if sc.Redis != "" {
		return queue.Location{}, configErr("store.redis", "is for inline mode (AWS Lambda) only: stairhook serve keeps its ids in its database; "+
			"remove store.redis, and to share one database between instances write store: {postgres: URL}")
	}
	if sc.Postgres != "" {
		loc, err := queue.ParseLocation(sc.Postgres)
		if err != nil {
			return loc, configErr("store.postgres", "must be a postgres:// URL")
		}
		return loc, nil
	}
	return queue.Location{SQLitePath: cmp.Or(sc.SQLite, DefaultSQLite)}, nil
}

// WebhookConfig is one webhook registration on the sender's side: its path,
// keyring and routes.
type WebhookConfig struct {
	// Name is served at POST /webhooks/{name}: 1 to 64 of a-z, 0-9, _ and -.
	Name string `yaml:"name"`
	// Secrets is the keyring, 1 to 16 entries; several during a rotation.
	Secrets []SecretConfig `yaml:"secrets"`
	// Tolerance is how far a signed timestamp may lie from now, at most
	// 1h. Default verify.DefaultTolerance (5 minutes).
	Tolerance time.Duration `yaml:"tolerance"`
	// Routes send matching events to sinks; at least one. An event runs
	// the sinks of every route it matches, in order.
	Routes []RouteConfig `yaml:"routes"`
}

// SecretConfig is one key of a webhook's keyring.
type SecretConfig struct {
	// Label names the key in logs; default key1, key2, … by position.
	Label string `yaml:"label"`
	// Secret is the whsec_… text, usually "${SOME_VARIABLE}". It never
	// appears in an error or a log line.
	Secret string `yaml:"secret"`
	// Expires, when set, retires the key from that instant.
	Expires time.Time `yaml:"expires"`
}

// RouteConfig sends the events it matches to its sinks: jira, then email,
// then Sinks in their order. It needs at least one of the three.
type RouteConfig struct {
	// Name identifies the route in sink names (and so in the record of
	// done sinks and in the dead-letter file); default route1, route2, …
	// by position. Set it to keep the record valid when routes are
	// reordered. 1 to 64 of a-z, 0-9, _ and -.
	Name string `yaml:"name"`
	// When selects events; the zero Match selects every event.
	When Match `yaml:"when"`
	// Jira creates an issue for each matching event.
	Jira *JiraRoute `yaml:"jira"`
	// Email sends a message for each matching event.
	Email *EmailRoute `yaml:"email"`
	// Sinks names sinks of your own, given to NewServer in
	// ServerOptions.Sinks, by their Name; none by default. Each is 1 to
	// 128 of a-z, 0-9, _, - and ., at most once per route. ParseConfig
	// checks only that shape; NewServer reports a name that no sink of
	// ServerOptions.Sinks has.
	Sinks []string `yaml:"sinks"`
}

// Match selects events. Each non-empty list must contain the event's value
// (compared without regard to case); an empty list matches anything.
type Match struct {
	// Types are event types. Types outside event.KnownTypes are allowed (the
	// sender may add types) but NewServer logs a warning for each, to
	// catch typos.
	Types []string `yaml:"types"`
	// Severities are signal severities, such as high or critical.
	Severities []string `yaml:"severities"`
	// AccountStatuses are account statuses, such as active.
	AccountStatuses []string `yaml:"account_statuses"`
	// Roles match when at least one person in the event has one of them,
	// such as decision_maker.
	Roles []string `yaml:"roles"`
}

// The settings of the built-in sinks are types of their packages, kept here
// under their earlier names; the YAML keys are the packages' own.
type (
	// JiraConfig is the Jira Cloud site the jira routes create issues in:
	// jira.Config. Without it, jira routes write their requests to the
	// outbox instead (dry run).
	JiraConfig = jira.Config
	// JiraRoute says how one route turns an event into a Jira issue:
	// jira.Route.
	JiraRoute = jira.Route
	// SMTPConfig is the mail server the email routes send through:
	// email.SMTPConfig. Without it, email routes write their messages to
	// the outbox instead (dry run).
	SMTPConfig = email.SMTPConfig
	// EmailRoute says how one route turns an event into an email:
	// email.Route.
	EmailRoute = email.Route
)

// Default templates of a route that sets none: those of packages jira and
// email.
const (
	DefaultJiraSummary  = jira.DefaultSummary
	DefaultEmailSubject = email.DefaultSubject
	DefaultEmailText    = email.DefaultText
	DefaultEmailHTML    = email.DefaultHTML
)

// LoadConfig reads the YAML file at path and parses it with ParseConfig,
// expanding ${VAR} from the process environment.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(data, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s:\n%w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses a YAML configuration. First every ${NAME} (NAME made
// of letters, digits and _, not starting with a digit) outside comments is
// replaced by lookupEnv(NAME), escaped for the quoting it appears in; $$
// stands for one $. Then the YAML is decoded strictly (unknown and repeated
// keys are errors) and validated, defaults are applied (see Config), and the
// sinks check their own settings.
//
// All problems are reported at once: the error joins one error per problem
// (see errors.Join), each wrapping ErrInvalidConfig and naming where it is,
// such as "webhooks[0].routes[1].email.to[0]: not an email address". A
// ${NAME} whose variable is not set is reported under the field it fills,
// with its line ("jira.email: environment variable JIRA_EMAIL is not set
// (referenced as ${JIRA_EMAIL}) (line 4)"), or by its line alone when that
// line holds several values (a flow mapping or list). A missing variable
// counts as empty for the later stages (a field it fills is not reported
// again as required), and a key that is unknown or holds a value of the
// wrong type is left out of the decoded configuration, so the remaining
// keys are still checked. Only a YAML syntax error stops before
// validation. No error quotes a secret.
func ParseConfig(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if len(data) > maxConfigBytes {
		return nil, configErr("", fmt.Sprintf("config larger than %d bytes", maxConfigBytes))
	}
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	expanded, errs := expandEnv(data, lookupEnv)
	if len(expanded) > maxConfigBytes {
		// Variables can make the text longer than the file was.
		return nil, joinErrors(append(errs, configErr("", fmt.Sprintf("config larger than %d bytes once ${...} are expanded", maxConfigBytes))))
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, joinErrors(append(errs, configErr("", yamlSyntax(err))))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		errs = append(errs, configErr("", "more than one YAML document"))
	}
	cfg := &Config{}
	failed := map[string]bool{} // paths the decoder could not fill
	if len(doc.Content) > 0 {
		d := &nodeDecoder{}
		d.decode(doc.Content[0], reflect.ValueOf(cfg).Elem(), "")
		errs = namedEnvErrors(errs, d.scalars, failed)
		errs = append(errs, d.errs...)
		for _, p := range d.failed {
			failed[p] = true
		}
		if d.nodes > maxConfigNodes {
			// Decoding stopped part way: validating the rest would
			// report fields that are merely missing.
			return nil, joinErrors(errs)
		}
	}
	cfg.applyDefaults()
	for _, err := range cfg.validate() {
		if !underFailed(errorPath(err), failed) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return cfg, nil
}

// namedEnvErrors gives each ${NAME} problem of errs the path of the field
// on its line, when the line holds exactly one scalar value (a flow list
// or mapping with several keeps the line alone), and marks that path
// failed, so validation does not report the same field again as, say,
// required.
func namedEnvErrors(errs []error, scalars map[int][]string, failed map[string]bool) []error {
	for i, err := range errs {
		ce, ok := err.(*configError)
		if !ok || ce.line == 0 || len(scalars[ce.line]) != 1 || scalars[ce.line][0] == "" {
			continue
		}
		path := scalars[ce.line][0]
		_, msg, _ := strings.Cut(ce.msg, ": ")
		errs[i] = configErr(path, msg+" (line "+strconv.Itoa(ce.line)+")")
		failed[path] = true
	}
	return errs
}

// errorPath is the config path a validation error names.
func errorPath(err error) string {
	var ce *configError
	if errors.As(err, &ce) {
		return ce.path
	}
	path, _, _ := strings.Cut(err.Error(), ": ")
	return path
}

// underFailed reports whether path is one of failed or inside one, so
// validation does not report again a field that could not be decoded. It
// looks up each enclosing path of path, so its cost does not grow with the
// number of failed paths.
func underFailed(path string, failed map[string]bool) bool {
	if len(failed) == 0 {
		return false
	}
	for i := 1; i <= len(path); i++ {
		if i == len(path) || path[i] == '.' || path[i] == '[' {
			if failed[path[:i]] {
				return true
			}
		}
	}
	return false
}

// maxReportedErrors bounds the errors joined into one, so a hostile file
// cannot produce an error message much larger than itself.
const maxReportedErrors = 100

func joinErrors(errs []error) error {
	if len(errs) > maxReportedErrors {
		more := len(errs) - maxReportedErrors
		errs = append(errs[:maxReportedErrors:maxReportedErrors], configErr("", fmt.Sprintf("… and %d more problems", more)))
	}
	return errors.Join(errs...)
}

// DefaultConfig is the configuration of `stairhook serve` without a config
// file: listen on addr, one webhook "staircase" signed with secret (the
// whsec_ text), every event routed to a jira and an email route. With no
// jira or smtp section both are dry-run sinks writing into outbox. Empty
// addr and outbox mean the defaults. Check the secret with
// verify.ParseSecret first: NewServer rejects an invalid one.
func DefaultConfig(secret, addr, outbox string) *Config {
	cfg := &Config{
		Listen: addr,
		Outbox: outbox,
		Webhooks: []WebhookConfig{{
			Name:    "staircase",
			Secrets: []SecretConfig{{Label: "default", Secret: secret}},
			Routes: []RouteConfig{
				{Name: "jira", Jira: &JiraRoute{Project: "CS", IssueType: "Task", Labels: []string{"staircase"}}},
				{Name: "email", Email: &EmailRoute{To: []string{"csm@example.com"}}},
			},
		}},
	}
	cfg.applyDefaults()
	return cfg
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Outbox == "" {
		c.Outbox = DefaultOutbox
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
}

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

	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "must be host:port, such as 127.0.0.1:8080")
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || strings.ContainsAny(host, " /") {
		bad("listen", "must be host:port with a port from 0 to 65535")
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
		errs = append(errs, w.validate(p)...)
	}
	return errs
}

func (w *WebhookConfig) validate(p string) []error {
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
		if r.Jira == nil && r.Email == nil && len(r.Sinks) == 0 {
			bad(rp, "needs at least one sink (jira, email or sinks)")
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

// quoted matches the parts of a YAML parser message that quote the input
// (an anchor name, a character), which could be a misplaced secret.
var quoted = regexp.MustCompile("'[^']*'|\"[^\"]*\"|`[^`]*`")

// yamlSyntax keeps the line and the kind of a YAML syntax error, without
// the input text the parser may quote.
func yamlSyntax(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return "YAML syntax: " + quoted.ReplaceAllString(msg, "(not shown)")
}

// shownKey is the shape of a key that errors may quote: the snake_case of
// configuration keys, or anything short. Longer keys of other shapes could
// be a secret expanded in the wrong place.
var shownKey = regexp.MustCompile(`^(?:[a-z0-9_-]{1,40}|[A-Za-z0-9_-]{1,16})$`)

// maxEnvName bounds the NAME of a ${NAME} reference.
const maxEnvName = 256

// envName is the shape of a ${NAME} reference.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandEnv replaces ${NAME} references outside comments, line by line. A
// value goes into the YAML text escaped for where the reference stands: in
// a double-quoted scalar with YAML escapes, in a single-quoted one with each
// quote doubled, and outside quotes only when it holds no character YAML
// would read as structure (otherwise the error asks for double quotes). So
// a secret can never add a key or end a string early. Quotes are tracked
// per line: a reference on the continuation line of a multi-line quoted
// scalar is treated as unquoted, the strictest case.
func expandEnv(data []byte, lookup func(string) (string, bool)) ([]byte, []error) {
	if !bytes.Contains(data, []byte("$")) {
		return data, nil
	}
	var out bytes.Buffer
	out.Grow(len(data))
	var errs []error
	lines := bytes.SplitAfter(data, []byte("\n"))
	for n, line := range lines {
		lineNo := n + 1
		bad := func(msg string) {
			errs = append(errs, &configError{msg: "line " + strconv.Itoa(lineNo) + ": " + msg, line: lineNo})
		}
		var quote byte // 0, '"' or '\''
		lastSig := byte(0)
		for i := 0; i < len(line); i++ {
			c := line[i]
			switch {
			case quote == 0 && c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
				out.Write(line[i:])
				i = len(line)
				continue
			case c == '$' && i+1 < len(line) && line[i+1] == '$':
				out.WriteByte('$')
				i++
				continue
			case c == '$' && i+1 < len(line) && line[i+1] == '{':
				// NAME is bounded, so a line of unclosed "${" costs
				// linear time.
				end := bytes.IndexByte(line[i+2:min(len(line), i+3+maxEnvName)], '}')
				if end < 0 || !envName.Match(line[i+2:i+2+end]) {
					bad("malformed ${...} reference: write ${NAME} with NAME of letters, digits and _, or $$ for a literal $")
					out.WriteByte(c)
					continue
				}
				name := string(line[i+2 : i+2+end])
				i += 2 + end
				lastSig = '}'
				val, ok := lookup(name)
				if !ok {
					bad("environment variable " + name + " is not set (referenced as ${" + name + "})")
					continue
				}
				esc, msg := escapeYAML(val, quote)
				if msg != "" {
					bad("the value of ${" + name + "} " + msg)
					continue
				}
				out.WriteString(esc)
				continue
			}
			switch {
			case quote == '"' && c == '\\' && i+1 < len(line):
				out.WriteByte(c)
				i++
				c = line[i]
			case quote == '"' && c == '"', quote == '\'' && c == '\'' && (i+1 >= len(line) || line[i+1] != '\''):
				quote = 0
			case quote == '\'' && c == '\'':
				out.WriteByte(c) // '' inside single quotes
				i++
				c = line[i]
			case quote == 0 && (c == '"' || c == '\'') && startsScalar(lastSig):
				quote = c
			}
			out.WriteByte(c)
			if c != ' ' && c != '\t' {
				lastSig = c
			}
		}
	}
	return out.Bytes(), errs
}

// startsScalar reports whether a quote after the significant character
// prev (0 at the start of a line) opens a quoted scalar.
func startsScalar(prev byte) bool {
	return prev == 0 || strings.IndexByte(":-[{,?", prev) >= 0
}

// escapeYAML escapes v for the quoting context quote, or explains why it
// cannot go there.
func escapeYAML(v string, quote byte) (string, string) {
	switch quote {
	case '"':
		var b strings.Builder
		for _, r := range v {
			switch {
			case r == '"' || r == '\\':
				b.WriteByte('\\')
				b.WriteRune(r)
			case r < 0x20 || r == 0x7f:
				fmt.Fprintf(&b, "\\x%02x", r)
			case r == utf8.RuneError:
				return "", "is not valid UTF-8"
			default:
				b.WriteRune(r)
			}
		}
		return b.String(), ""
	case '\'':
		if strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			return "", "contains a line break or control character; put the reference in double quotes"
		}
		return strings.ReplaceAll(v, "'", "''"), ""
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("._~+/=:-", c) >= 0
		if !ok || (i == 0 && c == ':') {
			return "", "has characters YAML would misread outside quotes; write \"${NAME}\" in double quotes"
		}
	}
	return v, ""
}

// nodeDecoder decodes a YAML node tree into a Go value strictly, collecting
// one error per problem with its path, never quoting a scalar's text (a
// secret may sit in the wrong key).
type nodeDecoder struct {
	errs   []error
	failed []string // the paths of errs, which keep their zero value
	nodes  int
	// scalars holds the paths of the scalar values on each line, so a
	// ${NAME} problem, known by its line, can name its field.
	scalars map[int][]string
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	timeType        = reflect.TypeFor[time.Time]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

func (d *nodeDecoder) bad(path, msg string) {
	d.errs = append(d.errs, configErr(displayConfigPath(path), msg))
	d.failed = append(d.failed, path)
}

func displayConfigPath(p string) string {
	if p == "" {
		return "(top level)"
	}
	return p
}

func (d *nodeDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.nodes++
	if d.nodes > maxConfigNodes {
		if d.nodes == maxConfigNodes+1 {
			d.bad(path, fmt.Sprintf("more than %d YAML nodes (aliases expanded)", maxConfigNodes))
		}
		return
	}
	if n.Kind == yaml.ScalarNode {
		if d.scalars == nil {
			d.scalars = map[int][]string{}
		}
		d.scalars[n.Line] = append(d.scalars[n.Line], path)
	}
	if n.Kind == yaml.AliasNode {
		d.decode(n.Alias, v, path)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.bad(path, "invalid value")
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		if v.Type() == timeType {
			d.scalar(n, v, path, "a date-time such as 2026-12-31T00:00:00Z")
			return
		}
		d.mapping(n, path, func(key string, val *yaml.Node, kp string) {
			idx, ok := yamlFields(v.Type())[key]
			if !ok {
				d.bad(kp, "unknown key")
				return
			}
			d.decode(val, v.FieldByIndex(idx), kp)
		})
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			d.bad(path, "unsupported map type")
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		d.mapping(n, path, func(key string, val *yaml.Node, kp string) {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, kp)
			v.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), e)
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.bad(path, "expected a list, found "+kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
		v.Set(s)
	case reflect.String:
		d.scalar(n, v, path, "a string")
	case reflect.Bool:
		d.scalar(n, v, path, "true or false")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Type() == durationType {
			d.scalar(n, v, path, "a duration such as 30s or 5m")
			return
		}
		d.scalar(n, v, path, "an integer")
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		d.scalar(n, v, path, "a non-negative integer")
	case reflect.Float32, reflect.Float64:
		d.scalar(n, v, path, "a number")
	default:
		d.bad(path, "unsupported type "+v.Type().String())
	}
}

// mapping walks a mapping node, rejecting repeated keys and merge keys.
func (d *nodeDecoder) mapping(n *yaml.Node, path string, each func(key string, val *yaml.Node, keyPath string)) {
	if n.Kind != yaml.MappingNode {
		d.bad(path, "expected a mapping (key: value), found "+kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.bad(path, "a key must be a plain string")
			continue
		}
		key := k.Value
		if !shownKey.MatchString(key) {
			// A long or odd key may be a misplaced secret: do not echo it.
			key = "(key not shown)"
		}
		kp := key
		if path != "" {
			kp = path + "." + key
		}
		if k.ShortTag() == "!!merge" {
			d.bad(kp, "merge keys (<<) are not supported")
			continue
		}
		if seen[k.Value] {
			d.bad(kp, "repeated key")
			continue
		}
		seen[k.Value] = true
		each(k.Value, val, kp)
	}
}

// scalar decodes a scalar with yaml's own rules and replaces its error,
// which would quote the text, with what was expected.
func (d *nodeDecoder) scalar(n *yaml.Node, v reflect.Value, path, want string) {
	if n.Kind != yaml.ScalarNode {
		d.bad(path, "expected "+want+", found "+kindName(n))
		return
	}
	p := reflect.New(v.Type())
	if err := n.Decode(p.Interface()); err != nil {
		d.bad(path, "expected "+want)
		return
	}
	v.Set(p.Elem())
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a single value"
}

// yamlFields maps the yaml key of each field of struct type t (inline
// structs flattened) to its index.
func yamlFields(t reflect.Type) map[string][]int {
	m := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			for k, idx := range yamlFields(f.Type) {
				m[k] = append([]int{i}, idx...)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = []int{i}
	}
	return m
}
