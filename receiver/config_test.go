package receiver

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func parseYAML(t *testing.T, data []byte) *yaml.Node {
	t.Helper()
	var n yaml.Node
	require.NoError(t, yaml.Unmarshal(data, &n))
	require.NotEmpty(t, n.Content)
	return n.Content[0]
}

func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// minimalConfig is the smallest valid configuration.
const minimalConfig = `
webhooks:
  - name: staircase
    secrets: [{secret: "` + testSecret + `"}]
    routes:
      - jira: {project: CS}
`

func TestParseConfigExample(t *testing.T) {
	data, err := os.ReadFile("../examples/receiver/config.yaml")
	require.NoError(t, err)
	vars := map[string]string{
		"JIRA_EMAIL": "bot@example.com", "JIRA_API_TOKEN": "tok-en=",
		"SMTP_USER": "alerts", "SMTP_PASSWORD": `p"a\ss'w#rd: {x}`,
		"STAIRHOOK_SECRET": testSecret,
	}
	cfg, err := ParseConfig(data, env(vars))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8080", cfg.Listen)
	assert.Equal(t, "./stairhook-outbox", cfg.Outbox)
	assert.Equal(t, StoreConfig{SQLite: "./stairhook.db"}, cfg.Store)
	assert.Equal(t, DeliveryConfig{Workers: 8, AttemptTimeout: 30 * time.Second, FirstRetry: 5 * time.Second,
		MaxRetry: time.Hour, GiveUpAfter: 72 * time.Hour}, cfg.Delivery)
	assert.Equal(t, 168*time.Hour, cfg.Retention)
	require.NotNil(t, cfg.Jira)
	assert.Equal(t, "tok-en=", cfg.Jira.APIToken)
	require.NotNil(t, cfg.SMTP)
	assert.Equal(t, vars["SMTP_PASSWORD"], cfg.SMTP.Password, "quotes, backslash and # survive expansion")
	assert.Equal(t, 587, cfg.SMTP.Port)
	require.Len(t, cfg.Webhooks, 1)
	w := cfg.Webhooks[0]
	assert.Equal(t, "staircase", w.Name)
	assert.Equal(t, 5*time.Minute, w.Tolerance)
	assert.Equal(t, []SecretConfig{{Label: "current", Secret: testSecret}}, w.Secrets)
	require.Len(t, w.Routes, 3)
	assert.Equal(t, []string{event.TypeChurnRisk, event.TypeChurnNotification, event.TypeExtremelyNegativeMessage}, w.Routes[0].When.Types)
	assert.Equal(t, map[string]string{"critical": "Highest", "high": "High"}, w.Routes[0].Jira.Priorities)
	assert.Nil(t, w.Routes[0].Email)
	assert.Equal(t, []string{"decision_maker", "champion"}, w.Routes[1].When.Roles)
	assert.Equal(t, []string{"csm@example.com"}, w.Routes[1].Email.To)
	assert.Equal(t, "New contact change at {{.Account.Name}}", w.Routes[1].Email.Subject)
	assert.NotNil(t, w.Routes[2].Slack)
	assert.NotNil(t, w.Routes[2].Teams)
	assert.Nil(t, cfg.Slack, "dry run unless the slack section is uncommented")
	assert.Equal(t, LimitsConfig{MaxConnections: 1024, MaxBodyBytesInFlight: 32 << 20}, cfg.Limits)

	// Every variable is required: each missing one is named.
	_, err = ParseConfig(data, env(nil))
	require.Error(t, err)
	for name := range vars {
		assert.Contains(t, err.Error(), "environment variable "+name+" is not set")
	}
	assert.NotContains(t, err.Error(), "STAIRHOOK_SECRET_OLD", "references in comments are not expanded")
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig([]byte(minimalConfig), nil)
	require.NoError(t, err)
	assert.Equal(t, DefaultListen, cfg.Listen)
	assert.Equal(t, DefaultOutbox, cfg.Outbox)
	assert.Equal(t, DefaultRetention, cfg.Retention)
	assert.Nil(t, cfg.Jira)
	assert.Nil(t, cfg.SMTP)
	assert.Equal(t, time.Duration(0), cfg.Webhooks[0].Tolerance)
}

