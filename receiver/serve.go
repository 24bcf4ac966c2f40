package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"
)

// newRouter routes POST /webhooks/{name} and GET /healthz, and answers
// everything else with a JSON 404 or 405.
func (s *Server) newRouter() *mux.Router {
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
	return r
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

// Handler returns the server's routes: POST /webhooks/{name} and
// GET /healthz. Use it to serve from your own http.Server or in tests.
func (s *Server) Handler() http.Handler { return s.router }

// ListenAndServe listens on Config.Listen, and on Config.Admin.Listen for
// the console when there is one, and serves until ctx is done (see Serve
// and ServeAdmin).
func (s *Server) ListenAndServe(ctx context.Context) error {
	l, err := net.Listen("tcp", s.listen)
	if err != nil {
		return err
	}
	if s.console != nil {
		al, err := net.Listen("tcp", s.adminListen)
		if err != nil {
			l.Close()
			return fmt.Errorf("receiver: admin listener: %w", err)
		}
		go s.ServeAdmin(ctx, al)
	}
	return s.Serve(ctx, l)
}

// Serve serves on l until ctx is done, then stops accepting, lets in-flight
// deliveries finish within ShutdownTimeout and returns nil; it returns an
// error when they did not finish in time, or when serving fails. After
// Close it returns http.ErrServerClosed.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	l = newLimitListener(l, s.maxConns)
	s.publicAddr.CompareAndSwap(nil, dialAddr(l.Addr()))
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
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, s.recorder.Close(ctx))
			cancel()
			errs = append(errs, s.queue.Close())
		})
	}
	return errors.Join(errs...)
}

func (s *Server) serveWebhook(w http.ResponseWriter, r *http.Request) {
	if s.queue != nil && s.role == RoleWork {
		writeError(w, http.StatusServiceUnavailable, "not_accepting", "this instance only works the queue (--role work)")
		s.metrics.Refused(mux.Vars(r)["name"], "not_accepting")
		return
	}
	h, ok := s.hooks[mux.Vars(r)["name"]]
	if !ok {
		s.unknown.ServeHTTP(w, r)
		return
	}
	if s.metrics != nil {
		r = r.WithContext(context.WithValue(r.Context(), requestStartKey{}, time.Now()))
	}
	h.handler.ServeHTTP(w, r)
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
