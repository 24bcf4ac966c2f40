package receiver

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/stairhook/stairhook/receiver/console"
	"github.com/stairhook/stairhook/receiver/dryrun"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/receiver/forward"
	"github.com/stairhook/stairhook/receiver/queue"
	"github.com/stairhook/stairhook/verify"
)

// Defaults of ServerOptions.
const (
	// DefaultDeliveryTimeout bounds the sinks of one delivery together,
	// below the sender's 15 s request timeout.
	DefaultDeliveryTimeout = 10 * time.Second
	// DefaultRetryAfter is the Retry-After, in seconds, of a 503 when no
	// sink asked for a particular delay.
	DefaultRetryAfter = 5
	// maxRetryAfter caps the Retry-After passed on from a sink.
	maxRetryAfter = 3600
)

// ServerOptions configures NewServer. The zero value is ready to use.
type ServerOptions struct {
	// Logger receives one line per delivery and per rejected request.
	// Default value is a log/slog JSON handler on standard error.
	Logger *slog.Logger
	// HTTPClient is used by the Jira, Slack, Teams and forward sinks
	// (through copies of it, whose transport traces each request). Default
	// value is a client without an overall timeout: each Jira request is
	// bounded by JiraConfig.Timeout and the delivery's deadline.
	HTTPClient *http.Client
	// TracerProvider makes the receiver's spans: one trace per event,
	// "stairhook.accept" for the webhook request, under it a
	// "stairhook.deliver" per attempt of each sink (its parent's context
	// is kept with the job, so this holds across instances) and under
	// that a client span per HTTP request of the sink. Spans carry no
	// secret, signature, body or URL path; only the forward sink's
	// requests carry a traceparent header. Default value is
	// otel.GetTracerProvider(), which records nothing unless the program
	// set one; `stairhook serve` sets one up when
	// OTEL_EXPORTER_OTLP_ENDPOINT is set.
	TracerProvider trace.TracerProvider
	// Store records the signed ids for the verify middleware. Default value
	// on the queued path is the server's database: an id is done once its
	// event is recorded, in the same transaction as its jobs, and a
	// reservation lives in the process while its request runs (a Store set
	// here replaces that, for the ids only).
	//
	// In inline mode it also records the done sinks. Default value there
	// is the Redis store of Config.Store.Redis when set, else
	// two in-memory stores for one process only (see Config.Retention): a
	// verify.NewMemoryStore with its defaults for the ids, which answers
	// 503 when full rather than forget an id, and one with EvictDone for
	// the done sinks, which forgets the oldest when full rather than
	// refuse events. A Store set here holds both, as Redis does: it must
	// hold the done sinks for Config.Retention (days) beside the ids, so a
	// bounded in-process store set here fills up and answers 503; use a
	// shared store such as verify/redisstore.
	Store verify.Store
	// Now returns the current time, for signature timestamps and
	// dead-letter records. Default value is time.Now.
	Now func() time.Time
	// DeliveryTimeout bounds all the sinks of one delivery together, in
	// inline mode. Default value is DefaultDeliveryTimeout (10 s), below
	// the sender's 15 s. (On the queued path each attempt has
	// DeliveryConfig.AttemptTimeout.)
	DeliveryTimeout time.Duration
	// ShutdownTimeout bounds how long ListenAndServe and Serve wait, once
	// their context is done, for the requests in flight and then for the
	// attempts running (which are then cancelled and stay queued). Default
	// value is DeliveryTimeout plus 5 s.
	ShutdownTimeout time.Duration
	// Sinks are sinks of your own (a chat message, a pager, a queue), each
	// known by its Name, which routes list in RouteConfig.Sinks. Default
	// value is none. NewServer rejects a nil sink, a name that is not 1 to
	// 128 of a-z, 0-9, _, - and ., two sinks of one name, a name a sink
	// built from the configuration has ("<webhook>.<route>.jira" or
	// ".email", for every route) and a route naming a sink that is not
	// here. Name is read once, by NewServer. One sink may serve several
	// routes and webhooks: it has one job per event whichever routes
	// select the event (see Sink), and Deliver may be called for
	// different events at the same time.
	Sinks []Sink

	// Inline runs the sinks inside the sender's request, as the AWS Lambda
	// bootstrap does (it has no process that outlives a request to work a
	// queue): no database, the ids and done sinks in Config.Store.Redis or
	// in memory, and a rejection answered 422 with a line in the outbox's
	// dead-letter file. Default value is false: the durable inbox of the
	// package documentation, in the database of Config.Store.
	Inline bool
	// Role is what this instance does on the queued path: RoleAll (the
	// default) answers webhooks and works the queue, RoleAccept only
	// answers webhooks, RoleWork only works the queue (its webhooks answer
	// 503 not_accepting). Instances of one Postgres database share the
	// work whatever their roles.
	Role Role

	// pollInterval is the queue's poll for new jobs; tests shorten it.
	pollInterval time.Duration

	// idEntries and ledgerEntries are the capacities of the in-memory
	// stores of ids and of done sinks. Default value is
	// verify.DefaultMemoryStoreEntries; tests lower them.
	idEntries, ledgerEntries int
}

