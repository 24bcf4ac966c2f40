package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver"
	"github.com/stairhook/stairhook/receiver/queue"
	"github.com/stairhook/stairhook/verify"
)

// TestMain fails the run when a test wrote into the package folder the
// database or the outbox that serve, migrate and deadletter use by default:
// every test gives them a --store and an --outbox of its own, so no test
// sees another's (or an earlier run's) queued jobs.
func TestMain(m *testing.M) {
	before := defaultPaths()
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	if after := defaultPaths(); !maps.Equal(before, after) {
		fmt.Fprintf(os.Stderr, "a test wrote into the package folder (before %v, after %v): give serve, migrate and deadletter a --store and serve an --outbox in t.TempDir()\n", before, after)
		code = 1
	}
	os.Exit(code)
}

// defaultPaths describes what exists of the default database and outbox
// in the working directory.
func defaultPaths() map[string]string {
	db := strings.TrimPrefix(queue.DefaultStore, "sqlite:")
	return testenv.Snapshot(db, db+"-wal", db+"-shm", db+"-journal", receiver.DefaultOutbox)
}

// result is what one in-process run of the command produced.
type result struct {
	code           int
	stdout, stderr string
}

// invoke runs the command in-process with the given environment and
// standard input.
func invoke(t *testing.T, environ map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut testenv.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut, func(k string) (string, bool) { v, ok := environ[k]; return v, ok })
	return result{code, out.String(), errOut.String()}
}

// fixture is a secret and what leaks of it would look like.
type fixture struct {
	secret verify.Secret
	text   string // whsec_…
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	s, err := verify.NewSecret()
	require.NoError(t, err)
	return fixture{s, s.Encode()}
}

// assertNoSecret fails when out contains the secret in any form: its text,
// its base64 part or its raw key bytes.
func assertNoSecret(t *testing.T, out string, f fixture) {
	t.Helper()
	b64 := strings.TrimPrefix(f.text, verify.SecretPrefix)
	key, _ := base64.StdEncoding.DecodeString(b64)
	assert.NotContains(t, out, b64, "the secret's text leaked")
	assert.NotContains(t, out, string(key), "the raw key leaked")
	assert.NotContains(t, out, hex.EncodeToString(key), "the key leaked as hex")
}

const (
	testTS = int64(1_764_115_200)
	body1  = `{"id":"evt_cli_1","type":"churn_risk","account":{"id":"acc_1"}}`
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// parseHeaders reads "Name: value" lines.
func parseHeaders(t *testing.T, out string) http.Header {
	t.Helper()
	h := http.Header{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, value, ok := strings.Cut(line, ": ")
		require.True(t, ok, "line %q", line)
		h.Add(name, value)
	}
	return h
}

func TestHelpOnEveryCommand(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"}, {"help", "sign"},
		{"secret", "--help"}, {"secret", "new", "--help"},
		{"sign", "--help"}, {"sign", "-h"},
		{"verify", "--help"}, {"send", "--help"}, {"serve", "--help"},
		{"deadletter", "--help"}, {"deadletter", "list", "--help"}, {"deadletter", "replay", "--help"},
		{"migrate", "--help"}, {"help", "migrate"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			f := newFixture(t)
			r := invoke(t, map[string]string{"STAIRHOOK_SECRET": f.text}, "", args...)
			assert.Equal(t, exitOK, r.code)
			assert.Contains(t, r.stdout, "Usage: stairhook")
			assert.Empty(t, r.stderr)
			assertNoSecret(t, r.stdout, f)
		})
	}
	// Each command's help lists its own flags, in the --name form of the
	// usage line (one-letter flags such as -H keep one dash).
	for cmd, flagName := range map[string]string{"sign": "--curl", "verify": "--request", "send": "--retries", "serve": "--inline", "migrate": "--store"} {
		r := invoke(t, nil, "", cmd, "--help")
		assert.Regexp(t, "\n  "+flagName+"[ \n]", r.stdout, cmd)
		assert.Contains(t, r.stdout, "Flags:", cmd)
		assert.NotRegexp(t, `(?m)^  -[A-Za-z0-9]{2,}`, r.stdout, "%s: a flag listed with one dash", cmd)
	}
	r := invoke(t, nil, "", "verify", "--help")
	assert.Contains(t, r.stdout, "\n  -H 'Name: value'")
	// A command without flags of its own has no Flags: section.
	for _, args := range [][]string{{"secret", "--help"}, {"deadletter", "--help"}} {
		r := invoke(t, nil, "", args...)
		assert.Equal(t, exitOK, r.code)
		assert.NotContains(t, r.stdout, "Flags:", "%v", args)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}} {
		r := invoke(t, nil, "", args...)
		assert.Equal(t, exitOK, r.code)
		assert.Regexp(t, `^stairhook \S+`, r.stdout)
		assert.Empty(t, r.stderr)
	}
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"go install of a release", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.time", Value: "2026-01-02T15:04:05Z"}, {Key: "vcs.modified", Value: "false"},
		}}, true, "stairhook v1.2.3 (revision 0123456789ab, 2026-01-02T15:04:05Z, go1.26.0)"},
		{"a checkout with changes", &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"},
		}}, true, "stairhook devel (revision abc123, with local changes, go1.26.0)"},
		{"no VCS information", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "stairhook devel"},
		{"no build information", nil, false, "stairhook (no build information)"},
	} {
		assert.Equal(t, tc.want, versionText(tc.info, tc.ok), tc.name)
	}
}