func TestExpandEnv(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		want    string // the value of key "v" after parsing
		wantErr string
	}{
		{"double quotes keep everything", `v: "${X}"`, map[string]string{"X": "a\"b\\c\n\td ${Y} $$"}, "a\"b\\c\n\td ${Y} $$", ""},
		{"single quotes", `v: '${X}'`, map[string]string{"X": "it's"}, "it's", ""},
		{"single quotes refuse a newline", `v: '${X}'`, map[string]string{"X": "a\nb"}, "", "line 1: the value of ${X} contains a line break"},
		{"plain safe value", `v: ${X}`, map[string]string{"X": "redis://h:6379/0"}, "redis://h:6379/0", ""},
		{"plain unsafe value", `v: ${X}`, map[string]string{"X": "a: b"}, "", "write \"${NAME}\" in double quotes"},
		{"plain value with a quote", `v: ${X}`, map[string]string{"X": `x"`}, "", "in double quotes"},
		{"inside a longer plain scalar", `v: https://${H}/x`, map[string]string{"H": "example.com"}, "https://example.com/x", ""},
		{"several on a line", `v: "${A}-${B}"`, map[string]string{"A": "1", "B": "2"}, "1-2", ""},
		{"empty value", `v: "${X}"`, map[string]string{"X": ""}, "", ""},
		{"dollar escape", `v: "$${X} costs $5"`, nil, "${X} costs $5", ""},
		{"lone dollar", `v: a$b`, nil, "a$b", ""},
		{"comment ignored", "v: x # ${MISSING}", nil, "x", ""},
		{"hash inside quotes is not a comment", `v: "#${X}"`, map[string]string{"X": "1"}, "#1", ""},
		{"apostrophe in plain text is not a quote", `v: don't ${X}`, map[string]string{"X": "go"}, "don't go", ""},
		{"missing", `v: "${NOPE}"`, nil, "", "line 1: environment variable NOPE is not set"},
		{"malformed name", `v: "${1X}"`, nil, "", "malformed ${...} reference"},
		{"unclosed", `v: "${X"`, nil, "", "malformed ${...} reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs := expandEnv([]byte(tt.yaml), env(tt.env))
			if tt.wantErr != "" {
				require.NotEmpty(t, errs)
				err := errors.Join(errs...)
				assert.ErrorIs(t, err, ErrInvalidConfig)
				assert.Contains(t, err.Error(), tt.wantErr)
				for _, v := range tt.env {
					assert.NotContains(t, err.Error(), v)
				}
				return
			}
			require.Empty(t, errs)
			var got struct {
				V string `yaml:"v"`
			}
			d := &nodeDecoder{}
			var doc = parseYAML(t, out)
			d.decode(doc, reflectValue(&got), "")
			require.Empty(t, d.errs)
			assert.Equal(t, tt.want, got.V)
		})
	}
}

