package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/redis/go-redis/v9"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/redisstore"
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
	// Store records event ids (for the verify middleware) and done sinks.
	// Default value is the Redis store of Config.Store.Redis when set, else
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
	// DeliveryTimeout bounds all the sinks of one delivery together. Default
	// value is DefaultDeliveryTimeout (10 s), below the sender's 15 s.
	DeliveryTimeout time.Duration
	// ShutdownTimeout bounds how long ListenAndServe and Serve wait for
	// in-flight deliveries once their context is done. Default value is
	// DeliveryTimeout plus 5 s.
	ShutdownTimeout time.Duration
	// Sinks are sinks of your own (a chat message, a pager, a queue), each
	// known by its Name, which routes list in RouteConfig.Sinks. Default
	// value is none. NewServer rejects a nil sink, a name that is not 1 to
	// 128 of a-z, 0-9, _, - and ., two sinks of one name, a name a sink
	// built from the configuration has ("<webhook>.<route>.jira" or
	// ".email", for every route) and a route naming a sink that is not
	// here. Name is read once, by NewServer. One sink may serve several
	// routes and webhooks: it runs once per event id whichever routes
	// select the event (see Sink), and Deliver may be called for
	// different events at the same time.
	Sinks []Sink

	// idEntries and ledgerEntries are the capacities of the in-memory
	// stores of ids and of done sinks. Default value is
	// verify.DefaultMemoryStoreEntries; tests lower them.
	idEntries, ledgerEntries int
}

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

	mu      sync.Mutex
	servers map[*http.Server]struct{}
	closed  bool
}