func TestDidYouMean(t *testing.T) {
	commands := []string{"deadletter", "migrate", "secret", "send", "serve", "sign", "verify"}
	serveFlags := []string{"addr", "config", "inline", "outbox", "role", "store"}
	for _, tc := range []struct {
		typed      string
		candidates []string
		asFlag     bool
		want       string
	}{
		{"sing", commands, false, `; did you mean "sign"?`},    // a swap
		{"verfy", commands, false, `; did you mean "verify"?`}, // a letter left out
		{"deadleter", commands, false, `; did you mean "deadletter"?`},
		{"migrat", commands, false, `; did you mean "migrate"?`},
		{"Serve", commands, false, `; did you mean "serve"?`}, // case
		{"sen", commands, false, `; did you mean "send"?`},
		{"se", commands, false, ""},                               // secret, send or serve: unclear
		{"dead", commands, false, `; did you mean "deadletter"?`}, // a unique prefix
		{"frobnicate", commands, false, ""},
		{"whsec_c2hvcnQ=", commands, false, ""},
		{"adress", serveFlags, true, "; did you mean --addr?"}, // spelled out, with a slip
		{"address", serveFlags, true, "; did you mean --addr?"},
		{"confg", serveFlags, true, "; did you mean --config?"},
		{"rol", serveFlags, true, "; did you mean --role?"},
		{"x", serveFlags, true, ""},
		{"h", []string{"H", "headers"}, true, "; did you mean -H?"},
	} {
		assert.Equal(t, tc.want, didYouMean(tc.typed, tc.candidates, tc.asFlag), tc.typed)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "abc", 3}, {"abc", "", 3}, {"sign", "sign", 0},
		{"sing", "sign", 1}, {"sign", "sig", 1}, {"sign", "sigh", 1}, {"ca", "abc", 3},
		{"adress", "addr", 4}, {"adress", "address", 1},
	} {
		assert.Equal(t, tc.want, editDistance(tc.a, tc.b), "%q %q", tc.a, tc.b)
		assert.Equal(t, tc.want, editDistance(tc.b, tc.a), "%q %q", tc.b, tc.a)
	}
}

