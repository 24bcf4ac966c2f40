package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stairhook/stairhook/receiver"
	"github.com/stairhook/stairhook/sender"
	"github.com/stairhook/stairhook/verify"
)

// maxConfigFileBytes bounds a config file read by the CLI; ParseConfig has
// the same cap.
const maxConfigFileBytes = 1 << 20

// loadConfig reads and parses the config at path, expanding ${VAR} from
// the command's environment.
func loadConfig(e *env, path string) (*receiver.Config, error) {
	data, err := readBounded(path, maxConfigFileBytes)
	if err != nil {
		return nil, err
	}
	cfg, err := receiver.ParseConfig(data, e.lookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s:\n%w", path, err)
	}
	return cfg, nil
}

// runDeadLetter implements "stairhook deadletter list|replay".
func runDeadLetter(ctx context.Context, e *env, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "list":
			return runDeadLetterList(e, args[1:])
		case "replay":
			return runDeadLetterReplay(ctx, e, args[1:])
		}
	}
	fs := newFlagSet("deadletter", "deadletter list|replay [flags]", `
Events a sink rejected permanently are kept in <outbox>/deadletter.jsonl.
"list" shows them; "replay" re-signs each and posts it to the receiver
again once the configuration is fixed. Run "stairhook deadletter list
--help" or "stairhook deadletter replay --help" for their flags.`)
	if len(args) > 0 {
		if code, ok := parseFlags(e, fs, args); !ok {
			return code
		}
	}
	return usageError(e, fs, `missing subcommand: "list" or "replay"`)
}

// deadLetterPath is --file, else the config's outbox file.
func deadLetterPath(file string, cfg *receiver.Config) string {
	if file != "" {
		return file
	}
	outbox := receiver.DefaultOutbox
	if cfg != nil {
		outbox = cfg.Outbox
	}
	return filepath.Join(outbox, receiver.DeadLetterFile)
}

// readDeadLetterFile reads the records; a missing file at the default
// path is an empty list, a missing --file an error.
func readDeadLetterFile(path string, explicit bool) ([]receiver.DeadLetter, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return receiver.ReadDeadLetters(f)
}

// badLines reports, on standard error, the lines ReadDeadLetters skipped,
// and whether it did skip any. Any other error is returned: the records are
// then incomplete and the command must stop.
func badLines(e *env, path string, err error) (bool, error) {
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, receiver.ErrInvalidDeadLetter) {
		return false, err
	}
	fmt.Fprintf(e.stderr, "%s: skipped invalid lines:\n%v\n", path, err)
	return true, nil
}

func runDeadLetterList(e *env, args []string) int {
	fs := newFlagSet("deadletter list", "deadletter list [--config FILE] [--file PATH]", `
Print the dead letters: time, webhook, event id, sink and reason, one per
line. The file is --file, else deadletter.jsonl in the outbox of the config
(--config, else $STAIRHOOK_CONFIG), else in ./stairhook-outbox. A line
that is not a record is reported on standard error and skipped, and the
command then exits 1 after listing the others.`)
	configPath := fs.String("config", "", "the receiver's config `FILE` (default $STAIRHOOK_CONFIG)")
	file := fs.String("file", "", "the dead-letter `PATH`")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	var cfg *receiver.Config
	if *file == "" {
		if p := firstNonEmpty(*configPath, e.getenv("STAIRHOOK_CONFIG")); p != "" {
			c, err := loadConfig(e, p)
			if err != nil {
				return failf(e, "deadletter list", "%v", err)
			}
			cfg = c
		}
	}
	path := deadLetterPath(*file, cfg)
	recs, err := readDeadLetterFile(path, *file != "")
	skipped, err := badLines(e, path, err)
	if err != nil {
		return failf(e, "deadletter list", "%s: %v", path, err)
	}
	if len(recs) == 0 {
		fmt.Fprintf(e.stdout, "no dead letters in %s\n", path)
	}
	for _, r := range recs {
		fmt.Fprintf(e.stdout, "%s  %s  %s  %s  %s\n", r.Time.UTC().Format(time.RFC3339), r.Webhook, r.EventID, r.Sink, oneLine(r.Error))
	}
	if skipped {
		return exitFail
	}
	return exitOK
}

