package receiver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stairhook/stairhook/receiver/console"
	"github.com/stairhook/stairhook/receiver/queue"
	"github.com/stairhook/stairhook/verify"
)

// maxTestAnswer bounds what the console's test notification reads of the
// webhook listener's answer.
const maxTestAnswer = 4 << 10

// The admin listener serves at most adminConcurrency requests at once;
// the others wait up to adminWait, then get 503. Its pages query the
// database the accept path writes to, on the same cores: however many
// operators (or scrapers) load them, they must not starve the webhooks.
// One at a time: with four clients looping over the pages of a 20,000-
// event database on 2 cores, two at a time still raised the accept
// path's p50 4.8 times (bench/cmd/consoleload).
const (
	adminConcurrency = 1
	adminWait        = 10 * time.Second
)

// boundConcurrency serves at most n requests of h at once; a request that
// waits more than wait for its turn is answered 503 with Retry-After.
func boundConcurrency(h http.Handler, n int, wait time.Duration) http.Handler {
	slots := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case slots <- struct{}{}:
		case <-t.C:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "the console is busy; retry in a moment", http.StatusServiceUnavailable)
			return
		case <-r.Context().Done():
			return
		}
		defer func() { <-slots }()
		h.ServeHTTP(w, r)
	})
}

// errNotServing means the console's test notification found no webhook
// listener to send to.
var errNotServing = errors.New("the webhook listener is not serving")

// newAdmin builds the metrics, the recorder of refused requests and key
// uses, and (unless admin.listen is off) the console, for the queued
// server. keys holds each webhook's signing key, for test notifications.
func (s *Server) newAdmin(c *Config) error {
	hooks := make([]console.Webhook, 0, len(c.Webhooks))
	for _, wc := range c.Webhooks {
		cw := console.Webhook{Name: wc.Name}
		for i, sc := range wc.Secrets {
			cw.Keys = append(cw.Keys, secretLabel(sc, i))
		}
		if h := s.hooks[wc.Name]; h != nil {
			for name := range h.sinks {
				cw.Sinks = append(cw.Sinks, name)
			}
		}
		hooks = append(hooks, cw)
	}
	s.recorder = s.queue.NewRecorder(queue.RecorderOptions{})
	s.registry = prometheus.NewRegistry()
	var err error
	s.metrics, err = console.NewMetrics(s.registry, console.MetricsOptions{
		Webhooks: hooks, Queue: s.queue, Recorder: s.recorder, Logger: s.log, Now: s.now,
	})
	if err != nil {
		return err
	}
	if c.Admin.Listen == AdminOff {
		return nil
	}
	s.adminListen = c.Admin.Listen
	s.adminToken = c.Admin.Token
	if s.adminToken == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b) // never fails (crypto/rand)
		s.adminToken, s.adminGenerated = base64.RawURLEncoding.EncodeToString(b), true
	}
	s.console, err = console.New(console.Options{
		Queue: s.queue, Token: s.adminToken, Webhooks: hooks, Send: s.sendTest,
		Registry: s.registry, Logger: s.log, Now: s.now,
	})
	return err
}

// AdminHandler returns the operator console (pages, actions, /metrics),
// or nil in inline mode or with admin.listen off. Serve it on a listener
// of its own (see ServeAdmin), never beside the webhooks.
func (s *Server) AdminHandler() http.Handler {
	if s.console == nil {
		return nil
	}
	return s.console
}

// AdminListen returns the admin listener's configured host:port, or "" when
// there is none.
func (s *Server) AdminListen() string { return s.adminListen }

// AdminToken returns the token the admin listener requires, and whether
// NewServer generated it (the configuration had none): stairhook serve
// prints a generated one once, at start. Empty without an admin listener.
func (s *Server) AdminToken() (token string, generated bool) {
	return s.adminToken, s.adminGenerated
}

// ServeAdmin serves the operator console on l until ctx is done. It
// returns nil after a clean shutdown, and an error when there is no
// console (inline mode, admin.listen off) or serving fails.
func (s *Server) ServeAdmin(ctx context.Context, l net.Listener) error {
	if s.console == nil {
		l.Close()
		return errors.New("receiver: no admin console (inline mode, or admin.listen is off)")
	}
	srv := &http.Server{
		Handler:           boundConcurrency(s.console, adminConcurrency, adminWait),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(newLimitListener(l, 64)) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc
	if err != nil {
		srv.Close()
	}
	return nil
}

// sendTest is the console's test notification: body signed with the
// webhook's signing key (the first of its keyring) as eventID, posted to
// this server's webhook listener, the whole chain as a sender sees it.
func (s *Server) sendTest(ctx context.Context, webhook, eventID string, body []byte) (int, []byte, error) {
	key, ok := s.signKeys[webhook]
	if !ok {
		return 0, nil, fmt.Errorf("no webhook %q", webhook)
	}
	addr, _ := s.publicAddr.Load().(string)
	if addr == "" {
		return 0, nil, errNotServing
	}
	signer, err := verify.NewSigner(key)
	if err != nil {
		return 0, nil, err
	}
	h, err := signer.Sign(eventID, s.now(), body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/webhooks/"+webhook, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "stairhook-console/1")
	resp, err := s.testClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxTestAnswer))
	return resp.StatusCode, answer, err
}

// dialAddr is the address to reach a listener bound to addr from this
// host: an unspecified host (0.0.0.0, ::) becomes loopback.
func dialAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// refused records a request answered with an error before or instead of
// its acceptance: in the metrics and, for the console, in the database's
// bounded list of refused requests.
func (s *Server) refused(r *http.Request, webhook string, status int, code, hint string) {
	s.metrics.Refused(webhook, code)
	s.recorder.Refused(queue.NewRefusal(r, webhook, status, code, hint))
}

// keyUsed records that a key of webhook verified a request.
func (s *Server) keyUsed(webhook, label string) {
	s.metrics.KeyUsed(webhook, label)
	s.recorder.KeyUsed(webhook, label, s.now())
}