func TestUsageErrors(t *testing.T) {
	f := newFixture(t)
	bodyFile := writeFile(t, "body.json", body1)
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no command", nil, "Usage: stairhook"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"sign", "--frob"}, "flag provided but not defined: --frob\n"},
		{"unknown flag, single dash", []string{"sign", "-frob"}, "flag provided but not defined: --frob\n"},
		{"mistyped command", []string{"sing"}, `unknown command "sing"; did you mean "sign"?`},
		{"mistyped flag", []string{"serve", "--adress", "127.0.0.1:0"}, "flag provided but not defined: --adress; did you mean --addr?"},
		{"mistyped flag with a slip", []string{"sign", "--secrte", f.text}, "did you mean --secret?"},
		{"flag prefix", []string{"send", "--ret", "2"}, "did you mean --retries?"},
		{"flag without its value", []string{"sign", "--id"}, "flag needs an argument: --id\n"},
		{"bad flag value", []string{"send", "--url", "http://127.0.0.1:1/", "--retries", "many"}, "invalid value for flag --retries: "},
		{"positional argument", []string{"sign", "extra"}, "unexpected argument"},
		{"bad timestamp", []string{"sign", "--secret", f.text, "--timestamp", "soon"}, "--timestamp must be Unix seconds"},
		{"bad id", []string{"sign", "--secret", f.text, "--id", "has space"}, "1 to 256 visible ASCII"},
		{"bad curl URL", []string{"sign", "--secret", f.text, "--curl", "ftp://x"}, "absolute http or https URL"},
		{"curl URL with a newline", []string{"sign", "--secret", f.text, "--curl", "http://x/\nrm -rf /"}, "control character"},
		{"invalid secret", []string{"sign", "--secret", "whsec_short"}, "invalid secret"},
		{"no secret", []string{"sign", "--secret-env", "NOPE"}, "set NOPE"},
		{"secret file missing", []string{"sign", "--secret-file", "/nonexistent/secret"}, "--secret-file"},
		{"secret without subcommand", []string{"secret"}, `missing subcommand: "new"`},
		{"secret unknown subcommand", []string{"secret", "rotate"}, `unknown subcommand "rotate"`},
		{"secret mistyped subcommand", []string{"secret", "nwe"}, `unknown subcommand "nwe"; did you mean "new"?`},
		{"sign --curl of a body with control characters", []string{"sign", "--secret", f.text, "--curl", "http://127.0.0.1:1/"}, "give this one with --body FILE"},
		{"sign --body missing", []string{"sign", "--secret", f.text, "--body", "/nonexistent/body.json"}, "--body: "},
		{"verify bad -H", []string{"verify", "--secret", f.text, "-H", "no colon"}, `want "Name: value"`},
		{"verify bad --now", []string{"verify", "--secret", f.text, "--now", "yesterday"}, "--now must be Unix seconds"},
		{"verify negative tolerance", []string{"verify", "--secret", f.text, "--tolerance", "-1"}, "must not be negative"},
		{"verify headers file missing", []string{"verify", "--secret", f.text, "--headers", "/nonexistent"}, "--headers"},
		{"verify request not HTTP", []string{"verify", "--secret", f.text, "--request", writeFile(t, "req", "hello\n")}, "not an HTTP/1.x request"},
		{"send without URL", []string{"send", "--secret", f.text}, "--url is required"},
		{"send bad URL", []string{"send", "--secret", f.text, "--url", "127.0.0.1:8080"}, "absolute http or https URL"},
		{"send unknown type", []string{"send", "--secret", f.text, "--url", "http://127.0.0.1:1/", "--type", "nope"}, `--type "nope" has no sample`},
		{"send too many retries", []string{"send", "--secret", f.text, "--url", "http://127.0.0.1:1/", "--retries", "5"}, "between 0 and 4"},
		{"send bad timeout", []string{"send", "--secret", f.text, "--url", "http://127.0.0.1:1/", "--timeout", "0s"}, "--timeout must be positive"},
		{"send body with type", []string{"send", "--secret", f.text, "--url", "http://127.0.0.1:1/", "--body", bodyFile, "--test"}, "cannot be combined"},
		{"send bad id", []string{"send", "--secret", f.text, "--url", "http://127.0.0.1:1/", "--id", "a b"}, "--id"},
		{"send --id differing from the body's", []string{"send", "--secret", f.text, "--url", "http://127.0.0.1:1/", "--body", bodyFile, "--id", "evt_other"}, "--id differs from the body's id"},
		{"deadletter without subcommand", []string{"deadletter"}, `"list" or "replay"`},
		{"deadletter unknown subcommand", []string{"deadletter", "resend"}, `unknown subcommand "resend"`},
		{"deadletter mistyped subcommand", []string{"deadletter", "lsit"}, `unknown subcommand "lsit"; did you mean "list"?`},
		{"replay --id and --all", []string{"deadletter", "replay", "--id", "1", "--all"}, "not both"},
		{"replay --id with --webhook", []string{"deadletter", "replay", "--id", "1", "--webhook", "w"}, "--webhook goes with --all"},
		{"serve --inline with --store", []string{"serve", "--inline", "--store", "sqlite:x.db"}, "no effect with --inline"},
		{"replay without --id or --all", []string{"deadletter", "replay"}, "give --id JOB or --all"},
		{"replay non-numeric --id", []string{"deadletter", "replay", "--id", "evt_1"}, "--id must be a job number"},
		{"replay zero --id", []string{"deadletter", "replay", "--id", "0"}, "--id must be a job number"},
		{"replay negative --id", []string{"deadletter", "replay", "--id", "-3"}, "--id must be a job number"},
		{"replay the old --url", []string{"deadletter", "replay", "--all", "--url", "http://127.0.0.1:1"}, "flag provided but not defined: --url"},
		{"replay bad --store", []string{"deadletter", "replay", "--all", "--store", "redis://127.0.0.1:6379"}, "--store (or $STAIRHOOK_STORE) must be"},
		{"list bad --store", []string{"deadletter", "list", "--store", "stairhook.db"}, "--store (or $STAIRHOOK_STORE) must be"},
		{"list empty SQLite path", []string{"deadletter", "list", "--store", "sqlite:"}, "--store (or $STAIRHOOK_STORE) must be"},
		{"list positional argument", []string{"deadletter", "list", "extra"}, "unexpected argument"},
		{"migrate bad --store", []string{"migrate", "--store", "mysql://127.0.0.1/db"}, "--store (or $STAIRHOOK_STORE) must be"},
		{"migrate SQLite path with ?", []string{"migrate", "--store", "sqlite:x.db?mode=memory"}, "--store (or $STAIRHOOK_STORE) must be"},
		{"migrate bad $STAIRHOOK_STORE", []string{"migrate"}, "--store (or $STAIRHOOK_STORE) must be"},
		{"migrate positional argument", []string{"migrate", "now"}, "unexpected argument"},
		{"serve bad secret env", []string{"serve", "--addr", "127.0.0.1:0"}, "invalid secret"},
		{"serve bad --store", []string{"serve", "--addr", "127.0.0.1:0", "--store", "stairhook.db"}, "--store (or $STAIRHOOK_STORE) must be"},
		{"serve bad $STAIRHOOK_STORE", []string{"serve", "--addr", "127.0.0.1:0"}, "--store (or $STAIRHOOK_STORE) must be"},
		{"serve bad --role", []string{"serve", "--addr", "127.0.0.1:0", "--role", "both"}, "--role must be all, accept or work"},
		{"serve --addr port out of range", []string{"serve", "--addr", "127.0.0.1:99999"}, "--addr must be host:port with a port from 0 to 65535"},
		{"serve --addr named port", []string{"serve", "--addr", "localhost:http"}, "--addr must be host:port"},
		{"serve --addr without port", []string{"serve", "--addr", "127.0.0.1"}, "--addr must be host:port"},
		{"serve --addr with a config", []string{"serve", "--config", writeFile(t, "c.yaml", "webhooks: []\n"), "--addr", "127.0.0.1:-1"}, "--addr must be host:port"},
		{"serve invalid config", []string{"serve", "--config", writeFile(t, "c.yaml", "webhooks: []\n"), "--addr", "127.0.0.1:0"}, "webhooks"},
		{"serve missing config", []string{"serve", "--config", "/nonexistent/stairhook.yaml"}, "/nonexistent/stairhook.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			environ := map[string]string{}
			switch tc.name {
			case "serve bad secret env":
				environ["STAIRHOOK_SECRET"] = "whsec_dG9vIHNob3J0"
			case "migrate bad $STAIRHOOK_STORE", "serve bad $STAIRHOOK_STORE":
				environ["STAIRHOOK_STORE"] = "file:stairhook.db"
			}
			stdin := body1
			if strings.Contains(tc.name, "control characters") {
				stdin = "{\"id\":\"evt_1\"}\x1b[2J"
			}
			r := invoke(t, environ, stdin, tc.args...)
			assert.Equal(t, exitUsage, r.code, "stderr: %s", r.stderr)
			assert.Contains(t, r.stderr, tc.want)
			assert.NotContains(t, r.stderr, "listen:", "a flag's error names the flag")
			assert.Empty(t, r.stdout)
			assertNoSecret(t, r.stdout+r.stderr, f)
		})
	}
}

