package main

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/stairhook/stairhook/receiver"
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
		cfg, err := loadConfig(env(map[string]string{"STAIRHOOK_CONFIG": file}), "/tmp")
		require.NoError(t, err)
		assert.Equal(t, "staircase", cfg.Webhooks[0].Name)
		assert.Equal(t, testSecret, cfg.Webhooks[0].Secrets[0].Secret)
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := loadConfig(env(map[string]string{"STAIRHOOK_CONFIG": filepath.Join(dir, "nope.yaml")}), "/tmp")
		require.ErrorIs(t, err, os.ErrNotExist)
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

func TestInline(t *testing.T) {
	for src, want := range map[string]bool{
		"/var/task/config.yaml":  false,
		"config.yaml":            false,
		"webhooks:\n  - name: a": true,
		`{"webhooks":[]}`:        true,
		"  {webhooks: []}":       true,
		"":                       false,
	} {
		assert.Equalf(t, want, inline(src), "%q", src)
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
		"STAIRCASE_WEBHOOK_SECRET": testSecret,
		"JIRA_BASE_URL":            "https://example.atlassian.net",
		"JIRA_EMAIL":               "jira@example.com",
		"JIRA_API_TOKEN":           "token",
		"JIRA_PROJECT":             "CS",
		"REDIS_URL":                "",
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
	require.True(t, inline(environment["STAIRHOOK_CONFIG"]))
	cfg, err := loadConfig(env(environment), t.TempDir())
	require.NoError(t, err)
	assert.Equal(t, "staircase", cfg.Webhooks[0].Name)
	assert.Empty(t, cfg.Store.Redis, "an empty RedisURL means the memory store")
	cfg.Outbox = t.TempDir()
	srv, err := newServer(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NoError(t, srv.Close())
}
