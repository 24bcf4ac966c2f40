package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/stairhook/stairhook/receiver"
	"github.com/stairhook/stairhook/verify"
)

const testSecret = "whsec_c3RhaXJob29rLWxhbWJkYS10ZXN0LXNlY3JldC0wMQ=="

const configYAML = `
outbox: /var/stairhook
webhooks:
  - name: staircase
    secrets: [{label: current, secret: "${WEBHOOK_SECRET}"}]
    routes:
      - jira: {project: CS}
`

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(file, []byte(configYAML), 0o600))
	t.Setenv("WEBHOOK_SECRET", testSecret) // for the file, which LoadConfig expands from the process environment

	t.Run("inline YAML", func(t *testing.T) {
		cfg, err := loadConfig(env(map[string]string{"STAIRHOOK_CONFIG": configYAML, "WEBHOOK_SECRET": testSecret}), "/tmp")
		require.NoError(t, err)
		assert.Equal(t, "staircase", cfg.Webhooks[0].Name)
		assert.Equal(t, testSecret, cfg.Webhooks[0].Secrets[0].Secret)
		assert.Equal(t, "/var/stairhook", cfg.Outbox, "an absolute outbox stays")
	})
	t.Run("inline flow style on one line", func(t *testing.T) {
		src := `{webhooks: [{name: hook, secrets: [{secret: "${WEBHOOK_SECRET}"}], routes: [{email: {to: [a@example.com]}}]}]}`
		cfg, err := loadConfig(env(map[string]string{"STAIRHOOK_CONFIG": src, "WEBHOOK_SECRET": testSecret}), "/tmp")
		require.NoError(t, err)
		assert.Equal(t, "hook", cfg.Webhooks[0].Name)
		assert.Equal(t, filepath.Join("/tmp", receiver.DefaultOutbox), cfg.Outbox, "the default outbox goes under the temporary directory")
	})
	t.Run("file path", func(t *testing.T) {
		cfg, err := loadConfig(env(map[string]string{"STAIRHOOK_CONFIG": file, "WEBHOOK_SECRET": testSecret}), "/tmp")
		require.NoError(t, err)
		assert.Equal(t, "staircase", cfg.Webhooks[0].Name)
		assert.Equal(t, testSecret, cfg.Webhooks[0].Secrets[0].Secret)
	})
	t.Run("relative file path", func(t *testing.T) {
		t.Chdir(dir)
		cfg, err := loadConfig(env(map[string]string{"STAIRHOOK_CONFIG": "./config.yaml", "WEBHOOK_SECRET": testSecret}), "/tmp")
		require.NoError(t, err)
		assert.Equal(t, "staircase", cfg.Webhooks[0].Name)
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := loadConfig(env(map[string]string{"STAIRHOOK_CONFIG": filepath.Join(dir, "nope.yaml")}), "/tmp")
		require.ErrorIs(t, err, os.ErrNotExist)
		assert.NotContains(t, err.Error(), "nope.yaml", "the value is never quoted")
	})
	t.Run("file with a config error", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.yaml")
		require.NoError(t, os.WriteFile(bad, []byte("webhooks: []\n"), 0o600))
		_, err := loadConfig(env(map[string]string{"STAIRHOOK_CONFIG": bad}), "/tmp")
		require.ErrorIs(t, err, receiver.ErrInvalidConfig)
		assert.Contains(t, err.Error(), "STAIRHOOK_CONFIG (a file)")
		assert.NotContains(t, err.Error(), dir)
	})
	t.Run("inline with a missing variable", func(t *testing.T) {
		_, err := loadConfig(env(map[string]string{"STAIRHOOK_CONFIG": configYAML}), "/tmp")
		require.ErrorIs(t, err, receiver.ErrInvalidConfig)
		assert.Contains(t, err.Error(), "WEBHOOK_SECRET")
	})
	t.Run("default from STAIRHOOK_SECRET", func(t *testing.T) {
		tmp := t.TempDir()
		cfg, err := loadConfig(env(map[string]string{"STAIRHOOK_SECRET": testSecret}), tmp)
		require.NoError(t, err)
		require.Len(t, cfg.Webhooks, 1)
		assert.Equal(t, "staircase", cfg.Webhooks[0].Name)
		assert.Nil(t, cfg.Jira, "the default configuration uses the dry-run sinks")
		assert.Equal(t, filepath.Join(tmp, receiver.DefaultOutbox), cfg.Outbox)
		srv, err := newServer(cfg, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		require.NoError(t, srv.Close())
	})
	t.Run("invalid STAIRHOOK_SECRET", func(t *testing.T) {
		_, err := loadConfig(env(map[string]string{"STAIRHOOK_SECRET": "whsec_c2hvcnQ="}), "/tmp")
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "c2hvcnQ", "the secret is never quoted")
	})
	t.Run("nothing set", func(t *testing.T) {
		_, err := loadConfig(env(nil), "/tmp")
		require.True(t, errors.Is(err, errNoConfig))
	})
}