func TestSecretNew(t *testing.T) {
	r := invoke(t, nil, "", "secret", "new")
	require.Equal(t, exitOK, r.code)
	text := strings.TrimSpace(r.stdout)
	assert.True(t, strings.HasPrefix(text, "whsec_"))
	_, err := verify.ParseSecret(text)
	require.NoError(t, err)
	assert.NotEqual(t, text, strings.TrimSpace(invoke(t, nil, "", "secret", "new").stdout), "each secret is fresh")

	r = invoke(t, nil, "", "secret", "new", "--json")
	require.Equal(t, exitOK, r.code)
	var out map[string]string
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.Len(t, out, 2)
	_, err = verify.ParseSecret(out["secret"])
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(out["secret"]))
	assert.Equal(t, hex.EncodeToString(sum[:]), out["sha256"])
}

func TestSignMatchesSigner(t *testing.T) {
	f := newFixture(t)
	r := invoke(t, nil, body1, "sign", "--secret", f.text, "--id", "evt_x", "--timestamp", strconv.FormatInt(testTS, 10))
	require.Equal(t, exitOK, r.code, r.stderr)
	got := parseHeaders(t, r.stdout)
	signer, err := verify.NewSigner(f.secret)
	require.NoError(t, err)
	want, err := signer.Sign("evt_x", time.Unix(testTS, 0), []byte(body1))
	require.NoError(t, err)
	assert.Equal(t, want, got)

	t.Run("id defaults to the body's id", func(t *testing.T) {
		r := invoke(t, nil, body1, "sign", "--secret", f.text)
		require.Equal(t, exitOK, r.code)
		assert.Equal(t, "evt_cli_1", parseHeaders(t, r.stdout).Get("X-Staircase-Id"))
	})
	t.Run("id defaults to evt_ and random otherwise", func(t *testing.T) {
		r := invoke(t, nil, "not json", "sign", "--secret", f.text)
		require.Equal(t, exitOK, r.code)
		assert.Regexp(t, `^evt_[0-9a-f]{24}$`, parseHeaders(t, r.stdout).Get("X-Staircase-Id"))
	})
	t.Run("secret from the environment and from a file", func(t *testing.T) {
		a := invoke(t, map[string]string{"MY_SECRET": f.text}, body1, "sign", "--secret-env", "MY_SECRET", "--timestamp", "1")
		b := invoke(t, nil, body1, "sign", "--secret-file", writeFile(t, "s", "\n  "+f.text+"\n"), "--timestamp", "1")
		c := invoke(t, map[string]string{"STAIRHOOK_SECRET": f.text}, body1, "sign", "--timestamp", "1")
		require.Equal(t, exitOK, a.code)
		assert.Equal(t, a.stdout, b.stdout)
		assert.Equal(t, a.stdout, c.stdout)
	})
	t.Run("rotation signs with every secret", func(t *testing.T) {
		g := newFixture(t)
		r := invoke(t, nil, body1, "sign", "--secret", f.text, "--secret", g.text)
		require.Equal(t, exitOK, r.code)
		assert.Len(t, strings.Fields(parseHeaders(t, r.stdout).Get("X-Staircase-Signature")), 2)
	})
}

func TestShellQuote(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, s := range []string{"", "plain", "with space", "it's", `'`, `''`, `$HOME`, "`id`", `\n`, "a\nb", `"q"`, "*", "!x", "a;b|c&d"} {
		out, err := exec.Command(sh, "-c", "printf %s "+shellQuote(s)).Output()
		require.NoError(t, err, s)
		assert.Equal(t, s, string(out))
	}
}

// TestSignCurlRuns runs the printed curl command through sh, with no
// standard input, and a fake curl that records its arguments: the body
// comes from the --body file (--data-binary @FILE) or is written into the
// command (--data-raw), and the signature verifies for it.
func TestSignCurlRuns(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	f := newFixture(t)
	body := `{"id":"evt_it's","note":"$HOME and ` + "`id`" + ` and '@-'"}` + "\n"
	target := "http://127.0.0.1:8080/webhooks/staircase?x=1&y='2'"
	dir := t.TempDir()
	bodyPath := filepath.Join(dir, "it's a body.json")
	require.NoError(t, os.WriteFile(bodyPath, []byte(body), 0o600))
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		data  string // the curl option that carries the body
	}{
		{"--body FILE", []string{"--body", bodyPath}, "", "--data-binary"},
		{"--body FILE, relative", []string{"--body", "it's a body.json"}, "", "--data-binary"},
		{"body from standard input", nil, body, "--data-raw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(dir)
			args := append([]string{"sign", "--secret", f.text, "--curl", target, "--timestamp", strconv.FormatInt(testTS, 10)}, tc.args...)
			r := invoke(t, nil, tc.stdin, args...)
			require.Equal(t, exitOK, r.code, r.stderr)
			assert.Contains(t, r.stderr, "within the receiver's tolerance")
			assert.NotRegexp(t, `--data-binary '?@-`, r.stdout, "the command reads nothing from its standard input")

			lines := runCurl(t, sh, r.stdout, t.TempDir())
			assert.Contains(t, lines, target)
			h := http.Header{}
			var got []byte
			for i, a := range lines {
				switch a {
				case "-H":
					name, value, _ := strings.Cut(lines[i+1], ": ")
					h.Add(name, value)
				case "--data-binary":
					require.Equal(t, tc.data, a)
					file, ok := strings.CutPrefix(lines[i+1], "@")
					require.True(t, ok, "--data-binary @FILE")
					assert.True(t, filepath.IsAbs(file), "the command runs from any folder")
					got, err = os.ReadFile(file)
					require.NoError(t, err)
				case "--data-raw":
					require.Equal(t, tc.data, a)
					got = []byte(lines[i+1])
				}
			}
			assert.Equal(t, "evt_it's", h.Get("X-Staircase-Id"))
			assert.Equal(t, body, string(got))
			v, err := verify.NewVerifier(verify.Options{Keys: []verify.Key{{Secret: f.secret}}, Now: func() time.Time { return time.Unix(testTS, 0) }})
			require.NoError(t, err)
			_, err = v.Verify(h, got)
			assert.NoError(t, err, "the curl command carries a valid signature")
		})
	}
}

