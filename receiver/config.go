package receiver

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stairhook/stairhook/receiver/email"
	"github.com/stairhook/stairhook/receiver/forward"
	"github.com/stairhook/stairhook/receiver/jira"
	"github.com/stairhook/stairhook/receiver/queue"
	"github.com/stairhook/stairhook/receiver/slack"
	"github.com/stairhook/stairhook/receiver/teams"
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
	// Limits bound what the clients of the webhook listener can hold at
	// once, signed or not.
	Limits LimitsConfig `yaml:"limits"`
	// Admin is the operator console's listener (pages, actions and
	// /metrics), apart from the webhooks' one. Queued mode only.
	Admin AdminConfig `yaml:"admin"`
	// Jira is the Jira Cloud site; nil makes every jira route a dry run.
	Jira *JiraConfig `yaml:"jira"`
	// SMTP is the mail server; nil makes every email route a dry run.
	SMTP *SMTPConfig `yaml:"smtp"`
	// Slack is the Slack connection (an incoming webhook or a bot token);
	// nil makes every slack route a dry run.
	Slack *SlackConfig `yaml:"slack"`
	// Teams is the Microsoft Teams Workflows webhook; nil makes every
	// teams route a dry run.
	Teams *TeamsConfig `yaml:"teams"`
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

// LimitsConfig bounds what the clients of the webhook listener can hold at
// once, before any of them is authenticated (see SPEC.md, "What an
// unauthenticated client can cost us"). Zero values take the defaults.
type LimitsConfig struct {
	// MaxConnections is how many connections the listener holds open at
	// once; more wait in the kernel's accept queue. Default
	// DefaultMaxConnections.
	MaxConnections int `yaml:"max_connections"`
	// MaxBodyBytesInFlight bounds the memory of the bodies being read at
	// once: a request takes what its Content-Length declares (1 MiB
	// without one) before its body is read and gives it back once it is
	// read; a request that finds too little left is answered 503 "busy"
	// with Retry-After at once. Default
	// verify.DefaultMaxBodyBytesInFlight (32 MiB); at least 1 MiB, the
	// body cap.
	MaxBodyBytesInFlight int64 `yaml:"max_body_bytes_in_flight"`
}

// AdminConfig is the listener of the operator console: its pages, actions
// and Prometheus /metrics, served apart from the webhooks so that they are
// never on the public path by accident. Every route requires Token.
type AdminConfig struct {
	// Listen is the admin listener's host:port, or AdminOff for none.
	// Default DefaultAdminListen (loopback only).
	Listen string `yaml:"listen"`
	// Token is the admin token, at least 16 characters: a login form
	// takes it (and sets a session cookie), scripts and Prometheus send
	// it as Authorization: Bearer. Default value is empty: NewServer
	// generates one (see Server.AdminToken), which stairhook serve prints
	// once at start.
	Token string `yaml:"token"`
}

// DefaultAdminListen is admin.listen when it is empty, and AdminOff the
// value that turns the admin listener off.
const (
	DefaultAdminListen = "127.0.0.1:8081"
	AdminOff           = "off"
)

// DefaultMaxConnections is limits.max_connections when it is zero.
const DefaultMaxConnections = 1024

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

// RouteConfig sends the events it matches to its sinks: jira, email,
// slack, teams, forward, then Sinks in their order. It needs at least one.
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
	// Slack posts a Block Kit message for each matching event (to the
	// route's channel with a bot token).
	Slack *SlackRoute `yaml:"slack"`
	// Teams posts an Adaptive Card for each matching event (to the route's
	// webhook_url, else the teams section's).
	Teams *TeamsRoute `yaml:"teams"`
	// Forward posts each matching event, byte for byte and signed with the
	// destination's own secret, to a URL (package forward); it has no dry
	// run.
	Forward *ForwardRoute `yaml:"forward"`
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
	// ForwardRoute says where a route forwards its events, and with which
	// secret it signs them: forward.Route.
	ForwardRoute = forward.Route
	// SlackConfig is the Slack connection the slack routes post through:
	// slack.Config. Without it, slack routes write their messages to the
	// outbox instead (dry run).
	SlackConfig = slack.Config
	// SlackRoute says how one route turns an event into a Slack message:
	// slack.Route.
	SlackRoute = slack.Route
	// TeamsConfig is the Workflows webhook the teams routes post to:
	// teams.Config. Without it, teams routes write their cards to the
	// outbox instead (dry run).
	TeamsConfig = teams.Config
	// TeamsRoute says where one route posts its cards: teams.Route.
	TeamsRoute = teams.Route
)

// Default templates of a route that sets none: those of packages jira,
// email and slack.
const (
	DefaultJiraSummary  = jira.DefaultSummary
	DefaultEmailSubject = email.DefaultSubject
	DefaultEmailText    = email.DefaultText
	DefaultEmailHTML    = email.DefaultHTML
	DefaultSlackTitle   = slack.DefaultTitle
	DefaultSlackText    = slack.DefaultText
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
		return nil, joinErrors(append(errs, configErr("", yamlSyntax(err, expanded))))
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
	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	}
	if c.Limits.MaxConnections == 0 {
		c.Limits.MaxConnections = DefaultMaxConnections
	}
	if c.Limits.MaxBodyBytesInFlight == 0 {
		c.Limits.MaxBodyBytesInFlight = verify.DefaultMaxBodyBytesInFlight
	}
}
