// Command stairhook is the command-line face of the module: make a secret,
// sign and verify requests by hand, send test notifications, run the
// reference receiver, and look into its queue: events, status, dead
// letters.
//
//	stairhook secret new [--json]
//	stairhook sign --secret S [--id ID] [--timestamp UNIX] [--body FILE] [--curl URL] [< body]
//	stairhook verify --secret S [-H 'Name: value']... [--headers FILE] [--request FILE] < body
//	stairhook send --url URL --secret S [--type churn_risk] [--account NAME] [--test] [--body FILE]
//	stairhook serve [--config FILE] [--addr ADDR] [--admin-addr ADDR|off] [--outbox DIR]
//	stairhook deadletter list|replay ...
//	stairhook events list [--state S] [--since 1h] | events show ID
//	stairhook status
//	stairhook migrate
//
// Every subcommand takes --help; stairhook --version prints the module
// version and the VCS revision it was built from. Exit status: 0 on
// success, 1 when a check or a delivery failed, 2 on a usage error (a bad
// flag, argument or config).
//
// Secrets come from --secret, --secret-file or the environment variable
// named by --secret-env (STAIRHOOK_SECRET by default). They are never
// echoed back: not in errors, not in --help, not in logs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv))
}

// env is what a subcommand may touch of the outside world; tests provide
// their own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// lookupEnv reports a variable's value and whether it is set, so a
	// config's ${NAME} can tell a variable set to "" from one not set.
	lookupEnv func(string) (string, bool)
}

// getenv is the variable's value, "" when it is not set.
func (e *env) getenv(name string) string {
	v, _ := e.lookupEnv(name)
	return v
}

// command is one entry of the command table.
type command struct {
	summary string
	run     func(ctx context.Context, e *env, args []string) int
}

// commands is the command table; see the package doc.
var commands = map[string]command{
	"secret":     {"make a new webhook secret", runSecret},
	"sign":       {"sign a body and print the headers (or a curl command)", runSign},
	"verify":     {"verify a captured request and explain a failure", runVerify},
	"send":       {"sign and POST a sample signal or a body: a test notification", runSend},
	"serve":      {"run the reference receiver (dry-run sinks without a config)", runServe},
	"deadletter": {"list or replay the receiver's dead letters", runDeadLetter},
	"migrate":    {"bring the receiver's database schema up to date", runMigrate},
	"events":     {"list or show the receiver's accepted events and their deliveries", runEvents},
	"status":     {"print the receiver's queue: depth, oldest pending, dead letters, last failures", runStatus},
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, lookupEnv: lookupEnv}
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	switch name := args[0]; name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return c.run(ctx, e, []string{"--help"})
			}
		}
		usage(e.stdout)
		return exitOK
	case "-version", "--version":
		info, ok := debug.ReadBuildInfo()
		fmt.Fprintln(e.stdout, versionText(info, ok))
		return exitOK
	default:
		c, ok := commands[name]
		if !ok {
			fmt.Fprintf(e.stderr, "stairhook: unknown command %q%s\n", safeArg(name), didYouMean(name, slices.Sorted(maps.Keys(commands)), false))
			usage(e.stderr)
			return exitUsage
		}
		return c.run(ctx, e, args[1:])
	}
}

// versionText is what --version prints: the main module's version
// ("devel" for a build from a checkout), and the VCS revision, commit time
// and a local-changes mark that go build records from the checkout.
func versionText(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "stairhook (no build information)"
	}
	version := info.Main.Version
	if version == "" || version == "(devel)" {
		version = "devel"
	}
	var details []string
	vcs := map[string]string{}
	for _, s := range info.Settings {
		vcs[s.Key] = s.Value
	}
	if rev := vcs["vcs.revision"]; rev != "" {
		details = append(details, "revision "+rev[:min(len(rev), 12)])
	}
	if t := vcs["vcs.time"]; t != "" {
		details = append(details, t)
	}
	if vcs["vcs.modified"] == "true" {
		details = append(details, "with local changes")
	}
	if info.GoVersion != "" {
		details = append(details, info.GoVersion)
	}
	if len(details) == 0 {
		return "stairhook " + version
	}
	return "stairhook " + version + " (" + strings.Join(details, ", ") + ")"
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: stairhook <command> [flags]")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-11s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'stairhook <command> --help' for the flags of a command, 'stairhook --version' for the version.")
	fmt.Fprintln(w, "Exit status: 0 success, 1 failed check or delivery, 2 usage error (flag, argument or config).")
}