func TestParseConfigStrict(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown top-level key", minimalConfig + "colour: blue\n", []string{"colour: unknown key"}},
		{"unknown nested key", strings.Replace(minimalConfig, "project: CS", "project: CS, projekt: X", 1),
			[]string{"webhooks[0].routes[0].jira.projekt: unknown key"}},
		{"repeated key", "listen: a:1\nlisten: b:2\n" + minimalConfig, []string{"listen: repeated key"}},
		{"wrong type", strings.Replace(minimalConfig, "routes:", "tolerance: soon\n    routes:", 1),
			[]string{"webhooks[0].tolerance: expected a duration such as 30s or 5m"}},
		{"integer duration", strings.Replace(minimalConfig, "routes:", "tolerance: 300\n    routes:", 1),
			[]string{"webhooks[0].tolerance: expected a duration"}},
		{"list expected", "webhooks: staircase\n", []string{"webhooks: expected a list, found a single value"}},
		{"mapping expected", "store: [a]\n" + minimalConfig, []string{"store: expected a mapping (key: value), found a list"}},
		{"string expected", "outbox: {a: b}\n" + minimalConfig, []string{"outbox: expected a string, found a mapping"}},
		{"bad expires", strings.Replace(minimalConfig, `{secret:`, `{expires: someday, secret:`, 1),
			[]string{"webhooks[0].secrets[0].expires: expected a date-time"}},
		{"merge key", "base: &b {project: CS}\n" + minimalConfig, []string{"base: unknown key"}},
		{"syntax", "webhooks: [\n", []string{"YAML syntax"}},
		{"two documents", minimalConfig + "---\nlisten: x:1\n", []string{"more than one YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tt.yaml), nil)
			require.Error(t, err)
			assert.Nil(t, cfg)
			assert.ErrorIs(t, err, ErrInvalidConfig)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestParseConfigAliases(t *testing.T) {
	// Aliases are followed, so a list can be shared.
	cfg, err := ParseConfig([]byte(`
webhooks:
  - name: a
    secrets: &keys [{secret: "`+testSecret+`"}]
    routes: [{email: {to: &team [csm@example.com]}}]
  - name: b
    secrets: *keys
    routes: [{email: {to: *team}}]
`), nil)
	require.NoError(t, err)
	assert.Equal(t, cfg.Webhooks[0].Secrets, cfg.Webhooks[1].Secrets)
	assert.Equal(t, []string{"csm@example.com"}, cfg.Webhooks[1].Routes[0].Email.To)

	// An alias bomb (a long list aliased from many places) stops at the
	// node budget instead of expanding.
	var b strings.Builder
	b.WriteString("webhooks:\n  - name: x\n    secrets: [{secret: s}]\n    routes:\n")
	b.WriteString("      - email: {to: &t [" + strings.Repeat("a@example.com, ", 999) + "a@example.com]}\n")
	for i := 0; i < 999; i++ {
		b.WriteString("      - email: {to: *t}\n")
	}
	start := time.Now()
	_, err = ParseConfig([]byte(b.String()), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "more than 100000 YAML nodes")
	t.Logf("alias bomb rejected in %v", time.Since(start))
}

func TestParseConfigValidation(t *testing.T) {
	const bad = "whsec_dG9vLXNob3J0" // "too-short": 9 bytes
	cfg := `
listen: "localhost"
store: {redis: "http://user:hunter2@redis.example.com"}
retention: -1h
jira: {base_url: "ftp://x", email: "", api_token: ""}
webhooks:
  - name: Stair/Case
    secrets:
      - {label: a, secret: "` + bad + `"}
      - {label: a, secret: "` + testSecret + `"}
    tolerance: -5m
    routes:
      - when: {types: [""], severities: [high, " "]}
      - name: x
        jira: {project: "C S", labels: ["two words"]}
        email: {to: []}
      - name: x
        email: {to: [a@example.com], subject: "{{.Nope"}
  - name: empty
  - name: empty
    secrets: [{secret: ""}]
    routes: [{jira: {project: CS}}]
`
	_, err := ParseConfig([]byte(cfg), nil)
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"listen: must be host:port",
		"store.redis: must be a redis:// or rediss:// URL",
		"retention: must not be negative",
		"jira.base_url: ",
		"jira.email: ",
		"jira.api_token: ",
		"webhooks[0].name: must be 1 to 64 of a-z",
		"webhooks[0].secrets[0].secret: not a whsec_ secret",
		`webhooks[0].secrets[1].label: "a" is used by another secret`,
		"webhooks[0].tolerance: must be from 0 (the default, 5m) to 1h",
		"webhooks[0].routes[0].when.types[0]: must not be empty",
		"webhooks[0].routes[0].when.severities[1]: must not be empty",
		"webhooks[0].routes[0]: needs at least one sink",
		"webhooks[0].routes[1].jira.project: ",
		"webhooks[0].routes[1].jira.labels[0]: ",
		"webhooks[0].routes[1].email.to: ",
		`webhooks[0].routes[2].name: "x" is used by another route`,
		"webhooks[0].routes[2].email.subject: ",
		"webhooks[1].secrets: at least one secret is required",
		"webhooks[1].routes: at least one route is required",
		`webhooks[2].name: "empty" is used by another webhook`,
		"webhooks[2].secrets[0].secret: not a whsec_ secret (invalid secret: empty)",
	} {
		assert.Contains(t, msg, want)
	}
	// One error per problem, each usable with errors.Is.
	var joined interface{ Unwrap() []error }
	require.True(t, errors.As(err, &joined))
	for _, e := range joined.Unwrap() {
		assert.ErrorIs(t, e, ErrInvalidConfig, e.Error())
	}
	assert.NotContains(t, msg, "dG9vLXNob3J0", "a secret is never quoted")
	assert.NotContains(t, msg, "hunter2", "a Redis URL is never quoted")
}

func TestParseConfigNeverQuotesValues(t *testing.T) {
	// A secret in a key of the wrong type must not come back in the error.
	_, err := ParseConfig([]byte(`smtp: {host: h, port: "${P}", from: a@example.com}`+minimalConfig), env(map[string]string{"P": "s3cr3t-value"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "smtp.port: expected an integer")
	assert.NotContains(t, err.Error(), "s3cr3t-value")
}

func TestParseConfigRequiresWebhook(t *testing.T) {
	for _, data := range []string{"", "# nothing\n", "listen: 127.0.0.1:9000\n"} {
		_, err := ParseConfig([]byte(data), nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "webhooks: at least one webhook is required")
	}
}

func TestParseConfigTooLarge(t *testing.T) {
	data := []byte(minimalConfig + "#" + strings.Repeat("x", maxConfigBytes) + "\n")
	_, err := ParseConfig(data, nil)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "config larger than")
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(minimalConfig, testSecret, "${STAIRHOOK_TEST_SECRET}", 1)), 0o600))
	t.Setenv("STAIRHOOK_TEST_SECRET", testSecret)
	cfg, err := LoadConfig(path)
	require.NoError(t, err)
	assert.Equal(t, testSecret, cfg.Webhooks[0].Secrets[0].Secret)

	_, err = LoadConfig(filepath.Join(dir, "missing.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	require.NoError(t, os.WriteFile(path, []byte("listen: [\n"), 0o600))
	_, err = LoadConfig(path)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), path)
}

func TestDefaultConfig(t *testing.T) {
	cfg := DefaultConfig(testSecret, "", "")
	assert.Equal(t, DefaultListen, cfg.Listen)
	assert.Equal(t, DefaultOutbox, cfg.Outbox)
	assert.Empty(t, cfg.validate())
	require.Len(t, cfg.Webhooks, 1)
	assert.Equal(t, "staircase", cfg.Webhooks[0].Name)
	assert.Nil(t, cfg.Jira)
	assert.Nil(t, cfg.SMTP)
	for _, typ := range event.KnownTypes() {
		ev := &event.Event{Type: typ}
		var jira, email bool
		for _, r := range cfg.Webhooks[0].Routes {
			if r.When.matches(ev) {
				jira = jira || r.Jira != nil
				email = email || r.Email != nil
			}
		}
		assert.True(t, jira && email, typ)
	}

	cfg = DefaultConfig("not a secret", "127.0.0.1:0", t.TempDir())
	assert.Equal(t, "127.0.0.1:0", cfg.Listen)
	assert.NotEmpty(t, cfg.validate())
}

func TestConfigTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/config/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			_, err = ParseConfig(data, env(map[string]string{"SECRET": testSecret}))
			if strings.HasPrefix(filepath.Base(f), "invalid") {
				assert.ErrorIs(t, err, ErrInvalidConfig)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

func TestParseConfigHidesOddKeys(t *testing.T) {
	_, err := ParseConfig([]byte("${S}: 1\n"+minimalConfig), env(map[string]string{"S": testSecret}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "(key not shown): unknown key")
	assert.NotContains(t, err.Error(), "MfKQ9r8G")
}

func TestParseConfigSyntaxErrorHidesText(t *testing.T) {
	_, err := ParseConfig([]byte("listen: *${S}\n"), env(map[string]string{"S": testSecret}))
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "YAML syntax: unknown anchor (not shown) referenced")
	assert.NotContains(t, err.Error(), "MfKQ9r8G")
}

// TestParseConfigSyntaxErrorLines checks the line of each kind of YAML
// syntax error against the file, and that YAML's indicators are shown while
// the input is not.
func TestParseConfigSyntaxErrorLines(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"sequence never closed", "listen: 127.0.0.1:8080\nwebhooks:\n  - name: staircase\n    secrets: [{label: current, secret: \"${S}\"}\n    routes: []\n",
			"line 4: did not find expected ',' or ']'"},
		{"sequence never closed on line 1", "webhooks: [{name: a}\n",
			"line 1: did not find expected ',' or ']'"},
		{"sequence never closed, no final newline", "webhooks: [{name: a}",
			"line 1: did not find expected ',' or ']'"},
		{"mapping never closed", "listen: 127.0.0.1:8080\njira: {base_url: x\nwebhooks: []\n",
			"line 2: did not find expected ',' or '}'"},
		{"a sequence entry among keys", "listen: 127.0.0.1:8080\noutbox: x\n- webhooks\n",
			"line 3: did not find expected key"},
		{"a key at a wrong indentation", "listen: 127.0.0.1:8080\n  outbox: x\n",
			"line 2: mapping values are not allowed in this context"},
		{"a tab", "listen: 127.0.0.1:8080\n\toutbox: x\n",
			"line 2: found a tab character that violates indentation"},
		{"an unknown escape", "listen: 127.0.0.1:8080\noutbox: \"\\q\"\n",
			"line 2: found unknown escape character"},
		{"a string never closed", "listen: 127.0.0.1:8080\noutbox: \"x\nwebhooks: []\n",
			"line 2: found unexpected end of stream"}, // where the string starts
		{"an unknown anchor", "listen: 127.0.0.1:8080\noutbox: *${S}\n",
			"unknown anchor (not shown) referenced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), env(map[string]string{"S": testSecret}))
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Contains(t, err.Error(), "YAML syntax: "+tc.want)
			assert.NotContains(t, err.Error(), "MfKQ9r8G")
		})
	}
}