// Role is what an instance does on the queued path; see ServerOptions.Role.
type Role string

// Roles of ServerOptions.Role and `stairhook serve --role`.
const (
	RoleAll    Role = "all"
	RoleAccept Role = "accept"
	RoleWork   Role = "work"
)

// Server receives signed events on POST /webhooks/{name} and delivers each
// to the sinks of the routes it matches, at most once per sink (see the
// package documentation). It also answers GET /healthz. Create it with
// NewServer; it is safe for concurrent use.
type Server struct {
	listen          string
	log             *slog.Logger
	now             func() time.Time
	deliveryTimeout time.Duration
	shutdownTimeout time.Duration
	tracer          trace.Tracer
	hooks           map[string]*webhook
	router          *mux.Router
	ledger          ledger
	deadLetters     *deadLetters
	ping            func(context.Context) error // nil when the store cannot be checked
	memIDs          *verify.MemoryStore         // the in-memory id store, if the server made it
	closeStore      func() error
	queue           *queue.Queue // nil in inline mode
	role            Role
	draining        atomic.Bool // shutting down: new webhooks are answered 503
	closeQueue      sync.Once
	inFlight        *inFlight    // the ids being accepted, on the queued path
	unknown         http.Handler // answers a webhook name that is not configured
	maxConns        int          // Config.Limits.MaxConnections
	bodyBudget      *verify.BodyBudget

	// The operator's view, on the queued path (nil-safe when absent).
	metrics        *console.Metrics
	recorder       *queue.Recorder
	registry       *prometheus.Registry
	console        *console.Console
	adminListen    string
	adminToken     string
	adminGenerated bool
	signKeys       map[string]verify.Secret // each webhook's first key, for test notifications
	publicAddr     atomic.Value             // string: where Serve listens, for test notifications
	testClient     *http.Client

	mu      sync.Mutex
	servers map[*http.Server]struct{}
	closed  bool
}

// webhook is one configured webhook: its verify middleware in front of the
// delivery handler.
type webhook struct {
	name    string
	routes  []route
	sinks   map[string]Sink // by name, for the queue's workers
	handler http.Handler
}