// runCurl runs command through sh with a fake curl in dir that prints its
// arguments, one a line (a newline inside one is kept as \n by splitting
// on NUL), with standard input closed, and returns them.
func runCurl(t *testing.T, sh, command, dir string) []string {
	t.Helper()
	argsFile := filepath.Join(dir, "args")
	fake := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > " + argsFile + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "curl"), []byte(fake), 0o700))
	cmd := exec.Command(sh, "-c", command)
	cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdin = nil // /dev/null: a command that read its body from here would send nothing
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	args, err := os.ReadFile(argsFile)
	require.NoError(t, err)
	return strings.Split(strings.TrimSuffix(string(args), "\x00"), "\x00")
}

// TestURLPasswordNeverShown: a URL's basic-auth password is redacted
// wherever send shows the URL, and sign --curl passes the user to curl's
// --user, which asks for the password, instead of printing it.
func TestURLPasswordNeverShown(t *testing.T) {
	f := newFixture(t)
	const password = "S3cr3tPa55"
	t.Run("send", func(t *testing.T) {
		var gotUser, gotPassword string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			gotUser, gotPassword, _ = r.BasicAuth()
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		defer srv.Close()
		target := strings.Replace(srv.URL, "http://", "http://bot:"+password+"@", 1) + "/webhooks/staircase"
		r := invoke(t, nil, "", "send", "--url", target, "--secret", f.text)
		assert.Equal(t, exitFail, r.code)
		assert.Equal(t, "bot", gotUser)
		assert.Equal(t, password, gotPassword, "the password is sent, for basic authentication")
		assert.Contains(t, r.stdout, "POST "+strings.Replace(target, password, "xxxxx", 1)+" id ")
		assert.NotContains(t, r.stdout+r.stderr, password)

		srv.Close() // nothing listens now: the transport error quotes the URL
		r = invoke(t, nil, "", "send", "--url", target, "--secret", f.text)
		assert.Equal(t, exitFail, r.code)
		assert.Contains(t, r.stdout, "attempt 1: no response")
		assert.NotContains(t, r.stdout+r.stderr, password)
	})
	t.Run("sign --curl", func(t *testing.T) {
		sh, err := exec.LookPath("sh")
		if err != nil {
			t.Skip("no sh")
		}
		for target, user := range map[string]string{
			"http://bot:" + password + "@127.0.0.1:8080/webhooks/staircase": "bot",    // curl asks for the password
			"http://tok3n@127.0.0.1:8080/webhooks/staircase":                "tok3n:", // a user alone, as in the URL
		} {
			r := invoke(t, nil, body1, "sign", "--secret", f.text, "--curl", target)
			require.Equal(t, exitOK, r.code, r.stderr)
			assert.NotContains(t, r.stdout+r.stderr, password)
			lines := runCurl(t, sh, r.stdout, t.TempDir())
			assert.Contains(t, lines, "http://127.0.0.1:8080/webhooks/staircase")
			i := slices.Index(lines, "--user")
			require.GreaterOrEqual(t, i, 0, target)
			assert.Equal(t, user, lines[i+1])
		}
	})
}

// signed returns the headers sign prints for body at ts.
func signed(t *testing.T, f fixture, body string, ts int64) http.Header {
	t.Helper()
	r := invoke(t, nil, body, "sign", "--secret", f.text, "--id", "evt_v", "--timestamp", strconv.FormatInt(ts, 10))
	require.Equal(t, exitOK, r.code, r.stderr)
	return parseHeaders(t, r.stdout)
}

func hflags(h http.Header) []string {
	var out []string
	for _, name := range signedHeaders {
		if v := h.Get(name); v != "" {
			out = append(out, "-H", name+": "+v)
		}
	}
	return out
}