func TestParseConfigToleranceBound(t *testing.T) {
	for tol, ok := range map[string]bool{"1h": true, "61m": false, "0s": true} {
		_, err := ParseConfig([]byte(strings.Replace(minimalConfig, "routes:", "tolerance: "+tol+"\n    routes:", 1)), nil)
		if ok {
			assert.NoError(t, err, tol)
		} else {
			assert.ErrorContains(t, err, "webhooks[0].tolerance: must be from 0", tol)
		}
	}
}

// Every problem of every stage is reported at once: a missing variable,
// an unknown key, a value of the wrong type and the validation of what
// decoded, each once and with its path.
func TestParseConfigReportsEverything(t *testing.T) {
	data := []byte(`
listen: nowhere
jira: {base_url: "https://example.atlassian.net", email: "${JIRA_EMAIL}", api_token: t, colour: blue}
webhooks:
  - name: Bad Name
    secrets: [{secret: "` + testSecret + `"}]
    tolerance: soon
    routes:
      - jira: {project: ""}
      - email: {to: [not-an-address]}
`)
	cfg, err := ParseConfig(data, env(nil))
	require.Error(t, err)
	assert.Nil(t, cfg)
	var joined interface{ Unwrap() []error }
	require.ErrorAs(t, err, &joined)
	var got []string
	for _, e := range joined.Unwrap() {
		assert.ErrorIs(t, e, ErrInvalidConfig, e.Error())
		got = append(got, e.Error())
	}
	assert.ElementsMatch(t, []string{
		"line 3: environment variable JIRA_EMAIL is not set (referenced as ${JIRA_EMAIL})",
		"jira.colour: unknown key",
		"webhooks[0].tolerance: expected a duration such as 30s or 5m",
		"listen: must be host:port with a port from 0 to 65535, such as 127.0.0.1:8080",
		"jira.email: required (the Atlassian account the API token belongs to)",
		"webhooks[0].name: must be 1 to 64 of a-z, 0-9, _ and - (it is part of the URL)",
		"webhooks[0].routes[0].jira.project: required (a project key such as CS)",
		"webhooks[0].routes[1].email.to[0]: not an email address: mail: missing '@' or angle-addr",
	}, got)
	assert.NotContains(t, err.Error(), "soon", "values are never quoted")
	assert.NotContains(t, err.Error(), "blue")
}