// NewServer validates cfg (as ParseConfig does; a Config built in code
// gets the same checks and defaults) and builds the verifiers, the store
// and the sinks. It does not listen: see ListenAndServe, Serve and Handler.
func NewServer(cfg *Config, opts ServerOptions) (*Server, error) {
	if cfg == nil {
		return nil, configErr("", "no configuration")
	}
	c := *cfg
	c.applyDefaults()
	errs := c.validate()
	custom, unused, serrs := customSinks(&c, opts.Sinks)
	if errs = append(errs, serrs...); len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	// The outbox holds the dry runs and an earlier version's dead-letter
	// file, customer data either way: refuse one others can write to.
	if err := dryrun.CheckOutbox(c.Outbox); err != nil {
		return nil, configErr("outbox", err.Error())
	}
	s := &Server{
		listen:          c.Listen,
		log:             opts.Logger,
		now:             opts.Now,
		deliveryTimeout: opts.DeliveryTimeout,
		shutdownTimeout: opts.ShutdownTimeout,
		hooks:           map[string]*webhook{},
		deadLetters:     &deadLetters{path: filepath.Join(c.Outbox, DeadLetterFile)},
		servers:         map[*http.Server]struct{}{},
		maxConns:        c.Limits.MaxConnections,
		signKeys:        map[string]verify.Secret{},
		testClient:      &http.Client{Timeout: 30 * time.Second},
	}
	if s.log == nil {
		s.log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.deliveryTimeout <= 0 {
		s.deliveryTimeout = DefaultDeliveryTimeout
	}
	if s.shutdownTimeout <= 0 {
		s.shutdownTimeout = s.deliveryTimeout + 5*time.Second
	}
	tp := opts.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	s.tracer = tp.Tracer(tracerName)
	clients := sinkClients{
		others:  s.tracedClient(opts.HTTPClient, false),
		forward: s.tracedClient(opts.HTTPClient, true),
	}

	if s.role = opts.Role; s.role == "" {
		s.role = RoleAll
	}
	var store verify.Store
	var err error
	// One budget for every webhook and the decoy: the listener's bodies
	// are bounded together.
	if s.bodyBudget, err = verify.NewBodyBudget(c.Limits.MaxBodyBytesInFlight); err != nil {
		return nil, configErr("limits.max_body_bytes_in_flight", err.Error())
	}
	if opts.Inline {
		store, err = s.inlineStores(&c, opts)
	} else {
		store, err = s.openQueue(&c, opts)
	}
	if err != nil {
		return nil, err
	}
	for _, name := range unused {
		s.log.Warn("a sink of ServerOptions.Sinks is named by no route", "sink", name)
	}
	for _, wc := range c.Webhooks {
		h, err := s.newWebhook(&c, wc, store, clients, custom, opts.Inline)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.hooks[wc.Name] = h
	}
	if s.unknown, err = s.newDecoy(); err != nil {
		s.Close()
		return nil, err
	}
	if s.queue != nil {
		if err := s.newAdmin(&c); err != nil {
			s.Close()
			return nil, err
		}
	}

	s.router = s.newRouter()
	return s, nil
}

// newDecoy returns the handler of webhook names that are not configured:
// the verify middleware with a random key that no sender has, so an
// unknown name is answered exactly as a request signed with a wrong or no
// secret is answered by a real webhook. Answering it differently (a 404)
// would let anyone list the configured names.
func (s *Server) newDecoy() (http.Handler, error) {
	sec, err := verify.NewSecret()
	if err != nil {
		return nil, err
	}
	v, err := verify.NewVerifier(verify.Options{
		Keys: []verify.Key{{Label: "decoy", Secret: sec}},
		Now:  s.now,
		// It never verifies a request, so no id is ever reserved.
		Store:      verify.NewMemoryStore(verify.MemoryStoreOptions{MaxEntries: 1}),
		BodyBudget: s.bodyBudget,
		OnError:    func(r *http.Request, err error) { s.logRejected(r, mux.Vars(r)["name"], true, err) },
	})
	if err != nil {
		return nil, err
	}
	return v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		// Unreachable without the random secret; fail closed all the same.
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
	})), nil
}

// logRejected logs a request the middleware refused; unknown marks a
// webhook name that is not configured (the name is the sender's text,
// so it is clipped).
func (s *Server) logRejected(r *http.Request, webhook string, unknown bool, err error) {
	attrs := []slog.Attr{
		slog.String("webhook", clipText(webhook, 128)),
		slog.String("reason", err.Error()),
		slog.String("id", clipText(r.Header.Get("X-Staircase-Id"), 256)),
		slog.String("remote", r.RemoteAddr),
	}
	if unknown {
		attrs = append(attrs, slog.Bool("unknown_webhook", true))
	}
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "request rejected", traceLog(r.Context(), attrs)...)
	code, status := verify.Reason(err)
	traceAnswer(r.Context(), console.OutcomeRefused, code, status)
	s.refused(r, webhook, status, code, err.Error())
}

// sinkClients are the HTTP clients of the built-in sinks; see tracedClient.
type sinkClients struct {
	others  *http.Client // Jira, Slack, Teams
	forward *http.Client // also sends the traceparent
}