// safeArg shows a command name in an error only when it cannot be a
// secret pasted in the wrong place.
func safeArg(s string) string {
	if len(s) > 32 || strings.Contains(s, "whsec_") {
		return "…"
	}
	return s
}

// newFlagSet returns a FlagSet whose usage text is synopsis, a description
// and the flag list, when there are flags. It writes nothing itself:
// parseFlags reports.
func newFlagSet(name, synopsis, description string) *flag.FlagSet {
	fs := flag.NewFlagSet("stairhook "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: stairhook %s\n\n%s\n", synopsis, strings.TrimSpace(description))
		if hasFlags(fs) {
			fmt.Fprint(w, "\nFlags:\n")
			printFlags(w, fs)
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// flagLine is the start of a flag's entry in flag.PrintDefaults' list.
var flagLine = regexp.MustCompile(`(?m)^  -([A-Za-z0-9][A-Za-z0-9-]+)`)

// printFlags is fs.PrintDefaults with the names in the --name form the
// synopsis and the messages use (one-letter flags such as -H keep one
// dash).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	var b strings.Builder
	out := fs.Output()
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(out)
	fmt.Fprint(w, flagLine.ReplaceAllString(b.String(), "  --$1"))
}

// flagName is how messages show a flag: --name, or -H for one letter.
func flagName(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// parseFlags parses args. When it returns ok false, the caller exits with
// code: 0 after --help (usage on stdout), 2 on a usage error (on stderr).
// Positional arguments are refused without echoing them: a secret pasted
// in the wrong place must not be printed.
func parseFlags(e *env, fs *flag.FlagSet, args []string) (code int, ok bool) {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(e.stdout)
		fs.Usage()
		return exitOK, false
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument (%d extra); flags take the form --name value", fs.NArg())
	}
	if err != nil {
		return usageError(e, fs, flagErrorText(fs, err)), false
	}
	return 0, true
}

// unknownSubcommand reports a first argument that names no subcommand of
// fs's command, with the nearest of names.
func unknownSubcommand(e *env, fs *flag.FlagSet, arg string, names ...string) int {
	return usageError(e, fs, fmt.Sprintf("unknown subcommand %q%s", safeArg(arg), didYouMean(arg, names, false)))
}

// usageError reports a usage problem and returns exitUsage.
func usageError(e *env, fs *flag.FlagSet, msg string) int {
	fmt.Fprintf(e.stderr, "%s: %s\nRun '%s --help' for usage.\n", fs.Name(), msg, fs.Name())
	return exitUsage
}

var (
	invalidValue = regexp.MustCompile(`^invalid (?:boolean )?value ".*" for (?:flag )?-(\S+): `)
	badSyntax    = regexp.MustCompile(`^bad flag syntax: .*`)
	notDefined   = regexp.MustCompile(`^flag provided but not defined: -(.*)$`)
	needsValue   = regexp.MustCompile(`^flag needs an argument: -(\S+)$`)
)

// flagErrorText is the flag package's message in the --name form, without
// the offending value, which the package quotes: it may be a secret given
// to the wrong flag. An unknown flag gets the nearest of fs's flags.
func flagErrorText(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := invalidValue.FindStringSubmatch(msg); m != nil {
		return "invalid value for flag " + flagName(m[1]) + ": " + msg[len(m[0]):]
	}
	if badSyntax.MatchString(msg) {
		return "bad flag syntax"
	}
	if m := notDefined.FindStringSubmatch(msg); m != nil {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		return "flag provided but not defined: " + safeArg(flagName(m[1])) + didYouMean(m[1], names, true)
	}
	if m := needsValue.FindStringSubmatch(msg); m != nil {
		return "flag needs an argument: " + flagName(m[1])
	}
	return msg
}

// failf prints an error for a failed operation and returns exitFail.
func failf(e *env, name, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "stairhook %s: %s\n", name, fmt.Sprintf(format, args...))
	return exitFail
}