// webhook is one configured webhook: its verify middleware in front of the
// delivery handler.
type webhook struct {
	name    string
	routes  []route
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

	store := opts.Store
	switch {
	case store != nil:
		if p, ok := store.(interface{ Ping(context.Context) error }); ok {
			s.ping = p.Ping
		}
	case c.Store.Redis != "":
		ro, err := redis.ParseURL(c.Store.Redis)
		if err != nil {
			return nil, configErr("store.redis", "must be a redis:// or rediss:// URL")
		}
		rc := redis.NewClient(ro)
		store = redisstore.New(rc, redisstore.Options{})
		s.ping = func(ctx context.Context) error { return rc.Ping(ctx).Err() }
		s.closeStore = rc.Close
	}
	ledgerStore := store
	if store == nil {
		// Apart, because the two fill differently: the ids live minutes and
		// must not be forgotten early (a replay would get through), while
		// the done sinks live Retention (days) and forgetting the oldest
		// only risks running a sink again for a very late redelivery. In
		// one store the done sinks would fill it and every new event would
		// be refused.
		s.memIDs = verify.NewMemoryStore(verify.MemoryStoreOptions{MaxEntries: opts.idEntries, Now: opts.Now})
		store = s.memIDs
		ledgerStore = verify.NewMemoryStore(verify.MemoryStoreOptions{
			MaxEntries: opts.ledgerEntries,
			EvictDone:  true,
			Now:        opts.Now,
		})
	}
	s.ledger = ledger{store: ledgerStore, retention: c.Retention, hold: s.deliveryTimeout + time.Minute}

	for _, name := range unused {
		s.log.Warn("a sink of ServerOptions.Sinks is named by no route", "sink", name)
	}
	for _, wc := range c.Webhooks {
		h, err := s.newWebhook(&c, wc, store, client, custom)
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

func (s *Server) newWebhook(c *Config, wc WebhookConfig, store verify.Store, client *http.Client, custom map[string]Sink) (*webhook, error) {
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
		Store:     idStore{Store: store, prefix: "id/" + name + "/"},
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
			var sink Sink
			if c.Jira != nil {
				sink, err = newJiraSink(prefix+"jira", *c.Jira, *rc.Jira, client, s.log)
			} else {
				sink, err = newDryRunJiraSink(prefix+"jira", c.Outbox, *rc.Jira, s.log)
			}
			if err != nil {
				return nil, fmt.Errorf("webhook %s, route %s, jira: %w", name, rt.name, err)
			}
			rt.sinks = append(rt.sinks, sink)
		}
		if rc.Email != nil {
			var sink Sink
			if c.SMTP != nil {
				sink, err = newEmailSink(prefix+"email", *c.SMTP, *rc.Email, s.log)
			} else {
				sink, err = newDryRunEmailSink(prefix+"email", c.Outbox, "", *rc.Email, s.log)
			}
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
	h.handler = v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.deliver(w, r, h)
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

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		srv.Close()
		return fmt.Errorf("receiver: in-flight deliveries did not finish within %v: %w", s.shutdownTimeout, err)
	}
	return nil
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
	return errors.Join(errs...)
}

func (s *Server) serveWebhook(w http.ResponseWriter, r *http.Request) {
	h, ok := s.hooks[mux.Vars(r)["name"]]
	if !ok {
		writeError(w, http.StatusNotFound, "unknown_webhook", "no webhook with this name")
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

// Sink outcomes, as reported in responses and logs.
const (
	outcomeDelivered   = "delivered"   // the sink succeeded now
	outcomeSkipped     = "skipped"     // it had succeeded before for this event
	outcomeInFlight    = "in_flight"   // another delivery of the event runs it
	outcomeFailed      = "failed"      // transient failure: retry
	outcomeRejected    = "rejected"    // permanent failure: dead-lettered
	outcomeUnavailable = "unavailable" // the store failed: retry
)

type sinkResult struct {
	Name    string `json:"name"`
	Outcome string `json:"outcome"`
	// Reason is the reason class of a rejection, such as "jira 400",
	// "smtp 550" or "template": fixed text derived from the error's type,
	// never the destination's words.
	Reason string `json:"reason,omitempty"`

	// err is the sink's error. It goes to the log and the dead-letter
	// file, never to the sender: a destination's error text is internal
	// detail and may echo what it was sent.
	err        error
	retryAfter time.Duration
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Reason is the reason class of the first rejected sink (see
	// sinkResult.Reason).
	Reason string `json:"reason,omitempty"`
}

type deliveryResponse struct {
	Status string       `json:"status"`
	Error  *errorBody   `json:"error,omitempty"`
	Sinks  []sinkResult `json:"sinks,omitempty"`
}

// deliver runs behind the verify middleware: the request is authentic and
// its id reserved. A 2xx answer marks the id done; anything else releases
// it, so the sender's retry comes back here.
func (s *Server) deliver(w http.ResponseWriter, r *http.Request, h *webhook) {
	start := time.Now()
	res, ok := verify.FromContext(r.Context())
	if !ok {
		writeError(w, http.StatusInternalServerError, "internal", "request not verified")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, verify.DefaultMaxBodyBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_body", "body could not be read")
		return
	}
	ev, err := event.Decode(body)
	if err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "event rejected",
			slog.String("webhook", h.name), slog.String("id", res.ID),
			slog.String("key", res.KeyLabel), slog.String("reason", err.Error()))
		writeError(w, http.StatusBadRequest, "invalid_event", err.Error())
		return
	}
	if res.Scheme == verify.SchemeV1 && ev.ID != res.ID {
		s.log.LogAttrs(r.Context(), slog.LevelWarn, "event rejected",
			slog.String("webhook", h.name), slog.String("id", res.ID),
			slog.String("key", res.KeyLabel), slog.String("reason", "event id differs from the signed id"))
		writeError(w, http.StatusBadRequest, "id_mismatch", "the event id differs from the signed x-staircase-id")
		return
	}

	sinks := matchSinks(h.routes, ev)
	if len(sinks) == 0 {
		s.logDelivery(r.Context(), h, ev, res, http.StatusOK, nil, start)
		writeJSON(w, http.StatusOK, deliveryResponse{Status: "ignored"})
		return
	}

	// The sinks run to completion (bounded) even if the sender hangs up
	// or the server shuts down: a half-run sink would be neither recorded
	// nor released in time for the retry.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.deliveryTimeout)
	defer cancel()
	results := make([]sinkResult, len(sinks))
	for i, sink := range sinks {
		results[i] = s.runSink(ctx, h.name, ev, sink)
	}

	status, resp, retryAfter := summarize(results)
	if status == http.StatusUnprocessableEntity {
		if err := s.deadLetter(h, ev, results); err != nil {
			// Not on disk: the sender must keep the event.
			s.log.LogAttrs(r.Context(), slog.LevelError, "dead-letter write failed", slog.String("error", err.Error()))
			status, retryAfter = http.StatusServiceUnavailable, DefaultRetryAfter
			resp.Status = "retry"
			resp.Error = &errorBody{Code: "dead_letter_unavailable", Message: "a sink rejected the event and the dead-letter file could not be written"}
		}
	}
	s.logDelivery(r.Context(), h, ev, res, status, results, start)
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	writeJSON(w, status, resp)
}

// runSink runs one sink for ev, as delivered to the named webhook, unless
// the ledger says it already succeeded.
func (s *Server) runSink(ctx context.Context, webhook string, ev *event.Event, sink Sink) sinkResult {
	out := sinkResult{Name: sink.Name()}
	resv, state, err := s.ledger.reserve(ctx, webhook, ev.ID, out.Name)
	switch {
	case err != nil:
		out.Outcome, out.err = outcomeUnavailable, err
		return out
	case state == verify.StateDone:
		out.Outcome = outcomeSkipped
		return out
	case state == verify.StateInFlight:
		out.Outcome, out.err, out.retryAfter = outcomeInFlight, errors.New("another delivery of this event is running this sink"), time.Second
		return out
	}
	err = callSink(ctx, sink, ev)
	if err == nil {
		if err := s.ledger.done(ctx, resv); err != nil {
			// Delivered but not recorded. The reservation is kept (not
			// released) so a retry waits for it to expire rather than run
			// the sink again at once.
			out.Outcome, out.err = outcomeUnavailable, fmt.Errorf("delivered, but recording it failed: %w", err)
			return out
		}
		out.Outcome = outcomeDelivered
		return out
	}
	if rerr := s.ledger.release(ctx, resv); rerr != nil {
		s.log.Warn("ledger release failed", "sink", out.Name, "id", ev.ID, "error", rerr.Error())
	}
	out.err = err
	if errors.Is(err, ErrPermanent) {
		out.Outcome, out.Reason = outcomeRejected, reasonClassOf(err)
		return out
	}
	out.Outcome = outcomeFailed
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		out.retryAfter = ra.After
	}
	return out
}

// callSink runs sink.Deliver, turning a panic into a permanent failure so
// the ledger reservation is released and the event dead-lettered.
func callSink(ctx context.Context, sink Sink, ev *event.Event) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Permanent(&classedError{"panic", fmt.Errorf("sink %s panicked: %v", sink.Name(), p)})
		}
	}()
	return sink.Deliver(ctx, ev)
}