func TestIsPath(t *testing.T) {
	for src, want := range map[string]bool{
		"/var/task/config.yaml":   true,
		"./config.yaml":           true,
		"../config/stairhook.yml": true,
		"/":                       true,
		// Everything else is the configuration itself.
		"config.yaml":                 false,
		"var/task/config.yaml":        false,
		" /var/task/config.yaml":      false,
		"webhooks:\n  - name: a":      false,
		"/var/task/a.yaml\nlisten: x": false,
		`{"webhooks":[]}`:             false,
		"  {webhooks: []}":            false,
		"webhooks: [{name: a}]":       false,
		"whsec_" + testSecret[6:]:     false,
		"":                            false,
	} {
		assert.Equalf(t, want, isPath(src), "%q", src)
	}
}

// TestOneLineConfigNeverQuoted: a one-line STAIRHOOK_CONFIG that is not a
// path is the configuration itself, and no error quotes it: before, any
// one line not starting with "{" was opened as a file, and the error
// quoted the whole value, secrets included, into CloudWatch.
func TestOneLineConfigNeverQuoted(t *testing.T) {
	b64 := testSecret[len("whsec_"):]
	t.Run("one line of block-style YAML is a configuration", func(t *testing.T) {
		src := `webhooks: [{name: hook, secrets: [{secret: "` + testSecret + `"}], routes: [{email: {to: [a@example.com]}}]}]`
		cfg, err := loadConfig(env(map[string]string{"STAIRHOOK_CONFIG": src}), t.TempDir())
		require.NoError(t, err)
		assert.Equal(t, "hook", cfg.Webhooks[0].Name)
	})
	for name, src := range map[string]string{
		"invalid one-line YAML":     `webhooks: [{name: hook, secrets: [{secret: "` + testSecret + `"}], routes: [}]`,
		"a one-line config refused": `webhooks: [{name: "hook!", secrets: [{secret: "` + testSecret + `"}]}]`,
		"a secret alone":            testSecret,
		"a path-like secret":        "/" + b64,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(env(map[string]string{"STAIRHOOK_CONFIG": src}), t.TempDir())
			require.Error(t, err)
			assert.Contains(t, err.Error(), "STAIRHOOK_CONFIG")
			assert.NotContains(t, err.Error(), b64, "the value is never quoted")
			assert.NotContains(t, err.Error(), b64[:16])
		})
	}
}