func TestVerifyValid(t *testing.T) {
	f := newFixture(t)
	h := signed(t, f, body1, testTS)
	now := strconv.FormatInt(testTS+12, 10)

	t.Run("-H", func(t *testing.T) {
		r := invoke(t, nil, body1, append([]string{"verify", "--secret", f.text, "--now", now}, hflags(h)...)...)
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Equal(t, "valid: key key1, id evt_v, signed 2025-11-26T00:00:00Z (12 s ago)\n", r.stdout)
	})
	t.Run("--headers file as sign prints it", func(t *testing.T) {
		out := invoke(t, nil, body1, "sign", "--secret", f.text, "--id", "evt_v", "--timestamp", strconv.FormatInt(testTS, 10)).stdout
		file := writeFile(t, "headers.txt", "# captured\r\n"+strings.ReplaceAll(out, "\n", "\r\n")+"\n")
		r := invoke(t, nil, body1, "verify", "--secret", f.text, "--now", now, "--headers", file)
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "valid: key key1, id evt_v")
	})
	t.Run("--request dump with Content-Length", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("POST /webhooks/staircase HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n")
		for _, name := range signedHeaders {
			b.WriteString(name + ": " + h.Get(name) + "\r\n")
		}
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body1), body1)
		r := invoke(t, nil, "stdin is ignored", "verify", "--secret", f.text, "--now", now, "--request", writeFile(t, "req.http", b.String()))
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "valid: key key1, id evt_v")
	})
	t.Run("--request hand-made dump without Content-Length", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("POST /webhooks/staircase HTTP/1.1\nHost: x\n")
		for _, name := range signedHeaders {
			b.WriteString(strings.ToLower(name) + ": " + h.Get(name) + "\n")
		}
		b.WriteString("\n" + body1)
		r := invoke(t, nil, "", "verify", "--secret", f.text, "--now", now, "--request", writeFile(t, "req.http", b.String()))
		require.Equal(t, exitOK, r.code, r.stderr)
	})
	t.Run("rotation keyring", func(t *testing.T) {
		g := newFixture(t)
		r := invoke(t, nil, body1, append([]string{"verify", "--secret", g.text, "--secret", f.text, "--now", now}, hflags(h)...)...)
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "valid: key key2")
	})
	t.Run("legacy body signature when allowed", func(t *testing.T) {
		m := hmacHex(t, f, body1)
		r := invoke(t, nil, body1, "verify", "--secret", f.text, "-H", "X-Staircase-Signature: sha256="+m, "--allow-body-signature")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "legacy scheme body")
	})
	t.Run("legacy secret digest when allowed", func(t *testing.T) {
		sum := sha256.Sum256([]byte(f.text))
		r := invoke(t, nil, "anything", "verify", "--secret", f.text, "-H", "X-Staircase-Signature: "+hex.EncodeToString(sum[:]), "--allow-secret-digest")
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "legacy scheme secret-digest")
	})
}

// hmacHex is the legacy body-only signature, HMAC-SHA256(key, body) in hex.
func hmacHex(t *testing.T, f fixture, body string) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(f.text, verify.SecretPrefix))
	require.NoError(t, err)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func TestVerifyInvalid(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t)
	pretty := "{\n  \"id\": \"evt_v\",\n  \"type\": \"churn_risk\"\n}"
	compact := `{"id":"evt_v","type":"churn_risk"}`
	tests := []struct {
		name    string
		secret  string
		headers http.Header
		body    string
		extra   []string
		want    []string // in stderr
	}{
		{"signed in the future", f.text, signed(t, f, body1, testTS+312), body1, nil,
			[]string{"invalid: timestamp too new: signed 312 s in the future", "hint: the sender's clock"}},
		{"signed too long ago", f.text, signed(t, f, body1, testTS-301), body1, nil,
			[]string{"invalid: timestamp too old: signed 301 s ago", "--now"}},
		{"tolerance widened", f.text, signed(t, f, body1, testTS-301), body1, []string{"--tolerance", "400"}, nil},
		{"re-serialized JSON", f.text, signed(t, f, compact, testTS), pretty, nil,
			[]string{"invalid: no matching signature", "it looks re-serialized"}},
		{"trailing newline added", f.text, signed(t, f, body1, testTS), body1 + "\n", nil,
			[]string{"a trailing newline was added"}},
		{"wrong secret", other.text, signed(t, f, body1, testTS), body1, nil,
			[]string{"invalid: no matching signature", "hint: check the secret"}},
		{"no headers", f.text, http.Header{}, body1, nil,
			[]string{"invalid: missing signature header", "-H 'Name: value'"}},
		{"legacy signature while not allowed", f.text, http.Header{"X-Staircase-Signature": {hmacHex(t, f, body1)}}, body1, nil,
			[]string{"invalid: malformed signature header", "AllowBodySignature"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"verify", "--secret", tc.secret, "--now", strconv.FormatInt(testTS, 10)}, hflags(tc.headers)...)
			r := invoke(t, nil, tc.body, append(args, tc.extra...)...)
			if tc.want == nil {
				assert.Equal(t, exitOK, r.code, r.stderr)
				return
			}
			assert.Equal(t, exitFail, r.code)
			assert.Empty(t, r.stdout)
			for _, w := range tc.want {
				assert.Contains(t, r.stderr, w)
			}
			assertNoSecret(t, r.stderr, f)
			assertNoSecret(t, r.stderr, other)
			for _, e := range strings.Fields(tc.headers.Get("X-Staircase-Signature")) {
				assert.NotContains(t, r.stderr, strings.TrimPrefix(e, "v1,"), "the received signature is never echoed")
			}
		})
	}
}

// eventReceiver is an httptest server with the verify middleware that
// records the events that passed.
type eventReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []map[string]any
	ids    []string
	status int
}

func newEventReceiver(t *testing.T, f fixture, status int) *eventReceiver {
	t.Helper()
	rcv := &eventReceiver{status: status}
	v, err := verify.NewVerifier(verify.Options{Keys: []verify.Key{{Label: "current", Secret: f.secret}}, OnError: func(*http.Request, error) {}})
	require.NoError(t, err)
	rcv.srv = httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &ev)
		rcv.mu.Lock()
		rcv.events = append(rcv.events, ev)
		rcv.ids = append(rcv.ids, r.Header.Get("X-Staircase-Id"))
		rcv.mu.Unlock()
		w.WriteHeader(rcv.status)
		fmt.Fprintf(w, `{"status":"received %d bytes"}`, len(b))
	})))
	t.Cleanup(rcv.srv.Close)
	return rcv
}

// seen returns the events and signed ids received so far.
func (r *eventReceiver) seen() ([]map[string]any, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.events...), append([]string(nil), r.ids...)
}

