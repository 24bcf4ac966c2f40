package jiratest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/receiver/jiratest"
)

const validDoc = `{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"hello"}]}]}`

func post(t *testing.T, srv *jiratest.Server, path, body string, auth bool) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if auth {
		req.SetBasicAuth(srv.Email, srv.APIToken)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(bytes.TrimSpace(data)) > 0 {
		require.NoError(t, json.Unmarshal(data, &out), "%s", data)
	}
	return resp.StatusCode, resp.Header, out
}

func issueBody(summary, labels, description string) string {
	return `{"fields":{"project":{"key":"CS"},"issuetype":{"name":"Task"},"summary":` + summary +
		`,"labels":` + labels + `,"description":` + description + `}}`
}

func TestCreateAndSearch(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	clock := now
	srv := jiratest.NewServer(jiratest.Options{Projects: []string{"CS"}, Now: func() time.Time { return clock }})
	defer srv.Close()

	status, _, out := post(t, srv, "/rest/api/3/issue", issueBody(`"Churn risk"`, `["stairhook-1"]`, validDoc), true)
	require.Equal(t, http.StatusCreated, status, "%v", out)
	assert.Equal(t, "CS-1", out["key"])
	require.Len(t, srv.Issues(), 1)
	assert.Equal(t, "Churn risk", srv.Issues()[0].Summary)

	search := `{"jql":"labels = \"stairhook-1\"","maxResults":1,"fields":["key"]}`
	srv.SetSearchLag(5 * time.Second)
	status, _, out = post(t, srv, "/rest/api/3/search/jql", search, true)
	require.Equal(t, http.StatusOK, status)
	assert.Empty(t, out["issues"], "inside the lag")
	clock = now.Add(5 * time.Second)
	_, _, out = post(t, srv, "/rest/api/3/search/jql", search, true)
	require.Len(t, out["issues"], 1)
	assert.Equal(t, "CS-1", out["issues"].([]any)[0].(map[string]any)["key"])

	_, _, out = post(t, srv, "/rest/api/3/search/jql", `{"jql":"labels = \"other\""}`, true)
	assert.Empty(t, out["issues"])
	_, _, out = post(t, srv, "/rest/api/3/search/jql", `{"jql":"project = \"CS\" AND labels = \"stairhook-1\""}`, true)
	assert.Len(t, out["issues"], 1, "same project")
	_, _, out = post(t, srv, "/rest/api/3/search/jql", `{"jql":"project = \"OPS\" AND labels = \"stairhook-1\""}`, true)
	assert.Empty(t, out["issues"], "other project")
	_, _, out = post(t, srv, "/rest/api/3/search/jql", `{"jql":"project = \"C\\\"S\" AND labels = \"stairhook-1\""}`, true)
	assert.Empty(t, out["issues"], "escaped quote is part of the key")
	// labels in (…) finds an issue carrying any of the labels, once.
	status, _, out = post(t, srv, "/rest/api/3/issue", issueBody(`"Renewal"`, `["stairhook-2","stairhook-3"]`, validDoc), true)
	require.Equal(t, http.StatusCreated, status, "%v", out)
	clock = clock.Add(5 * time.Second)
	keys := func(jql string) []string {
		t.Helper()
		status, _, out := post(t, srv, "/rest/api/3/search/jql", `{"jql":`+strconv.Quote(jql)+`}`, true)
		require.Equal(t, http.StatusOK, status, "%v", out)
		var keys []string
		for _, is := range out["issues"].([]any) {
			keys = append(keys, is.(map[string]any)["key"].(string))
		}
		return keys
	}
	assert.Equal(t, []string{"CS-2"}, keys(`project = "CS" AND labels in ("stairhook-2", "stairhook-3")`), "one hit per issue")
	assert.Equal(t, []string{"CS-1", "CS-2"}, keys(`labels in ("stairhook-3","stairhook-1")`), "in creation order")
	assert.Equal(t, []string{"CS-1"}, keys(`project = "CS" AND labels in ("stairhook-1")`))
	assert.Empty(t, keys(`project = "OPS" AND labels in ("stairhook-1", "stairhook-2")`))
	assert.Empty(t, keys(`labels in ("other", "stairhook-\"1")`), "an escaped quote is part of the label")

	status, _, _ = post(t, srv, "/rest/api/3/search/jql", `{"jql":"labels in ()"}`, true)
	assert.Equal(t, http.StatusBadRequest, status)
	status, _, _ = post(t, srv, "/rest/api/3/search/jql", `{"jql":"project = CS"}`, true)
	assert.Equal(t, http.StatusBadRequest, status)
	status, _, _ = post(t, srv, "/rest/api/3/search", search, true)
	assert.Equal(t, http.StatusGone, status)
}