// TestSAMTemplateConfig checks that the configuration inlined in
// examples/lambda/template.yaml loads and builds a server with the
// environment the template gives the function.
func TestSAMTemplateConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "lambda", "template.yaml"))
	require.NoError(t, err)
	var tmpl struct {
		Resources map[string]struct {
			Properties struct {
				Environment struct {
					Variables map[string]yaml.Node `yaml:"Variables"`
				} `yaml:"Environment"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	require.NoError(t, yaml.Unmarshal(data, &tmpl))
	vars := tmpl.Resources["StairhookFunction"].Properties.Environment.Variables
	require.Contains(t, vars, "STAIRHOOK_CONFIG")
	values := map[string]string{
		"STAIRHOOK_SECRET": testSecret,
		"JIRA_BASE_URL":    "https://example.atlassian.net",
		"JIRA_EMAIL":       "jira@example.com",
		"JIRA_API_TOKEN":   "token",
		"JIRA_PROJECT":     "CS",
		"REDIS_URL":        "",
	}
	environment := map[string]string{}
	for name, node := range vars {
		if name == "STAIRHOOK_CONFIG" {
			environment[name] = node.Value
			continue
		}
		require.Equalf(t, "!Ref", node.Tag, "%s comes from a parameter", name)
		v, ok := values[name]
		require.Truef(t, ok, "no test value for %s", name)
		environment[name] = v
	}
	require.False(t, isPath(environment["STAIRHOOK_CONFIG"]), "the template's configuration is inline")
	cfg, err := loadConfig(env(environment), t.TempDir())
	require.NoError(t, err)
	assert.Equal(t, "staircase", cfg.Webhooks[0].Name)
	assert.Empty(t, cfg.Store.Redis, "an empty RedisURL means the memory store")
	cfg.Outbox = t.TempDir()
	srv, err := newServer(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, srv.Close())

	// The parameter's pattern lets white space around the secret through,
	// as ParseSecret does: the function takes it too.
	environment["STAIRHOOK_SECRET"] = " \u00a0" + testSecret + "\n"
	_, err = loadConfig(env(environment), t.TempDir())
	require.NoError(t, err)
}

// samParameters reads the template's parameters.
func samParameters(t *testing.T) map[string]struct {
	AllowedPattern string `yaml:"AllowedPattern"`
	MaxLength      int    `yaml:"MaxLength"`
} {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "lambda", "template.yaml"))
	require.NoError(t, err)
	var tmpl struct {
		Parameters map[string]struct {
			AllowedPattern string `yaml:"AllowedPattern"`
			MaxLength      int    `yaml:"MaxLength"`
		} `yaml:"Parameters"`
	}
	require.NoError(t, yaml.Unmarshal(data, &tmpl))
	return tmpl.Parameters
}

// TestSAMTemplateSecretPattern checks that the template's WebhookSecret
// parameter accepts exactly what verify.ParseSecret accepts, so that
// CloudFormation neither refuses a secret the function would take nor
// lets through one it would refuse at start. CloudFormation matches
// AllowedPattern (Java syntax, which this pattern shares with Go's RE2)
// against the whole value and counts MaxLength in characters.
func TestSAMTemplateSecretPattern(t *testing.T) {
	p := samParameters(t)["WebhookSecret"]
	require.NotEmpty(t, p.AllowedPattern)
	require.Equal(t, 1024, p.MaxLength)
	re := regexp.MustCompile(`^(?:` + p.AllowedPattern + `)$`)
	template := func(s string) bool { return utf8.RuneCountInString(s) <= p.MaxLength && re.MatchString(s) }
	parses := func(s string) bool { _, err := verify.ParseSecret(s); return err == nil }
	check := func(t *testing.T, s string) {
		t.Helper()
		assert.Equalf(t, parses(s), template(s), "%q: ParseSecret accepts it: %v", s, parses(s))
	}

	key := func(n int) []byte { return bytes.Repeat([]byte{0xa5}, n) }
	std := func(n int) string { return base64.StdEncoding.EncodeToString(key(n)) }
	fresh, err := verify.NewSecret()
	require.NoError(t, err)
	for name, tc := range map[string]struct {
		secret string
		ok     bool
	}{
		"stairhook secret new":         {fresh.Encode(), true},
		"without the prefix":           {strings.TrimPrefix(fresh.Encode(), "whsec_"), true},
		"16 bytes (== padding)":        {"whsec_" + std(16), true},
		"17 bytes (= padding)":         {"whsec_" + std(17), true},
		"18 bytes (no padding)":        {"whsec_" + std(18), true},
		"trailing newline":             {fresh.Encode() + "\n", true},
		"spaces and tabs around":       {" \t" + fresh.Encode() + "  ", true},
		"no-break spaces around":       {"\u00a0" + fresh.Encode() + "\u3000", true},
		"1024 characters":              {"whsec_" + std(750) + strings.Repeat(" ", 1024-6-len(std(750))), true},
		"15 bytes":                     {"whsec_" + std(15), false},
		"1025 characters":              {"whsec_" + std(750) + strings.Repeat(" ", 1025-6-len(std(750))), false},
		"padding missing":              {"whsec_" + base64.RawStdEncoding.EncodeToString(key(16)), false},
		"URL-safe alphabet":            {"whsec_" + strings.Repeat("-_", 12), false},
		"non-zero bits before ==":      {"whsec_" + strings.Replace(std(16), "Q==", "R==", 1), false},
		"non-zero bits before =":       {"whsec_" + strings.Replace(std(17), "U=", "V=", 1), false},
		"prefix alone":                 {"whsec_", false},
		"empty":                        {"", false},
		"space inside":                 {"whsec_ " + std(16), false},
		"line break inside":            {"whsec_" + std(9) + "\n" + std(9), false},
		"prefix twice":                 {"whsec_whsec_" + std(16), false},
		"zero-width space is no space": {"\u200b" + fresh.Encode(), false},
		"prefix in capitals":           {"WHSEC_" + std(16), false},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.ok, parses(tc.secret), "the table's expectation of ParseSecret")
			check(t, tc.secret)
		})
	}
	t.Run("every key length and encoding", func(t *testing.T) {
		for n := 0; n <= 64; n++ {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding} {
				b64 := enc.EncodeToString(key(n))
				check(t, b64)
				check(t, "whsec_"+b64)
			}
		}
	})
	t.Run("every character around and inside", func(t *testing.T) {
		b64 := std(16)
		for r := rune(0); r <= 0xffff; r++ {
			if r >= 0xd800 && r <= 0xdfff {
				continue // surrogates are no characters
			}
			c := string(r)
			check(t, c+"whsec_"+b64+c)
			check(t, "whsec_"+b64[:8]+c+b64[9:])
		}
	})
}

// TestREADMEEnvironment checks the env.json of examples/lambda/README.md
// (the deploy without SAM) against the template: the same variables, and a
// configuration that loads.
func TestREADMEEnvironment(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "lambda", "README.md"))
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(readme), "```json\n{\n  \"Variables\"")
	require.True(t, ok, "the README's env.json block")
	block, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	var envJSON struct{ Variables map[string]string }
	require.NoError(t, json.Unmarshal([]byte("{\"Variables\""+block), &envJSON))

	data, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "lambda", "template.yaml"))
	require.NoError(t, err)
	var tmpl struct {
		Resources map[string]struct {
			Properties struct {
				Environment struct {
					Variables map[string]yaml.Node `yaml:"Variables"`
				} `yaml:"Environment"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	require.NoError(t, yaml.Unmarshal(data, &tmpl))
	assert.ElementsMatch(t, slices.Collect(maps.Keys(tmpl.Resources["StairhookFunction"].Properties.Environment.Variables)),
		slices.Collect(maps.Keys(envJSON.Variables)))

	environment := maps.Clone(envJSON.Variables)
	environment["STAIRHOOK_SECRET"] = testSecret
	cfg, err := loadConfig(env(environment), t.TempDir())
	require.NoError(t, err)
	assert.Equal(t, testSecret, cfg.Webhooks[0].Secrets[0].Secret)
}
