package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"

	"github.com/stairhook/stairhook/receiver/event"
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
	// HTTPClient is used by the Jira sinks. Default value is a client
	// without an overall timeout: each Jira request is bounded by
	// JiraConfig.Timeout and the delivery's deadline.
	HTTPClient *http.Client
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
	inFlight        *inFlight // the ids being accepted, on the queued path

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
	s := &Server{
		listen:          c.Listen,
		log:             opts.Logger,
		now:             opts.Now,
		deliveryTimeout: opts.DeliveryTimeout,
		shutdownTimeout: opts.ShutdownTimeout,
		hooks:           map[string]*webhook{},
		deadLetters:     &deadLetters{path: filepath.Join(c.Outbox, DeadLetterFile)},
		servers:         map[*http.Server]struct{}{},
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
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{}
	}

	if s.role = opts.Role; s.role == "" {
		s.role = RoleAll
	}
	var store verify.Store
	var err error
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
		h, err := s.newWebhook(&c, wc, store, client, custom, opts.Inline)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.hooks[wc.Name] = h
	}

	r := mux.NewRouter()
	r.HandleFunc("/webhooks/{name}", s.serveWebhook).Methods(http.MethodPost)
	r.HandleFunc("/healthz", s.serveHealth).Methods(http.MethodGet, http.MethodHead)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: webhooks are served at POST /webhooks/{name}")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// HTTP requires a 405 to list the allowed methods, as the verify
		// middleware's own 405 does.
		w.Header().Set("Allow", allowedMethods(r, req))
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
	})
	s.router = r
	return s, nil
}

// allowedMethods returns the Allow header for req: the methods of every
// route of r whose path matches it.
func allowedMethods(r *mux.Router, req *http.Request) string {
	var methods []string
	_ = r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		var m mux.RouteMatch
		if !route.Match(req, &m) && errors.Is(m.MatchErr, mux.ErrMethodMismatch) {
			ms, _ := route.GetMethods()
			for _, method := range ms {
				if !slices.Contains(methods, method) {
					methods = append(methods, method)
				}
			}
		}
		return nil
	})
	return strings.Join(methods, ", ")
}

// customSinks checks the sinks of ServerOptions.Sinks and the names routes
// give in RouteConfig.Sinks against each other. It returns the sinks by
// name, each under the name read now, and the names no route uses.
func customSinks(c *Config, sinks []Sink) (map[string]Sink, []string, []error) {
	var errs []error
	bad := func(path, msg string) { errs = append(errs, configErr(path, msg)) }
	builtin := map[string]bool{}
	for _, w := range c.Webhooks {
		for j, r := range w.Routes {
			prefix := w.Name + "." + routeName(r, j) + "."
			builtin[prefix+"jira"], builtin[prefix+"email"] = true, true
		}
	}
	byName := map[string]Sink{}
	index := map[string]int{}
	var order []string
	for i, sink := range sinks {
		p := "ServerOptions.Sinks[" + strconv.Itoa(i) + "]"
		if sink == nil {
			bad(p, "is nil")
			continue
		}
		name, ok := sinkNameOf(sink)
		switch {
		case !ok:
			bad(p, "its Name method panicked (a nil pointer?)")
		case !sinkName.MatchString(name):
			// Not quoted: it may be anything.
			bad(p+".Name()", sinkNameRule)
		case builtin[name]:
			bad(p+".Name()", fmt.Sprintf("%q is the name of a sink built from the configuration (<webhook>.<route>.jira or .email)", name))
		case byName[name] != nil:
			bad(p+".Name()", fmt.Sprintf("%q is also the name of ServerOptions.Sinks[%d]", name, index[name]))
		default:
			byName[name], index[name] = namedSink{name: name, Sink: sink}, i
			order = append(order, name)
		}
	}
	used := map[string]bool{}
	for i, w := range c.Webhooks {
		for j, r := range w.Routes {
			for k, name := range r.Sinks {
				used[name] = true
				if sinkName.MatchString(name) && byName[name] == nil { // a bad shape is validate's to report
					bad(fmt.Sprintf("webhooks[%d].routes[%d].sinks[%d]", i, j, k), fmt.Sprintf("no sink named %q in ServerOptions.Sinks", name))
				}
			}
		}
	}
	var unused []string
	for _, name := range order {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	return byName, unused, errs
}

// sinkNameOf calls sink.Name, reporting a panic as !ok.
func sinkNameOf(sink Sink) (name string, ok bool) {
	defer func() {
		if recover() != nil {
			name, ok = "", false
		}
	}()
	return sink.Name(), true
}

// namedSink is a sink of ServerOptions.Sinks under the name NewServer
// read, so a Name that changes later cannot split its ledger records.
type namedSink struct {
	name string
	Sink
}

func (n namedSink) Name() string { return n.name }

func (s *Server) newWebhook(c *Config, wc WebhookConfig, store verify.Store, client *http.Client, custom map[string]Sink, inline bool) (*webhook, error) {
	keys := make([]verify.Key, 0, len(wc.Secrets))
	for i, sc := range wc.Secrets {
		sec, err := verify.ParseSecret(sc.Secret)
		if err != nil { // validate checked it; keep the text out of errors anyway
			return nil, configErr(fmt.Sprintf("webhook %s: secrets[%d].secret", wc.Name, i), "not a whsec_ secret")
		}
		keys = append(keys, verify.Key{Label: secretLabel(sc, i), Secret: sec, Expires: sc.Expires})
	}
	name := wc.Name
	v, err := verify.NewVerifier(verify.Options{
		Keys:      keys,
		Tolerance: wc.Tolerance,
		Now:       s.now,
		Store:     s.idsOf(name, store),
		OnError: func(r *http.Request, err error) {
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "request rejected",
				slog.String("webhook", name),
				slog.String("reason", err.Error()),
				slog.String("id", clipText(r.Header.Get("X-Staircase-Id"), 256)),
				slog.String("remote", r.RemoteAddr))
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
			sink, err := newJiraSink(prefix+"jira", c, *rc.Jira, client, s.log)
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
	h.handler = v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next(w, r, h)
	}))
	return h, nil
}