// configWithTypes is minimalConfig whose route matches n types.
func configWithTypes(n int) []byte {
	types := strings.TrimSuffix(strings.Repeat("a,", n), ",")
	return []byte(strings.Replace(minimalConfig, "- jira: {project: CS}", "- jira: {project: CS}\n        when: {types: ["+types+"]}", 1))
}

func decodedNodes(t *testing.T, data []byte) int {
	t.Helper()
	d := &nodeDecoder{}
	var cfg Config
	d.decode(parseYAML(t, data), reflectValue(&cfg), "")
	return d.nodes
}

func TestParseConfigNodeLimit(t *testing.T) {
	// Each type adds one node: find the count that lands on the limit.
	base := decodedNodes(t, configWithTypes(1))
	n := maxConfigNodes - base + 1
	at := configWithTypes(n)
	require.Equal(t, maxConfigNodes, decodedNodes(t, at))
	cfg, err := ParseConfig(at, nil)
	require.NoError(t, err, "exactly at the limit")
	assert.Len(t, cfg.Webhooks[0].Routes[0].When.Types, n)

	_, err = ParseConfig(configWithTypes(n+1), nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "more than 100000 YAML nodes")
}

func TestParseConfigByteLimit(t *testing.T) {
	pad := func(n int) []byte {
		data := []byte(minimalConfig + "#")
		data = append(data, strings.Repeat("x", n-len(data)-1)...)
		return append(data, '\n')
	}
	at := pad(maxConfigBytes)
	require.Len(t, at, maxConfigBytes)
	_, err := ParseConfig(at, nil)
	require.NoError(t, err, "exactly at the limit")

	_, err = ParseConfig(pad(maxConfigBytes+1), nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "config larger than")

	// Variables count once expanded.
	long := strings.Repeat("y", 2048)
	data := pad(maxConfigBytes - 64)
	data = append(data, []byte("# x\nlisten: \"${LONG}\"\n")...)
	_, err = ParseConfig(data[:maxConfigBytes-1], env(map[string]string{"LONG": long}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "once ${...} are expanded")
}

// A missing variable on a line of its own is reported under the field it
// fills, once: not again as that field being required.
func TestParseConfigMissingVariableNamesItsField(t *testing.T) {
	data := []byte(`
jira:
  base_url: https://example.atlassian.net
  email: "${JIRA_EMAIL}"
  api_token: ${JIRA_TOKEN}
webhooks:
  - name: staircase
    secrets: [{secret: "` + testSecret + `"}, {secret: "${OLD}", label: old}]
    routes:
      - jira: {project: CS}
`)
	_, err := ParseConfig(data, env(nil))
	require.ErrorIs(t, err, ErrInvalidConfig)
	var joined interface{ Unwrap() []error }
	require.ErrorAs(t, err, &joined)
	var got []string
	for _, e := range joined.Unwrap() {
		got = append(got, e.Error())
	}
	assert.ElementsMatch(t, []string{
		"jira.email: environment variable JIRA_EMAIL is not set (referenced as ${JIRA_EMAIL}) (line 4)",
		"jira.api_token: environment variable JIRA_TOKEN is not set (referenced as ${JIRA_TOKEN}) (line 5)",
		// A flow mapping holds several values on one line: the line it is.
		"line 8: environment variable OLD is not set (referenced as ${OLD})",
		"webhooks[0].secrets[1].secret: not a whsec_ secret (invalid secret: empty)",
	}, got)
}

func TestParseConfigStoreAndDelivery(t *testing.T) {
	base := "webhooks: [{name: w, secrets: [{secret: \"" + testSecret + "\"}], routes: [{jira: {project: CS}}]}]\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"both stores", "store: {sqlite: a.db, postgres: \"postgres://127.0.0.1/x\"}\n", "store: set sqlite or postgres, not both"},
		{"not a postgres URL", "store: {postgres: \"mysql://u:hunter2@h/x\"}\n", "store.postgres: must be a postgres:// URL"},
		{"sqlite path with ?", "store: {sqlite: \"a.db?mode=ro\"}\n", "store.sqlite: must be a file path without ? or #"},
		{"negative workers", "delivery: {workers: -1}\n", "delivery.workers: must be from 1 to 1000"},
		{"too many workers", "delivery: {workers: 1001}\n", "delivery.workers: must be from 1 to 1000"},
		{"negative timeout", "delivery: {attempt_timeout: -1s}\n", "delivery.attempt_timeout: must not be negative"},
		{"first above max", "delivery: {first_retry: 2h, max_retry: 1h}\n", "delivery.first_retry: must not be longer than delivery.max_retry"},
		{"unknown key", "delivery: {worker: 3}\n", "delivery.worker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml+base), env(nil))
			require.ErrorIs(t, err, ErrInvalidConfig)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "hunter2", "a URL's password is never quoted")
		})
	}
	cfg, err := ParseConfig([]byte("store: {postgres: \"postgres://u:p@127.0.0.1:5432/x\"}\ndelivery: {workers: 1000, give_up_after: 1h}\n"+base), env(nil))
	require.NoError(t, err)
	assert.Equal(t, "postgres://u:p@127.0.0.1:5432/x", cfg.Store.Postgres)
	assert.Equal(t, 1000, cfg.Delivery.Workers)

	sc, err := ParseStore("sqlite:/var/lib/stairhook/db")
	require.NoError(t, err)
	assert.Equal(t, StoreConfig{SQLite: "/var/lib/stairhook/db"}, sc)
	_, err = ParseStore("redis://127.0.0.1")
	assert.Error(t, err)
}