func (s *Server) newWebhook(c *Config, wc WebhookConfig, store verify.Store, clients sinkClients, custom map[string]Sink, inline bool) (*webhook, error) {
	keys := make([]verify.Key, 0, len(wc.Secrets))
	for i, sc := range wc.Secrets {
		sec, err := verify.ParseSecret(sc.Secret)
		if err != nil { // validate checked it; keep the text out of errors anyway
			return nil, configErr(fmt.Sprintf("webhook %s: secrets[%d].secret", wc.Name, i), "not a whsec_ secret")
		}
		keys = append(keys, verify.Key{Label: secretLabel(sc, i), Secret: sec, Expires: sc.Expires})
		if i == 0 {
			s.signKeys[wc.Name] = sec
		}
	}
	name := wc.Name
	v, err := verify.NewVerifier(verify.Options{
		Keys:       keys,
		Tolerance:  wc.Tolerance,
		Now:        s.now,
		Store:      s.idsOf(name, store),
		BodyBudget: s.bodyBudget,
		OnError:    func(r *http.Request, err error) { s.logRejected(r, name, false, err) },
		OnDuplicate: func(r *http.Request, res verify.Result, state verify.State) {
			if state == verify.StateDone {
				traceAnswer(r.Context(), console.OutcomeDuplicate, "", http.StatusOK)
				s.metrics.Duplicate(name)
				s.keyUsed(name, res.KeyLabel)
				s.log.LogAttrs(r.Context(), slog.LevelInfo, "delivery",
					slog.String("webhook", name),
					slog.String("id", clipText(res.ID, 256)),
					slog.String("outcome", "duplicate"),
					slog.Int("status", http.StatusOK))
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", name, err)
	}
	h := &webhook{name: name}
	for j, rc := range wc.Routes {
		rt := route{name: routeName(rc, j), match: rc.When}
		for _, t := range rc.When.Types {
			if !slices.Contains(event.KnownTypes(), t) {
				s.log.Warn("route matches a type that is not documented; check the spelling",
					"webhook", name, "route", rt.name, "type", t)
			}
		}
		prefix := name + "." + rt.name + "."
		if rc.Jira != nil {
			sink, err := newJiraSink(prefix+"jira", c, *rc.Jira, clients.others, s.log)
			if err != nil {
				return nil, fmt.Errorf("webhook %s, route %s, jira: %w", name, rt.name, err)
			}
			rt.sinks = append(rt.sinks, sink)
		}
		if rc.Email != nil {
			sink, err := newEmailSink(prefix+"email", c, *rc.Email, s.log)
			if err != nil {
				return nil, fmt.Errorf("webhook %s, route %s, email: %w", name, rt.name, err)
			}
			rt.sinks = append(rt.sinks, sink)
		}
		if rc.Slack != nil {
			sink, err := newSlackSink(prefix+"slack", c, *rc.Slack, clients.others, s.log)
			if err != nil {
				return nil, fmt.Errorf("webhook %s, route %s, slack: %w", name, rt.name, err)
			}
			rt.sinks = append(rt.sinks, sink)
		}
		if rc.Teams != nil {
			sink, err := newTeamsSink(prefix+"teams", c, *rc.Teams, clients.others, s.log)
			if err != nil {
				return nil, fmt.Errorf("webhook %s, route %s, teams: %w", name, rt.name, err)
			}
			rt.sinks = append(rt.sinks, sink)
		}
		if rc.Forward != nil {
			sink, err := asSink(forward.New(prefix+"forward", *rc.Forward, clients.forward, s.log))
			if err != nil {
				return nil, fmt.Errorf("webhook %s, route %s, forward: %w", name, rt.name, err)
			}
			rt.sinks = append(rt.sinks, sink)
		}
		for _, name := range rc.Sinks {
			rt.sinks = append(rt.sinks, custom[name])
		}
		h.routes = append(h.routes, rt)
	}
	h.sinks = map[string]Sink{}
	for _, rt := range h.routes {
		for _, sink := range rt.sinks {
			h.sinks[sink.Name()] = sink
		}
	}
	next := s.accept
	if inline {
		next = s.deliver
	}
	h.handler = s.traceRequests(name, v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next(w, r, h)
	})))
	return h, nil
}
