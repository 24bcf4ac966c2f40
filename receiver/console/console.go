package console

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stairhook/stairhook/receiver/queue"
)

// MinTokenLength is the shortest admin token New accepts.
const MinTokenLength = 16

// maxFormBytes bounds the body of every form the console accepts.
const maxFormBytes = 8 << 10

// Errors of New.
var (
	// ErrNoQueue means Options.Queue is nil.
	ErrNoQueue = errors.New("console: no queue")
	// ErrWeakToken means Options.Token is shorter than MinTokenLength.
	ErrWeakToken = errors.New("console: the admin token must be at least 16 characters")
)

// Webhook is one configured webhook as the console knows it: no secret,
// only names.
type Webhook struct {
	// Name is the webhook's name (POST /webhooks/{name}).
	Name string
	// Keys are the labels of its keyring, the signing key first.
	Keys []string
	// Sinks are the names of its sinks ("<webhook>.<route>.jira", …).
	Sinks []string
}

// SendFunc signs body with the current key of webhook (the first of its
// keyring) as the event eventID, POSTs it to the public listener, and
// returns the answer's status and body. The console's test notification
// calls it; the receiver provides it.
type SendFunc func(ctx context.Context, webhook, eventID string, body []byte) (status int, response []byte, err error)

// Options configures New.
type Options struct {
	// Queue is the receiver's database. Required.
	Queue *queue.Queue
	// Token is the admin token every route requires, at least
	// MinTokenLength characters. Required.
	Token string
	// Webhooks are the configured webhooks, for the filters, the keys page
	// and the test notification. Default value is none.
	Webhooks []Webhook
	// Send sends a test notification. Default value is nil: the test page
	// says it is not available.
	Send SendFunc
	// Registry is served at /metrics. Default value is nil: /metrics
	// answers 404.
	Registry *prometheus.Registry
	// Logger receives a line per failed login and per failed action.
	// Default value is a log/slog JSON handler on standard error.
	Logger *slog.Logger
	// Now returns the current time. Default value is time.Now.
	Now func() time.Time
}

// Console is the operator console: an http.Handler for the admin listener.
// Create it with New.
type Console struct {
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	auth     *auth
	mux      *http.ServeMux
	pages    *pages
	webhooks map[string]Webhook
	sinks    []string
	metrics  http.Handler
	overview *overviewCache
}

// New builds the console. Every route requires the token: a browser logs
// in at /login (a session cookie), a script sends Authorization: Bearer
// TOKEN. Serve it on its own listener, never on the webhooks' one.
func New(opts Options) (*Console, error) {
	if opts.Queue == nil {
		return nil, ErrNoQueue
	}
	if len(opts.Token) < MinTokenLength {
		return nil, ErrWeakToken
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	pg, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{
		opts: opts, log: opts.Logger, now: opts.Now, pages: pg,
		auth:     newAuth(opts.Token, key, opts.Now),
		webhooks: map[string]Webhook{},
		overview: &overviewCache{},
	}
	seen := map[string]bool{}
	for _, w := range opts.Webhooks {
		c.webhooks[w.Name] = w
		for _, s := range w.Sinks {
			if !seen[s] {
				seen[s] = true
				c.sinks = append(c.sinks, s)
			}
		}
	}
	if opts.Registry != nil {
		c.metrics = promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(c.log.Handler(), slog.LevelWarn)})
	}
	c.routes()
	return c, nil
}

// routes lists every route. Those outside /login and /static/ pass the
// token check first (requireAuth), state-changing ones the CSRF check
// too (requireCSRF).
func (c *Console) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /login", c.loginPage)
	m.HandleFunc("POST /login", c.login)
	m.Handle("GET /static/", staticHandler())

	page := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, c.requireAuth(h)) }
	action := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, c.requireAuth(c.requireCSRF(h))) }

	page("GET /{$}", c.overviewPage)
	page("GET /events", c.eventsPage)
	page("GET /event", c.eventPage)
	page("GET /refused", c.refusedPage)
	page("GET /dead", c.deadPage)
	page("GET /keys", c.keysPage)
	page("GET /test", c.testPage)
	page("GET /metrics", c.serveMetrics)
	page("GET /api/csrf", c.csrfAPI)
	page("GET /api/overview", c.overviewPage)
	page("GET /api/events", c.eventsPage)
	page("GET /api/event", c.eventPage)
	page("GET /api/refused", c.refusedPage)
	page("GET /api/dead", c.deadPage)
	page("GET /api/keys", c.keysPage)

	action("POST /logout", c.logout)
	action("POST /jobs/retry", c.retryJob)
	action("POST /jobs/replay", c.replayJob)
	action("POST /dead/replay-all", c.replayAll)
	action("POST /test", c.sendTest)

	// Anything else: the token first, then 404 or 405, so an unknown path
	// tells nothing to a client without it.
	m.Handle("/", c.requireAuth(http.NotFoundHandler()))
	c.mux = m
}

// ServeHTTP serves the console, with its security headers on every answer
// and cross-origin state-changing requests refused (403).
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	crossOrigin.Handler(c.mux).ServeHTTP(w, r)
}

// contentSecurityPolicy allows the console's own files and nothing else:
// no inline script or style, no frames, forms posting only to itself.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// crossOrigin refuses state-changing requests a browser marks as coming
// from another site (Sec-Fetch-Site, Origin): CSRF defence on top of the
// tokens, for the login form too.
var crossOrigin = http.NewCrossOriginProtection()

func (c *Console) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if c.metrics == nil {
		http.NotFound(w, r)
		return
	}
	c.metrics.ServeHTTP(w, r)
}