// Handler returns the server's routes: POST /webhooks/{name} and
// GET /healthz. Use it to serve from your own http.Server or in tests.
func (s *Server) Handler() http.Handler { return s.router }

// ListenAndServe listens on Config.Listen and serves until ctx is done (see
// Serve).
func (s *Server) ListenAndServe(ctx context.Context) error {
	l, err := net.Listen("tcp", s.listen)
	if err != nil {
		return err
	}
	return s.Serve(ctx, l)
}

// Serve serves on l until ctx is done, then stops accepting, lets in-flight
// deliveries finish within ShutdownTimeout and returns nil; it returns an
// error when they did not finish in time, or when serving fails. After
// Close it returns http.ErrServerClosed.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.router,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      s.deliveryTimeout + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return http.ErrServerClosed
	}
	s.servers[srv] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.servers, srv)
		s.mu.Unlock()
	}()

	working := s.queue != nil && s.role != RoleAccept
	if working {
		if err := s.queue.Start(ctx); err != nil {
			return fmt.Errorf("receiver: start the workers: %w", err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		if working {
			s.stopWorkers()
		}
		return err
	case <-ctx.Done():
	}
	// New webhooks on kept-alive connections are answered 503 from now on;
	// the requests being accepted finish, then the attempts running.
	s.draining.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		srv.Close()
		err = fmt.Errorf("receiver: in-flight requests did not finish within %v: %w", s.shutdownTimeout, err)
	}
	if working {
		// Attempts still running when the shutdown timeout ends are
		// cancelled and left queued, for the next start or another
		// instance: not an error.
		wctx, wcancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
		defer wcancel()
		if werr := s.queue.Stop(wctx); werr != nil {
			s.log.Warn("workers stopped with attempts cut short; their jobs stay queued", "error", werr.Error())
		}
	}
	return err
}

// Close stops every Serve at once, without waiting for in-flight
// deliveries, and closes the Redis client the server opened, if any.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	servers := make([]*http.Server, 0, len(s.servers))
	for srv := range s.servers {
		servers = append(servers, srv)
	}
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		errs = append(errs, srv.Close())
	}
	if s.closeStore != nil {
		errs = append(errs, s.closeStore())
		s.closeStore = nil
	}
	if s.queue != nil {
		s.closeQueue.Do(func() {
			s.stopWorkers()
			errs = append(errs, s.queue.Close())
		})
	}
	return errors.Join(errs...)
}

func (s *Server) serveWebhook(w http.ResponseWriter, r *http.Request) {
	h, ok := s.hooks[mux.Vars(r)["name"]]
	if !ok {
		writeError(w, http.StatusNotFound, "unknown_webhook", "no webhook with this name")
		return
	}
	if s.queue != nil && s.role == RoleWork {
		writeError(w, http.StatusServiceUnavailable, "not_accepting", "this instance only works the queue (--role work)")
		return
	}
	start := time.Now()
	h.handler.ServeHTTP(w, r)
	// The middleware answers a redelivery of a delivered event itself,
	// without calling deliver; it still gets its line. Header is the map
	// that was sent, so it shows what the middleware set.
	if w.Header().Get(verify.DuplicateHeader) == "true" {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "delivery",
			slog.String("webhook", h.name),
			slog.String("id", clipText(signedID(r.Header), 256)),
			slog.String("outcome", "duplicate"),
			slog.Int("status", http.StatusOK),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
	}
}

// signedID returns the id header of the signature scheme the verifier
// chose: the x-staircase-* family when its signature header is present,
// else webhook-*.
func signedID(h http.Header) string {
	if len(h.Values("X-Staircase-Signature")) > 0 {
		return h.Get("X-Staircase-Id")
	}
	return h.Get("Webhook-Id")
}

func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	if s.ping != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		err := s.ping(ctx)
		cancel()
		if err != nil {
			s.log.Warn("health check: store unavailable", "error", err.Error())
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{
				"status": "unavailable",
				"error":  errorBody{Code: "store_unavailable", Message: "the id store does not answer"},
			})
			return
		}
	}
	if s.idStoreFull() {
		s.log.Warn("health check: the in-memory id store is full")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{
			"status": "unavailable",
			"error":  errorBody{Code: "store_full", Message: "the id store is full: new events are answered 503 until old ids expire"},
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// idStoreFull reports whether the in-memory id store, if the server made
// one, would refuse a new id now.
func (s *Server) idStoreFull() bool {
	return s.memIDs != nil && s.memIDs.Full()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"response encoding failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]errorBody{"error": {Code: code, Message: msg}})
}