func runDeadLetterReplay(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet("deadletter replay", "deadletter replay --config FILE --url BASE [--file PATH] [--dry-run]", `
Re-send every dead-lettered event, once per event id, to
BASE/webhooks/<webhook>, signed with that webhook's current secrets from
the config and with its original event id. The receiver runs again only
the sinks that have not succeeded for that id. One attempt per event;
exits 1 when any event was not accepted, or when a line of the file was
not a record (it is reported on standard error, and the others are still
replayed).`)
	configPath := fs.String("config", "", "the receiver's config `FILE` (default $STAIRHOOK_CONFIG)")
	base := fs.String("url", "", "the receiver's base `URL`, such as http://127.0.0.1:8080")
	file := fs.String("file", "", "the dead-letter `PATH` (default: deadletter.jsonl in the config's outbox)")
	dryRun := fs.Bool("dry-run", false, "print what would be sent, send nothing")
	timeout := fs.Duration("timeout", sender.DefaultTimeout, "time allowed for each request")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	p := firstNonEmpty(*configPath, e.getenv("STAIRHOOK_CONFIG"))
	if p == "" {
		return usageError(e, fs, "--config is required (the secrets come from it)")
	}
	if *base == "" {
		return usageError(e, fs, "--url is required")
	}
	if err := checkURL(*base); err != nil {
		return usageError(e, fs, "--url: "+err.Error())
	}
	if *timeout <= 0 {
		return usageError(e, fs, "--timeout must be positive")
	}
	cfg, err := loadConfig(e, p)
	if err != nil {
		return failf(e, "deadletter replay", "%v", err)
	}
	path := deadLetterPath(*file, cfg)
	recs, err := readDeadLetterFile(path, *file != "")
	skipped, err := badLines(e, path, err)
	if err != nil {
		return failf(e, "deadletter replay", "%s: %v", path, err)
	}

	// One replay per webhook and event id; the sinks that failed are
	// listed for the report.
	type item struct {
		rec   receiver.DeadLetter
		sinks []string
	}
	var items []*item
	byKey := map[string]*item{}
	for _, r := range recs {
		k := r.Webhook + "\x00" + r.EventID
		if it, ok := byKey[k]; ok {
			it.sinks = append(it.sinks, r.Sink)
			it.rec = r // the latest body and time win
			continue
		}
		it := &item{rec: r, sinks: []string{r.Sink}}
		byKey[k] = it
		items = append(items, it)
	}
	if len(items) == 0 {
		fmt.Fprintf(e.stdout, "no dead letters in %s\n", path)
		if skipped {
			return exitFail
		}
		return exitOK
	}

	now := time.Now()
	s := sender.New(sender.Options{Timeout: *timeout, Schedule: []time.Duration{0}})
	failed := 0
	for _, it := range items {
		r := it.rec
		label := fmt.Sprintf("%s (webhook %s, failed sinks %s)", r.EventID, r.Webhook, strings.Join(it.sinks, ", "))
		wh := findWebhook(cfg, r.Webhook)
		if wh == nil {
			fmt.Fprintf(e.stdout, "%s: skipped: no webhook %q in the config\n", label, r.Webhook)
			failed++
			continue
		}
		secrets, err := activeSecrets(wh, now)
		if err != nil {
			fmt.Fprintf(e.stdout, "%s: skipped: %v\n", label, err)
			failed++
			continue
		}
		target := strings.TrimRight(*base, "/") + "/webhooks/" + url.PathEscape(r.Webhook)
		if *dryRun {
			fmt.Fprintf(e.stdout, "%s: would POST %d bytes to %s\n", label, len(r.Body), target)
			continue
		}
		rep, err := s.Send(ctx, sender.Endpoint{URL: target, Secrets: secrets, Enabled: true}, r.EventID, r.Body)
		if err != nil {
			failed++
		}
		switch {
		case len(rep.Attempts) == 0:
			fmt.Fprintf(e.stdout, "%s: not sent: %v\n", label, err)
		case rep.Attempts[0].Status == 0:
			fmt.Fprintf(e.stdout, "%s: no response: %v\n", label, rep.Attempts[0].Err)
		default:
			a := rep.Attempts[0]
			fmt.Fprintf(e.stdout, "%s: %d %s\n", label, a.Status, statusText(a.Status))
			if err != nil && len(a.Body) > 0 {
				fmt.Fprintf(e.stdout, "%s\n", printable(a.Body))
			}
		}
	}
	if *dryRun {
		fmt.Fprintf(e.stdout, "dry run: %d event(s) would be replayed\n", len(items)-failed)
	} else {
		fmt.Fprintf(e.stdout, "replayed %d of %d event(s)\n", len(items)-failed, len(items))
	}
	if failed > 0 || skipped {
		return exitFail
	}
	return exitOK
}

func findWebhook(cfg *receiver.Config, name string) *receiver.WebhookConfig {
	for i := range cfg.Webhooks {
		if cfg.Webhooks[i].Name == name {
			return &cfg.Webhooks[i]
		}
	}
	return nil
}

// activeSecrets returns the webhook's secrets that have not expired.
func activeSecrets(wh *receiver.WebhookConfig, now time.Time) ([]verify.Secret, error) {
	var out []verify.Secret
	for i, sc := range wh.Secrets {
		if !sc.Expires.IsZero() && !now.Before(sc.Expires) {
			continue
		}
		s, err := verify.ParseSecret(sc.Secret)
		if err != nil {
			return nil, fmt.Errorf("secret %d of webhook %s: %s", i+1, wh.Name, errText(err))
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("webhook %s has no unexpired secret", wh.Name)
	}
	return out, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// oneLine makes untrusted text safe for one line of a terminal.
func oneLine(s string) string {
	q := printable([]byte(s))
	return strings.NewReplacer("\n", `\n`, "\t", " ").Replace(q)
}
