package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/stairhook/stairhook/receiver"
	"github.com/stairhook/stairhook/receiver/queue"
)

// maxConfigFileBytes bounds a config file read by the CLI; ParseConfig has
// the same cap.
const maxConfigFileBytes = 1 << 20

// loadConfig reads and parses the config at path, expanding ${VAR} from
// the command's environment. Its errors are *configError.
func loadConfig(e *env, path string) (*receiver.Config, error) {
	data, err := readBounded(path, maxConfigFileBytes)
	if err != nil {
		return nil, &configError{err}
	}
	cfg, err := receiver.ParseConfig(data, e.lookupEnv)
	if err != nil {
		return nil, &configError{fmt.Errorf("config %s:\n%w", path, err)}
	}
	return cfg, nil
}

// configError is a config that cannot be read or is invalid: a usage
// error (exit 2), as a bad flag is, not a failed operation.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// isUsageError reports whether err, from storeLocation or loadConfig, is
// the user's to fix in the command line or the config.
func isUsageError(err error) bool {
	var ce *configError
	return errors.Is(err, errBadStoreFlag) || errors.As(err, &ce)
}

// storeFlagHelp describes --store wherever it appears.
const storeFlagHelp = "the database `STORE`, sqlite:PATH or postgres://… (default $STAIRHOOK_STORE, else the config's store, else " + queue.DefaultStore + ")"

// errBadStoreFlag is a --store or $STAIRHOOK_STORE that does not parse: a
// usage error, unlike a config that cannot be read.
var errBadStoreFlag = errors.New("--store (or $STAIRHOOK_STORE) must be sqlite:PATH or a postgres:// URL")

// storeLocation chooses the database: --store, else $STAIRHOOK_STORE, else
// the config's store section (from --config or $STAIRHOOK_CONFIG), else the
// default file.
func storeLocation(e *env, flagStore, configPath string) (queue.Location, error) {
	if s := firstNonEmpty(flagStore, e.getenv("STAIRHOOK_STORE")); s != "" {
		loc, err := queue.ParseLocation(s)
		if err != nil {
			return loc, errBadStoreFlag
		}
		return loc, nil
	}
	sc := receiver.StoreConfig{}
	if p := firstNonEmpty(configPath, e.getenv("STAIRHOOK_CONFIG")); p != "" {
		cfg, err := loadConfig(e, p)
		if err != nil {
			return queue.Location{}, err
		}
		sc = cfg.Store
	}
	if sc.Postgres != "" {
		return queue.ParseLocation(sc.Postgres)
	}
	return queue.ParseLocation("sqlite:" + firstNonEmpty(sc.SQLite, receiver.DefaultSQLite))
}

// openStore opens the database for a command that reads or changes it
// without working the queue. A bad --store, or a config that cannot be
// read or is invalid, is a usage error (exit 2); a database that cannot be
// opened, a failure (exit 1).
// openStoreFor is openStore for the command what: on failure it reports
// (a usage error with fs's usage, else a failed command) and returns nil
// and the exit status.
func openStoreFor(ctx context.Context, e *env, fs *flag.FlagSet, what, flagStore, configPath string) (*queue.Queue, int) {
	q, code, err := openStore(ctx, e, flagStore, configPath)
	if err == nil {
		return q, exitOK
	}
	if code == exitUsage {
		return nil, usageError(e, fs, err.Error())
	}
	return nil, failf(e, what, "%v", err)
}

func openStore(ctx context.Context, e *env, flagStore, configPath string) (*queue.Queue, int, error) {
	loc, err := storeLocation(e, flagStore, configPath)
	if isUsageError(err) {
		return nil, exitUsage, err
	}
	if err != nil {
		return nil, exitFail, err
	}
	q, err := queue.Open(ctx, loc, queue.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, exitFail, err
	}
	return q, exitOK, nil
}

// runMigrate implements "stairhook migrate".
func runMigrate(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet("migrate", "migrate [--store STORE] [--config FILE]", `
Bring the database's schema up to date (River's tables, the id store's and
the events'), then exit. serve does the same at every start, safely when
several instances start at once; run this ahead of a deploy to keep that
work out of the start.`)
	store := fs.String("store", "", storeFlagHelp)
	configPath := fs.String("config", "", "the receiver's config `FILE`, for its store (default $STAIRHOOK_CONFIG)")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	q, code := openStoreFor(ctx, e, fs, "migrate", *store, *configPath)
	if q == nil {
		return code
	}
	defer q.Close()
	fmt.Fprintf(e.stdout, "migrate: %s is up to date\n", q.Location())
	return exitOK
}

