package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/stairhook/stairhook/receiver"
	"github.com/stairhook/stairhook/verify"
)

// runServe implements "stairhook serve".
func runServe(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet("serve", "serve [--config FILE] [--addr ADDR] [--outbox DIR]", `
Run the reference receiver until SIGINT or SIGTERM, then finish the
deliveries in flight and exit. With --config (or $STAIRHOOK_CONFIG) it
serves the webhooks of that file. Without, it serves one webhook,
"staircase", at POST /webhooks/staircase, with the secret from
$STAIRHOOK_SECRET or, when that is unset, a generated secret printed once,
and sends every event to dry-run Jira and email sinks that write into the
outbox folder. Logs are JSON lines on standard error.`)
	configPath := fs.String("config", "", "the receiver's config `FILE` (default $STAIRHOOK_CONFIG)")
	addr := fs.String("addr", receiver.DefaultListen, "listen on `host:port` (overrides the config's listen)")
	outbox := fs.String("outbox", receiver.DefaultOutbox, "the dry-run and dead-letter `folder` (overrides the config's outbox)")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if _, port, err := net.SplitHostPort(*addr); err != nil || port == "" {
		return usageError(e, fs, "--addr must be host:port, such as 127.0.0.1:8080")
	}

	var cfg *receiver.Config
	var generated string
	if p := firstNonEmpty(*configPath, e.getenv("STAIRHOOK_CONFIG")); p != "" {
		c, err := loadConfig(e, p)
		if err != nil {
			return failf(e, "serve", "%v", err)
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

	log := slog.New(slog.NewJSONHandler(e.stderr, nil))
	srv, err := receiver.NewServer(cfg, receiver.ServerOptions{Logger: log})
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
	if generated != "" {
		fmt.Fprintf(e.stdout, "generated secret, shown once (export it to keep it across restarts and to send with --secret-env %s):\n", defaultSecretEnv)
		fmt.Fprintf(e.stdout, "export %s=%s\n", defaultSecretEnv, generated)
	} else if *configPath == "" && e.getenv("STAIRHOOK_CONFIG") == "" {
		fmt.Fprintf(e.stdout, "secret: from $%s\n", defaultSecretEnv)
	}
	if cfg.Jira == nil || cfg.SMTP == nil {
		fmt.Fprintf(e.stdout, "dry run: jira and email routes without a jira or smtp section write into %s\n", cfg.Outbox)
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Serve(ctx, ln); err != nil {
		return failf(e, "serve", "%v", err)
	}
	fmt.Fprintln(e.stdout, "stairhook serve: stopped")
	return exitOK
}