func TestSendSample(t *testing.T) {
	f := newFixture(t)
	rcv := newEventReceiver(t, f, http.StatusOK)
	r := invoke(t, map[string]string{"STAIRHOOK_SECRET": f.text}, "", "send", "--url", rcv.srv.URL+"/webhooks/staircase",
		"--type", "renewal", "--account", "Globex <Inc>", "--test")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Regexp(t, `attempt 1: 200 OK in \d+\.\dms\n\{"status":"received \d+ bytes"\}\n`, r.stdout)
	assert.Contains(t, r.stdout, "delivered evt_")
	assert.NotContains(t, r.stdout, "duplicate", "a first delivery is processed")
	events, ids := rcv.seen()
	require.Len(t, events, 1)
	ev := events[0]
	assert.Equal(t, ids[0], ev["id"], "the body's id is the signed id")
	assert.Regexp(t, `^evt_[0-9a-f]{24}$`, ev["id"])
	assert.Equal(t, "renewal", ev["type"])
	assert.Equal(t, true, ev["test"])
	acc := ev["account"].(map[string]any)
	assert.Equal(t, "Globex <Inc>", acc["name"])
	assert.NotContains(t, fmt.Sprint(ev["signal"]), "Acme Corp", "the sample's account name is replaced in the signal too")
	assertNoSecret(t, r.stdout+r.stderr, f)

	t.Run("fresh id each time", func(t *testing.T) {
		r := invoke(t, map[string]string{"STAIRHOOK_SECRET": f.text}, "", "send", "--url", rcv.srv.URL)
		require.Equal(t, exitOK, r.code, r.stderr)
		events, _ := rcv.seen()
		require.Len(t, events, 2)
		assert.NotEqual(t, events[0]["id"], events[1]["id"])
		assert.Equal(t, false, events[1]["test"])
		assert.Equal(t, "churn_risk", events[1]["type"])
	})
	t.Run("--body keeps its bytes and id", func(t *testing.T) {
		r := invoke(t, nil, "", "send", "--url", rcv.srv.URL, "--secret", f.text, "--body", writeFile(t, "b.json", body1))
		require.Equal(t, exitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, fmt.Sprintf(`{"status":"received %d bytes"}`, len(body1)))
		_, ids := rcv.seen()
		assert.Equal(t, "evt_cli_1", ids[len(ids)-1])
	})
	t.Run("--id differing from the body is refused before sending", func(t *testing.T) {
		before, _ := rcv.seen()
		r := invoke(t, nil, "", "send", "--url", rcv.srv.URL, "--secret", f.text, "--body", writeFile(t, "b.json", body1), "--id", "evt_other")
		require.Equal(t, exitUsage, r.code, r.stderr)
		assert.Contains(t, r.stderr, "--id differs from the body's id")
		after, _ := rcv.seen()
		assert.Len(t, after, len(before), "nothing was sent")
	})
	t.Run("--id equal to the body's", func(t *testing.T) {
		r := invoke(t, nil, "", "send", "--url", rcv.srv.URL, "--secret", f.text, "--body", writeFile(t, "b.json", strings.Replace(body1, "evt_cli_1", "evt_cli_2", 1)), "--id", "evt_cli_2")
		require.Equal(t, exitOK, r.code, r.stderr)
		_, ids := rcv.seen()
		assert.Equal(t, "evt_cli_2", ids[len(ids)-1])
	})
	t.Run("redelivery of the same id is a duplicate", func(t *testing.T) {
		before, _ := rcv.seen()
		r := invoke(t, nil, "", "send", "--url", rcv.srv.URL, "--secret", f.text, "--body", writeFile(t, "b.json", body1))
		require.Equal(t, exitOK, r.code, r.stderr)
		after, _ := rcv.seen()
		assert.Len(t, after, len(before), "the middleware answered the duplicate itself")
		assert.Regexp(t, `attempt 1: 200 OK in \d+\.\dms \(duplicate: already processed\)\n`, r.stdout)
		assert.Contains(t, r.stdout, "delivered evt_cli_1 in 1 attempt(s) (duplicate: already processed)\n")
	})
}

func TestSendFailures(t *testing.T) {
	f := newFixture(t)
	t.Run("wrong secret is rejected permanently", func(t *testing.T) {
		rcv := newEventReceiver(t, newFixture(t), http.StatusOK)
		r := invoke(t, nil, "", "send", "--url", rcv.srv.URL, "--secret", f.text)
		assert.Equal(t, exitFail, r.code)
		assert.Contains(t, r.stdout, "attempt 1: 401 Unauthorized")
		assert.Contains(t, r.stdout, "no_matching_signature")
		assert.Contains(t, r.stderr, "rejected by the receiver: status 401")
		assertNoSecret(t, r.stdout+r.stderr, f)
	})
	t.Run("503 without retries", func(t *testing.T) {
		rcv := newEventReceiver(t, f, http.StatusServiceUnavailable)
		r := invoke(t, nil, "", "send", "--url", rcv.srv.URL, "--secret", f.text)
		assert.Equal(t, exitFail, r.code)
		assert.Contains(t, r.stdout, "attempt 1: 503 Service Unavailable")
		assert.Contains(t, r.stderr, "--retries N")
	})
	t.Run("nothing listening", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		r := invoke(t, nil, "", "send", "--url", srv.URL, "--secret", f.text)
		assert.Equal(t, exitFail, r.code)
		assert.Contains(t, r.stdout, "attempt 1: no response")
		assertNoSecret(t, r.stdout+r.stderr, f)
	})
	t.Run("duplicate header on a failure is not a duplicate", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(verify.DuplicateHeader, "true")
			w.WriteHeader(http.StatusConflict)
		}))
		defer srv.Close()
		r := invoke(t, nil, "", "send", "--url", srv.URL, "--secret", f.text)
		assert.Equal(t, exitFail, r.code)
		assert.Contains(t, r.stdout, "attempt 1: 409 Conflict")
		assert.NotContains(t, r.stdout+r.stderr, "duplicate")
	})
	t.Run("hostile response body is quoted", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(400)
			_, _ = w.Write([]byte("bad\x1b[2Jrequest"))
		}))
		defer srv.Close()
		r := invoke(t, nil, "", "send", "--url", srv.URL, "--secret", f.text)
		assert.Equal(t, exitFail, r.code)
		assert.NotContains(t, r.stdout, "\x1b")
		assert.Contains(t, r.stdout, `"bad\x1b[2Jrequest"`)
	})
}