func TestRejections(t *testing.T) {
	srv := jiratest.NewServer(jiratest.Options{Projects: []string{"CS"}, SchemaPath: ""})
	defer srv.Close()
	cases := map[string]struct {
		body   string
		status int
		field  string
	}{
		"empty text node":    {issueBody(`"s"`, `[]`, `{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":""}]}]}`), 400, "description"},
		"newline in text":    {issueBody(`"s"`, `[]`, `{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"a\nb"}]}]}`), 400, "description"},
		"not a doc":          {issueBody(`"s"`, `[]`, `"plain text"`), 400, "description"},
		"newline in summary": {issueBody(`"a\nb"`, `[]`, validDoc), 400, "summary"},
		"summary too long":   {issueBody(`"`+strings.Repeat("x", 256)+`"`, `[]`, validDoc), 400, "summary"},
		"label with space":   {issueBody(`"s"`, `["a b"]`, validDoc), 400, "labels"},
		"unknown project":    {strings.Replace(issueBody(`"s"`, `[]`, validDoc), `"CS"`, `"XX"`, 1), 400, "project"},
		"unknown field":      {`{"fields":{},"extra":1}`, 400, ""},
		"too large":          {issueBody(`"`+strings.Repeat("x", jiratest.MaxBodyBytes)+`"`, `[]`, validDoc), 413, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			status, _, out := post(t, srv, "/rest/api/3/issue", tc.body, true)
			assert.Equal(t, tc.status, status, "%v", out)
			if tc.field != "" {
				assert.Contains(t, out["errors"], tc.field)
			}
		})
	}
	assert.Empty(t, srv.Issues())
}

func TestAuthAndFaults(t *testing.T) {
	srv := jiratest.NewServer(jiratest.Options{})
	defer srv.Close()
	status, h, out := post(t, srv, "/rest/api/3/issue", issueBody(`"s"`, `[]`, validDoc), false)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.NotEmpty(t, h.Get("WWW-Authenticate"))
	assert.NotEmpty(t, out["errorMessages"])

	srv.FailNext(1, 429, "7")
	status, h, _ = post(t, srv, "/rest/api/3/issue", issueBody(`"s"`, `[]`, validDoc), true)
	assert.Equal(t, 429, status)
	assert.Equal(t, "7", h.Get("Retry-After"))
	status, _, _ = post(t, srv, "/rest/api/3/issue", issueBody(`"s"`, `[]`, validDoc), true)
	assert.Equal(t, http.StatusCreated, status, "the fault is used up")

	srv.ResetNext(1)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/rest/api/3/issue", strings.NewReader(issueBody(`"s"`, `[]`, validDoc)))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(srv.Email, srv.APIToken)
	_, err := http.DefaultClient.Do(req)
	assert.Error(t, err)

	srv.HangNext(1)
	client := &http.Client{Timeout: 100 * time.Millisecond}
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/rest/api/3/issue", strings.NewReader(issueBody(`"s"`, `[]`, validDoc)))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(srv.Email, srv.APIToken)
	_, err = client.Do(req)
	assert.Error(t, err)
	assert.Len(t, srv.Issues(), 1)
	assert.Equal(t, 4, srv.Requests("/rest/api/3/issue"))
}

func TestSchemaEnforced(t *testing.T) {
	path := os.Getenv(jiratest.SchemaEnv)
	if path == "" {
		testenv.Missing(t, "the ADF JSON Schema ($"+jiratest.SchemaEnv+")", "npm pack @atlaskit/adf-schema@57.7.22")
	}
	srv := jiratest.NewServer(jiratest.Options{SchemaPath: path})
	defer srv.Close()
	require.True(t, srv.SchemaLoaded())
	// Structurally fine, but not ADF: an unknown mark.
	doc := `{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"x","marks":[{"type":"blink"}]}]}]}`
	require.NoError(t, jiratest.CheckADF([]byte(doc)))
	status, _, out := post(t, srv, "/rest/api/3/issue", issueBody(`"s"`, `[]`, doc), true)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, out["errors"], "description")
	status, _, _ = post(t, srv, "/rest/api/3/issue", issueBody(`"s"`, `[]`, validDoc), true)
	assert.Equal(t, http.StatusCreated, status)
}

func TestNoSchema(t *testing.T) {
	t.Setenv(jiratest.SchemaEnv, "")
	srv := jiratest.NewServer(jiratest.Options{})
	defer srv.Close()
	assert.False(t, srv.SchemaLoaded())

	t.Setenv(jiratest.SchemaEnv, "/nonexistent/full.json")
	srv = jiratest.NewServer(jiratest.Options{SkipSchema: true})
	defer srv.Close()
	assert.False(t, srv.SchemaLoaded())
	// The structural checks stay.
	status, _, _ := post(t, srv, "/rest/api/3/issue", issueBody(`"s"`, `[]`, `{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":""}]}]}`), true)
	assert.Equal(t, http.StatusBadRequest, status)
}
