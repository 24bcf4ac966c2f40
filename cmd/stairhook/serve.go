package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/stairhook/stairhook/receiver"
	"github.com/stairhook/stairhook/receiver/queue"
	"github.com/stairhook/stairhook/verify"
)

// runServe implements "stairhook serve".
func runServe(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet("serve", "serve [--config FILE] [--addr ADDR] [--admin-addr ADDR|off] [--outbox DIR] [--store STORE] [--role all|accept|work]", `
Run the reference receiver until SIGINT or SIGTERM. Each verified event is
recorded with one job per matched sink in the database, in one
transaction, and answered 202; workers then run the sinks, retrying with
backoff. On SIGTERM it stops accepting (503), lets running attempts finish
within the shutdown timeout and leaves the rest queued, then exits 0.
With --config (or $STAIRHOOK_CONFIG) it serves the webhooks of that file.
Without, it serves one webhook, "staircase", at POST /webhooks/staircase,
with the secret from $STAIRHOOK_SECRET or, when that is unset, a generated
secret printed once, and sends every event to dry-run Jira and email sinks
that write into the outbox folder. The operator console and /metrics
are served on the admin listener (127.0.0.1:8081 by default), which
requires the admin token: the config's admin.token, or one generated
and printed once at start. Logs are JSON lines on standard error.`)
	configPath := fs.String("config", "", "the receiver's config `FILE` (default $STAIRHOOK_CONFIG)")
	addr := fs.String("addr", receiver.DefaultListen, "listen on `ADDR`, host:port (overrides the config's listen)")
	adminAddr := fs.String("admin-addr", receiver.DefaultAdminListen, "serve the operator console and /metrics on `ADDR`, host:port, or off (overrides the config's admin.listen)")
	outbox := fs.String("outbox", receiver.DefaultOutbox, "the dry-run folder `DIR` (overrides the config's outbox)")
	store := fs.String("store", "", "the database `STORE`, sqlite:PATH or postgres://… (default $STAIRHOOK_STORE, else the config's store, else "+queue.DefaultStore+")")
	role := fs.String("role", string(receiver.RoleAll), "the instance's `ROLE`: all answers webhooks and works the queue; accept only answers; work only works the queue")
	inline := fs.Bool("inline", false, "run the sinks inside the request, with no database (as on AWS Lambda): ids in the config's store.redis or in memory")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !validAddr(*addr) {
		return usageError(e, fs, "--addr must be host:port with a port from 0 to 65535, such as 127.0.0.1:8080")
	}
	if *adminAddr != receiver.AdminOff && !validAddr(*adminAddr) {
		return usageError(e, fs, "--admin-addr must be host:port with a port from 0 to 65535, such as 127.0.0.1:8081, or off")
	}

	switch receiver.Role(*role) {
	case receiver.RoleAll, receiver.RoleAccept, receiver.RoleWork:
	default:
		return usageError(e, fs, "--role must be all, accept or work")
	}
	if *inline && firstNonEmpty(*store, e.getenv("STAIRHOOK_STORE")) != "" {
		return usageError(e, fs, "--store (or $STAIRHOOK_STORE) has no effect with --inline, which keeps no database")
	}
	var storeCfg *receiver.StoreConfig
	if s := firstNonEmpty(*store, e.getenv("STAIRHOOK_STORE")); s != "" {
		sc, err := receiver.ParseStore(s)
		if err != nil {
			return usageError(e, fs, "--store (or $STAIRHOOK_STORE) must be sqlite:PATH or a postgres:// URL")
		}
		storeCfg = &sc
	}

	var cfg *receiver.Config
	var generated string
	if p := firstNonEmpty(*configPath, e.getenv("STAIRHOOK_CONFIG")); p != "" {
		c, err := loadConfig(e, p)
		if err != nil {
			return usageError(e, fs, err.Error())
		}
		cfg = c
		if set["addr"] {
			cfg.Listen = *addr
		}
		if set["outbox"] {
			cfg.Outbox = *outbox
		}
	} else {
		text := e.getenv(defaultSecretEnv)
		if text == "" {
			sec, err := verify.NewSecret()
			if err != nil {
				return failf(e, "serve", "%v", err)
			}
			text, generated = sec.Encode(), sec.Encode()
		} else if _, err := verify.ParseSecret(text); err != nil {
			return usageError(e, fs, "$"+defaultSecretEnv+": "+errText(err))
		}
		cfg = receiver.DefaultConfig(text, *addr, *outbox)
	}

	if set["admin-addr"] || cfg.Admin.Listen == "" {
		cfg.Admin.Listen = *adminAddr
	}
	if storeCfg != nil {
		storeCfg.Redis = cfg.Store.Redis // inline mode's; the queued server refuses it with its own message
		cfg.Store = *storeCfg
	}
	log := slog.New(slog.NewJSONHandler(e.stderr, nil))
	traces, err := setupTracing(ctx, e, log)
	if err != nil {
		return usageError(e, fs, err.Error())
	}
	opts := receiver.ServerOptions{Logger: log, Inline: *inline, Role: receiver.Role(*role)}
	if traces != nil {
		// Shut down after the server (defers run last first): the spans of
		// the last attempts are exported too.
		defer traces.shutdown(log)
		opts.TracerProvider = traces.provider
	}
	srv, err := receiver.NewServer(cfg, opts)
	if errors.Is(err, receiver.ErrInvalidConfig) {
		// A config this way of serving cannot use (store.redis without
		// --inline): the user's to fix, as a bad flag is.
		return usageError(e, fs, err.Error())
	}
	if err != nil {
		return failf(e, "serve", "%v", err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return failf(e, "serve", "%v (choose another address with --addr)", err)
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(e.stdout, "stairhook serve: listening on %s\n", ln.Addr())
	for _, wh := range cfg.Webhooks {
		fmt.Fprintf(e.stdout, "webhook %s: POST %s/webhooks/%s\n", wh.Name, base, wh.Name)
	}
	if q := srv.Queue(); q != nil {
		fmt.Fprintf(e.stdout, "database: %s (role %s)\n", q.Location(), *role)
	}
	if generated != "" {
		fmt.Fprintf(e.stdout, "generated secret, shown once (export it to keep it across restarts and to send with --secret-env %s):\n", defaultSecretEnv)
		fmt.Fprintf(e.stdout, "export %s=%s\n", defaultSecretEnv, generated)
	} else if *configPath == "" && e.getenv("STAIRHOOK_CONFIG") == "" {
		fmt.Fprintf(e.stdout, "secret: from $%s\n", defaultSecretEnv)
	}
	if traces != nil {
		fmt.Fprintf(e.stdout, "traces: OTLP/HTTP to %s\n", traces.to)
	}
	if cfg.Jira == nil || cfg.SMTP == nil {
		fmt.Fprintf(e.stdout, "dry run: jira and email routes without a jira or smtp section write into %s\n", cfg.Outbox)
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if h := srv.AdminHandler(); h != nil {
		aln, err := net.Listen("tcp", srv.AdminListen())
		if err != nil {
			ln.Close()
			return failf(e, "serve", "admin listener: %v (choose another address with --admin-addr, or --admin-addr off)", err)
		}
		fmt.Fprintf(e.stdout, "console: http://%s/ (and /metrics), admin token required\n", aln.Addr())
		if token, generated := srv.AdminToken(); generated {
			fmt.Fprintln(e.stdout, "generated admin token, shown once (set admin.token in the config to keep one across restarts):")
			fmt.Fprintf(e.stdout, "admin token: %s\n", token)
		}
		adminDone := make(chan error, 1)
		go func() { adminDone <- srv.ServeAdmin(ctx, aln) }()
		defer func() { <-adminDone }()
	}
	if err := srv.Serve(ctx, ln); err != nil {
		return failf(e, "serve", "%v", err)
	}
	fmt.Fprintln(e.stdout, "stairhook serve: stopped")
	return exitOK
}

// validAddr reports whether addr is host:port with a decimal port from 0
// to 65535, as the config's listen must be: --addr is checked here so that
// its error names the flag.
func validAddr(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || strings.ContainsAny(host, " /") {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}