func TestConfigForwardRoute(t *testing.T) {
	env := func(k string) (string, bool) {
		switch k {
		case "SECRET", "FORWARD_SECRET":
			return testSecret, true
		}
		return "", false
	}
	cfg, err := ParseConfig([]byte(`
webhooks:
  - name: staircase
    secrets: [{secret: "${SECRET}"}]
    routes:
      - name: hop
        forward: {url: "https://next.example/hooks", secret: "${FORWARD_SECRET}", headers: standard, extra_headers: {X-Tenant: acme}}
`), env)
	require.NoError(t, err)
	fw := cfg.Webhooks[0].Routes[0].Forward
	require.NotNil(t, fw)
	assert.Equal(t, "https://next.example/hooks", fw.URL)
	assert.Equal(t, "standard", fw.Headers)

	srv, err := NewServer(cfg, ServerOptions{Inline: true})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	assert.Contains(t, srv.hooks["staircase"].sinks, "staircase.hop.forward")

	// Checked with its path, and its URL and secret never quoted.
	_, err = ParseConfig([]byte(`
webhooks:
  - name: staircase
    secrets: [{secret: "${SECRET}"}]
    routes: [{forward: {url: "http://user:hunter2@next.example/x", secret: "whsec_nope"}}]
`), env)
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "webhooks[0].routes[0].forward")
	assert.NotContains(t, err.Error(), "hunter2")
	assert.NotContains(t, err.Error(), "whsec_nope")

	// A sink of one's own cannot take a forward sink's name.
	_, _, errs := customSinks(cfg, []Sink{&fakeSink{name: "staircase.hop.forward"}})
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "built from the configuration")
}