// runDeadLetter implements "stairhook deadletter list|replay".
func runDeadLetter(ctx context.Context, e *env, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "list":
			return runDeadLetterList(ctx, e, args[1:])
		case "replay":
			return runDeadLetterReplay(ctx, e, args[1:])
		}
	}
	fs := newFlagSet("deadletter", "deadletter list|replay [flags]", `
Jobs that will not run again by themselves (a sink rejected the event, or
it kept failing for delivery.give_up_after) are dead letters in the
receiver's database. "list" prints them; "replay" queues them again, for
the workers of any running serve, once the cause is fixed. Run "stairhook
deadletter list --help" or "stairhook deadletter replay --help" for their
flags.`)
	if len(args) > 0 {
		if !strings.HasPrefix(args[0], "-") {
			return unknownSubcommand(e, fs, args[0], "list", "replay")
		}
		if code, ok := parseFlags(e, fs, args); !ok {
			return code
		}
	}
	return usageError(e, fs, `missing subcommand: "list" or "replay"`)
}

func runDeadLetterList(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet("deadletter list", "deadletter list [--store STORE] [--config FILE] [--webhook NAME]", `
Print the dead letters, oldest first, one JSON object a line: job (the id
replay takes), time, webhook, event_id, sink, attempts, error and body.
They are read from the database a page at a time, however many there are.`)
	store := fs.String("store", "", storeFlagHelp)
	configPath := fs.String("config", "", "the receiver's config `FILE`, for its store (default $STAIRHOOK_CONFIG)")
	webhook := fs.String("webhook", "", "only the dead letters of the webhook `NAME`")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	q, code := openStoreFor(ctx, e, fs, "deadletter list", *store, *configPath)
	if q == nil {
		return code
	}
	defer q.Close()
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	n := 0
	err := q.DeadLetters(ctx, *webhook, func(d *queue.DeadLetter) error {
		n++
		return enc.Encode(d)
	})
	if err != nil {
		return failf(e, "deadletter list", "%v", err)
	}
	fmt.Fprintf(e.stderr, "%d dead letter(s)\n", n)
	return exitOK
}

func runDeadLetterReplay(ctx context.Context, e *env, args []string) int {
	fs := newFlagSet("deadletter replay", "deadletter replay (--id JOB | --all) [--webhook NAME] [--store STORE] [--config FILE]", `
Queue dead letters again: each becomes a new job in the old one's place,
with a fresh delivery.give_up_after, worked by any running serve (or the
next to start). Sinks that already succeeded for the event are not
involved: a dead letter is one (event, sink).`)
	store := fs.String("store", "", storeFlagHelp)
	configPath := fs.String("config", "", "the receiver's config `FILE`, for its store (default $STAIRHOOK_CONFIG)")
	id := fs.String("id", "", "the dead letter's `JOB` number, as list prints it")
	all := fs.Bool("all", false, "replay every dead letter (of --webhook, if given)")
	webhook := fs.String("webhook", "", "with --all, only the dead letters of the webhook `NAME`")
	if code, ok := parseFlags(e, fs, args); !ok {
		return code
	}
	var job int64
	switch {
	case *id != "" && *webhook != "":
		return usageError(e, fs, "--webhook goes with --all; --id names one dead letter already")
	case *id != "" && *all:
		return usageError(e, fs, "give --id or --all, not both")
	case *id == "" && !*all:
		return usageError(e, fs, "give --id JOB or --all")
	case *id != "":
		n, err := strconv.ParseInt(*id, 10, 64)
		if err != nil || n <= 0 {
			return usageError(e, fs, "--id must be a job number, as deadletter list prints it")
		}
		job = n
	}
	q, code := openStoreFor(ctx, e, fs, "deadletter replay", *store, *configPath)
	if q == nil {
		return code
	}
	defer q.Close()
	if *all {
		n, err := q.ReplayAll(ctx, *webhook)
		fmt.Fprintf(e.stdout, "replayed %d dead letter(s)\n", n)
		if err != nil {
			return failf(e, "deadletter replay", "%v", err)
		}
		return exitOK
	}
	if err := q.Replay(ctx, job); err != nil {
		if errors.Is(err, queue.ErrNotDead) {
			return failf(e, "deadletter replay", "%v (deadletter list shows the dead letters)", err)
		}
		return failf(e, "deadletter replay", "%v", err)
	}
	fmt.Fprintf(e.stdout, "replayed job %d: queued again\n", job)
	return exitOK
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