// summarize chooses the answer: any retryable outcome → 503 with the
// longest Retry-After asked; else any rejection → 422; else 200.
func summarize(results []sinkResult) (status int, resp deliveryResponse, retryAfter int) {
	var retry, rejected, storeDown bool
	var after time.Duration
	var reason, class string
	for _, r := range results {
		switch r.Outcome {
		case outcomeFailed, outcomeInFlight, outcomeUnavailable:
			retry = true
			storeDown = storeDown || r.Outcome == outcomeUnavailable
			after = max(after, r.retryAfter)
		case outcomeRejected:
			if !rejected {
				reason = "sink " + r.Name + " rejected the event (" + r.Reason + "); the details are in the receiver's log and dead-letter file"
				class = r.Reason
			}
			rejected = true
		}
	}
	resp = deliveryResponse{Status: "delivered", Sinks: results}
	switch {
	case retry:
		secs := DefaultRetryAfter
		if after > 0 {
			secs = int(min(math.Ceil(after.Seconds()), maxRetryAfter))
		}
		resp.Status = "retry"
		resp.Error = &errorBody{Code: "sink_unavailable", Message: "a sink failed temporarily; retry later"}
		if storeDown {
			resp.Error = &errorBody{Code: "store_unavailable", Message: "the record of delivered sinks is unavailable; retry later"}
		}
		return http.StatusServiceUnavailable, resp, secs
	case rejected:
		resp.Status = "rejected"
		resp.Error = &errorBody{Code: "sink_rejected", Message: reason, Reason: class}
		return http.StatusUnprocessableEntity, resp, 0
	}
	return http.StatusOK, resp, 0
}

func (s *Server) deadLetter(h *webhook, ev *event.Event, results []sinkResult) error {
	var recs []DeadLetter
	for _, r := range results {
		if r.Outcome == outcomeRejected {
			recs = append(recs, DeadLetter{
				Time: s.now().UTC(), Webhook: h.name, EventID: ev.ID,
				Sink: r.Name, Error: r.err.Error(), Body: ev.Raw,
			})
		}
	}
	return s.deadLetters.append(recs)
}

func (s *Server) logDelivery(ctx context.Context, h *webhook, ev *event.Event, res verify.Result, status int, results []sinkResult, start time.Time) {
	level := slog.LevelInfo
	if status != http.StatusOK {
		level = slog.LevelWarn
	}
	outcomes := make([]any, 0, len(results))
	var errs []any
	for _, r := range results {
		outcomes = append(outcomes, slog.String(r.Name, r.Outcome))
		if r.err != nil {
			errs = append(errs, slog.String(r.Name, clipText(r.err.Error(), 1024)))
		}
	}
	attrs := []slog.Attr{
		slog.String("webhook", h.name),
		slog.String("id", ev.ID),
		slog.String("type", ev.Type),
		slog.String("account", ev.Account.ID),
		slog.String("key", res.KeyLabel),
		slog.Bool("test", ev.Test),
		slog.Int("status", status),
		slog.Group("sinks", outcomes...),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
	}
	if len(errs) > 0 {
		attrs = append(attrs, slog.Group("errors", errs...))
	}
	s.log.LogAttrs(ctx, level, "delivery", attrs...)
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