func TestConfigSlackAndTeams(t *testing.T) {
	env := func(k string) (string, bool) {
		switch k {
		case "SECRET":
			return testSecret, true
		case "SLACK_BOT_TOKEN":
			return "xoxb-test-token", true
		}
		return "", false
	}
	routes := `
webhooks:
  - name: staircase
    secrets: [{secret: "${SECRET}"}]
    routes:
      - name: chat
        slack: {channel: "#cs-alerts"}
        teams: {}
`
	// Without connection sections both are dry runs into the outbox.
	outbox := t.TempDir()
	cfg, err := ParseConfig([]byte("outbox: "+outbox+routes), env)
	require.NoError(t, err)
	srv, err := NewServer(cfg, ServerOptions{Inline: true})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	secret, err := verify.ParseSecret(testSecret)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, verifytest.NewRequest(secret, "evt_chat", time.Now(), "/webhooks/staircase", eventBody(t, event.TypeChurnRisk, "evt_chat", nil)))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	for _, kind := range []string{"slack", "teams"} {
		files, err := os.ReadDir(filepath.Join(outbox, kind))
		require.NoError(t, err, kind)
		require.Len(t, files, 1, kind)
		assert.Contains(t, files[0].Name(), "staircase.chat."+kind)
	}

	// A bot token needs the route's channel; errors name the path and
	// never quote the token.
	_, err = ParseConfig([]byte(`slack: {token: "${SLACK_BOT_TOKEN}"}
webhooks:
  - name: staircase
    secrets: [{secret: "${SECRET}"}]
    routes: [{name: chat, slack: {}}]
`), env)
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "webhooks[0].routes[0].slack")
	assert.NotContains(t, err.Error(), "xoxb-test-token")

	// Teams needs a URL from the route or the teams section.
	_, err = ParseConfig([]byte(`teams: {}
webhooks:
  - name: staircase
    secrets: [{secret: "${SECRET}"}]
    routes: [{name: chat, teams: {}}]
`), env)
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "teams")
}