// TestSecretsNeverEchoed drives failure paths with the secret in the
// places a hurried user puts it.
func TestSecretsNeverEchoed(t *testing.T) {
	f := newFixture(t)
	b64 := strings.TrimPrefix(f.text, verify.SecretPrefix)
	environ := map[string]string{"STAIRHOOK_SECRET": f.text}
	for _, args := range [][]string{
		{f.text},
		{"sign", f.text},
		{"sign", "--timestamp", f.text},
		{"sign", "--id", f.text + " x"},
		{"sign", "--curl", f.text},
		{"sign", "--curl", "http://bot:" + b64 + "@127.0.0.1:1/", "--timestamp", "x"},
		{"sign", "--body", f.text},
		{"sign", "--body", b64},
		{"sign", "--secret-file", f.text},
		{"sign", "--secret-file", b64},
		{"verify", "--headers", f.text},
		{"verify", "--request", b64},
		{"serve", "--config", f.text},
		{"deadletter", "list", "--config", b64},
		{"send", "--url", "http://127.0.0.1:1/", "--body", f.text},
		{"sing", f.text},
		{b64[:10]},
		{"secret", f.text},
		{"secret", b64[:10]},
		{"deadletter", f.text},
		{"sign", "--secrte", f.text},
		{"serve", "--adress", f.text},
		{"serve", "--addr", "127.0.0.1:" + b64[:8]},
		{"sign", "--" + f.text},
		{"sign", "--secret", f.text + "x"},
		{"sign", "--secret", "whsec_" + b64[:20]},
		{"verify", "--secret", f.text, "--now", f.text},
		{"verify", "--secret", f.text, "--tolerance", f.text},
		{"verify", "-H", f.text},
		{"verify", "-H", "X-Staircase-Signature: v1," + b64},
		{"verify", "--request", writeFile(t, "r", "POST / HTTP/1.1\r\nbad header "+f.text+"\r\n\r\n")},
		{"verify", "--headers", writeFile(t, "h", "X-Staircase-Id "+f.text+"\n")},
		{"send", "--url", f.text},
		{"send", "--url", "http://127.0.0.1:1/", "--type", f.text},
		{"send", "--url", "http://127.0.0.1:1/", "--retries", f.text},
		{"send", "--url", "http://127.0.0.1:1/", "--timeout", f.text},
		{"send", "--url", "http://127.0.0.1:1/", "--test=" + f.text},
		{"send", "--url", "http://127.0.0.1:1/"},
		{"send", "--url", "http://bot:" + b64 + "@127.0.0.1:1/"},
		{"send", "--url", "http://127.0.0.1:1/", "--body", writeFile(t, "b.json", body1), "--id", f.text},
		{"serve", "--addr", f.text},
		{"deadletter", "list", "--config", writeFile(t, "c.yaml", "webhooks: [{name: x, secrets: [{secret: \""+f.text+"x\"}]}]\n")},
		{"deadletter", "replay", "--id", f.text},
		{"deadletter", "replay", "--all", "--store", f.text},
		{"deadletter", "list", "--webhook", "x", "--store", "sqlite:" + f.text + "?"},
		{"migrate", "--store", "postgres://u:" + b64 + "@127.0.0.1:1/db%"},
		{"serve", "--store", f.text},
		{"serve", "--role", f.text},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := invoke(t, environ, body1, args...)
			assert.NotEqual(t, exitOK, r.code)
			assertNoSecret(t, r.stdout+r.stderr, f)
		})
	}
}

// A password with a "/" (half of base64's alphabet is safe, that one is
// not) ends the URL's host early: the password would be in the path, and
// in every line that shows the URL. It is refused without being shown.
func TestURLWithUnescapedPasswordRefused(t *testing.T) {
	for _, raw := range []string{
		"http://bot:/s3cr3t@127.0.0.1:1/webhooks/staircase",
		"http://bot:a?s3cr3t@127.0.0.1:1/",
		"http://bot:a#s3cr3t@127.0.0.1:1/",
	} {
		for _, args := range [][]string{
			{"send", "--url", raw},
			{"sign", "--curl", raw, "--id", "evt_1"},
		} {
			r := invoke(t, map[string]string{"STAIRHOOK_SECRET": newFixture(t).text}, "{}", args...)
			assert.Equal(t, exitUsage, r.code, "%v: %s", args, r.stderr)
			assert.NotContains(t, r.stdout+r.stderr, "s3cr3t", "%v", args)
			if strings.HasPrefix(raw, "http://bot:/") { // parses, with the password in the path
				assert.Contains(t, r.stderr, "percent-encode")
			}
		}
	}
	u, err := parseURL("http://bot:%2Fs3cr3t@127.0.0.1:1/x")
	require.NoError(t, err, "an escaped password is fine")
	assert.Equal(t, "http://bot:xxxxx@127.0.0.1:1/x", u.Redacted())
}
