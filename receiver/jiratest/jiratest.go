// Package jiratest is an in-process Jira Cloud REST API v3 server for tests,
// in the manner of net/http/httptest: the slice of the API the receiver uses
// (create issue, search by JQL for labels), with Jira's checks and error bodies, Basic
// auth, a configurable lag before new issues become searchable, and fault
// injection (429/503 with Retry-After, 5xx, hangs, connection resets).
//
// Every issue description is checked to be an Atlassian Document Format
// document: structurally always (a doc of version 1, no empty text node, no
// raw newline in a text node), and against the real ADF JSON Schema
// (@atlaskit/adf-schema json-schema/v1/full.json) when Options.SchemaPath or
// the environment variable STAIRHOOK_ADF_SCHEMA names it. A rejected
// description answers 400 like Jira does, so the sink under test sees the
// failure as a permanent error.
package jiratest

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
)

// SchemaEnv is the environment variable naming the ADF JSON Schema file when
// Options.SchemaPath is empty.
const SchemaEnv = "STAIRHOOK_ADF_SCHEMA"

// Options configure a Server. The zero value is usable.
type Options struct {
	// Email is the Basic auth user name the server accepts. Default
	// "jira@example.com".
	Email string
	// APIToken is the Basic auth password the server accepts. Default
	// "test-token".
	APIToken string
	// Projects are the project keys that exist. Default: any key.
	Projects []string
	// IssueTypes are the issue type names that exist. Default: Task, Bug,
	// Story, Epic.
	IssueTypes []string
	// Priorities are the priority names that exist. Default: Highest,
	// High, Medium, Low, Lowest.
	Priorities []string
	// SchemaPath is the ADF JSON Schema file. Default: the value of
	// STAIRHOOK_ADF_SCHEMA; when that is empty too, descriptions get the
	// structural checks only (see SchemaLoaded).
	SchemaPath string
	// SkipSchema turns schema validation off even when
	// STAIRHOOK_ADF_SCHEMA is set; the structural checks stay. For load
	// tests: validating one description costs milliseconds.
	SkipSchema bool
	// Now is the clock used for search lag. Default time.Now.
	Now func() time.Time
}

// Issue is an issue the server created, as the create request gave it.
type Issue struct {
	// ID is the issue's numeric id as Jira answers it, "10001" for the
	// server's first issue, "10002" for the second, and so on.
	ID string
	// Key is the project key and the issue's number, such as "CS-1";
	// numbers run across all projects of the server.
	Key string
	// Project is the project key of the request.
	Project string
	// IssueType is the issue type name of the request.
	IssueType string
	// Summary is the summary of the request.
	Summary string
	// Labels are the labels of the request, in its order.
	Labels []string
	// Priority is the priority name of the request; empty when it set
	// none.
	Priority string
	// Description is the ADF document exactly as received; empty when the
	// request had no description field.
	Description json.RawMessage
	// Created is when the server created the issue, by Options.Now; the
	// issue shows in search results once the search lag has passed since.
	Created time.Time
}

// Fault is a failure injected in place of a normal answer.
type Fault struct {
	// Path limits the fault to one endpoint ("/rest/api/3/issue" or
	// "/rest/api/3/search/jql"); empty matches every request.
	Path string
	// Status is the status code of the error answer, with a Jira-style
	// body ({"errorMessages":[…]}), when neither Hang nor Reset is set.
	Status int
	// Header is added to the error answer, for Retry-After or
	// X-RateLimit-Reset.
	Header http.Header
	// Hang holds the request without answering until the client gives up
	// or the server closes.
	Hang bool
	// Reset closes the connection without an answer (TCP RST).
	Reset bool
}

// Server is a running test server.
type Server struct {
	// URL is the base URL, for JiraConfig.BaseURL.
	URL string
	// Email is the accepted Basic auth user name (Options.Email or its
	// default).
	Email string
	// APIToken is the accepted Basic auth password (Options.APIToken or
	// its default).
	APIToken string

	ts     *httptest.Server
	opts   Options
	schema *Schema

	mu       sync.Mutex
	issues   []Issue
	byLabel  map[string][]int // label → indexes into issues, for search
	faults   []Fault
	lag      time.Duration
	requests map[string]int
	closing  chan struct{}
}

// MaxBodyBytes bounds request bodies, as Jira does (it answers 413).
const MaxBodyBytes = 1 << 20

// NewServer starts a server on 127.0.0.1. It panics when Options.SchemaPath
// (or STAIRHOOK_ADF_SCHEMA) names a file that cannot be loaded, as
// httptest.NewServer panics when it cannot listen: the test cannot
// meaningfully go on.
func NewServer(opts Options) *Server {
	if opts.Email == "" {
		opts.Email = "jira@example.com"
	}
	if opts.APIToken == "" {
		opts.APIToken = "test-token"
	}
	if len(opts.IssueTypes) == 0 {
		opts.IssueTypes = []string{"Task", "Bug", "Story", "Epic"}
	}
	if len(opts.Priorities) == 0 {
		opts.Priorities = []string{"Highest", "High", "Medium", "Low", "Lowest"}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SchemaPath == "" {
		opts.SchemaPath = os.Getenv(SchemaEnv)
	}
	s := &Server{opts: opts, Email: opts.Email, APIToken: opts.APIToken,
		requests: map[string]int{}, byLabel: map[string][]int{}, closing: make(chan struct{})}
	if opts.SchemaPath != "" && !opts.SkipSchema {
		sch, err := LoadSchema(opts.SchemaPath)
		if err != nil {
			panic(fmt.Sprintf("jiratest: %v", err))
		}
		s.schema = sch
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /rest/api/3/issue", s.create)
	mux.HandleFunc("POST /rest/api/3/search/jql", s.searchJQL)
	mux.HandleFunc("/rest/api/3/search", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusGone, []string{"The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."}, nil)
	})
	s.ts = httptest.NewServer(s.middleware(mux))
	s.URL = s.ts.URL
	return s
}

// Close stops the server, releasing hung requests first.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.closing:
	default:
		close(s.closing)
	}
	s.mu.Unlock()
	s.ts.Close()
}

// SchemaLoaded reports whether descriptions are validated against the ADF
// JSON Schema (true) or only checked structurally (false).
func (s *Server) SchemaLoaded() bool { return s.schema != nil }

// Issues returns the issues created so far, in creation order.
func (s *Server) Issues() []Issue {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Issue, len(s.issues))
	for i, is := range s.issues {
		is.Labels = slices.Clone(is.Labels)
		is.Description = slices.Clone(is.Description)
		out[i] = is
	}
	return out
}

// Requests returns how many requests reached path (faults included, bad
// credentials excluded), for example "/rest/api/3/issue".
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

// Inject queues the fault for the next n requests that match its Path.
func (s *Server) Inject(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// FailNext answers the next n requests with status, and with the
// Retry-After header when retryAfter is not empty.
func (s *Server) FailNext(n, status int, retryAfter string) {
	f := Fault{Status: status}
	if retryAfter != "" {
		f.Header = http.Header{"Retry-After": {retryAfter}}
	}
	s.Inject(n, f)
}

// HangNext holds the next n requests without answering.
func (s *Server) HangNext(n int) { s.Inject(n, Fault{Hang: true}) }

// ResetNext resets the connection of the next n requests.
func (s *Server) ResetNext(n int) { s.Inject(n, Fault{Reset: true}) }

// SetSearchLag makes new issues invisible to search for d after their
// creation, as Jira's index lags behind creates.
func (s *Server) SetSearchLag(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag = d
}

func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		email, token, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(email), []byte(s.opts.Email)) != 1 ||
			subtle.ConstantTimeCompare([]byte(token), []byte(s.opts.APIToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="protected-area"`)
			writeError(w, http.StatusUnauthorized, []string{"Client must be authenticated to access this resource."}, nil)
			return
		}
		s.mu.Lock()
		s.requests[r.URL.Path]++
		var fault *Fault
		for i, f := range s.faults {
			if f.Path == "" || f.Path == r.URL.Path {
				fault = &f
				s.faults = slices.Delete(s.faults, i, i+1)
				break
			}
		}
		s.mu.Unlock()
		if fault == nil {
			next.ServeHTTP(w, r)
			return
		}
		switch {
		case fault.Reset:
			resetConn(w)
		case fault.Hang:
			select {
			case <-r.Context().Done():
			case <-s.closing:
			}
		default:
			for k, v := range fault.Header {
				w.Header()[k] = v
			}
			writeError(w, fault.Status, []string{"injected fault: " + http.StatusText(fault.Status)}, nil)
		}
	})
}

// resetConn drops the connection with a TCP RST, the way a crashed proxy
// does.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("jiratest: connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// writeError writes a Jira error body: {"errorMessages":[…],"errors":{…}}.
func writeError(w http.ResponseWriter, status int, messages []string, fields map[string]string) {
	if messages == nil {
		messages = []string{}
	}
	if fields == nil {
		fields = map[string]string{}
	}
	writeJSON(w, status, map[string]any{"errorMessages": messages, "errors": fields})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readBody reads a JSON body of at most MaxBodyBytes into v, rejecting
// unknown fields; it writes the error answer itself and reports success.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, []string{"Content-Type must be application/json"}, nil)
		return false
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, []string{"cannot read body"}, nil)
		return false
	}
	if len(data) > MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, []string{"request body too large"}, nil)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, []string{"Unrecognized or malformed JSON: " + err.Error()}, nil)
		return false
	}
	return true
}

type createRequest struct {
	Fields struct {
		Project *struct {
			Key string `json:"key"`
			ID  string `json:"id"`
		} `json:"project"`
		IssueType *struct {
			Name string `json:"name"`
			ID   string `json:"id"`
		} `json:"issuetype"`
		Summary  *string  `json:"summary"`
		Labels   []string `json:"labels"`
		Priority *struct {
			Name string `json:"name"`
			ID   string `json:"id"`
		} `json:"priority"`
		Description json.RawMessage `json:"description"`
	} `json:"fields"`
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if !readBody(w, r, &req) {
		return
	}
	f := req.Fields
	errs := map[string]string{}
	switch {
	case f.Project == nil || f.Project.Key == "":
		errs["project"] = "Specify a valid project ID or key"
	case len(s.opts.Projects) > 0 && !slices.Contains(s.opts.Projects, f.Project.Key):
		errs["project"] = "valid project is required"
	}
	if f.IssueType == nil || !slices.Contains(s.opts.IssueTypes, f.IssueType.Name) {
		errs["issuetype"] = "Specify a valid issue type"
	}
	switch {
	case f.Summary == nil || strings.TrimSpace(*f.Summary) == "":
		errs["summary"] = "You must specify a summary of the issue."
	case len(utf16.Encode([]rune(*f.Summary))) > 255:
		errs["summary"] = "Summary must be less than 255 characters."
	case strings.ContainsAny(*f.Summary, "\r\n"):
		errs["summary"] = "The summary is invalid because it contains newline characters."
	}
	for _, l := range f.Labels {
		if l == "" || strings.ContainsAny(l, " \t\r\n") || len(utf16.Encode([]rune(l))) > 255 {
			errs["labels"] = "The label '" + l + "' contains spaces which is invalid."
		}
	}
	if f.Priority != nil && !slices.Contains(s.opts.Priorities, f.Priority.Name) {
		errs["priority"] = "Specify the Priority (name) in the string format"
	}
	if len(f.Description) > 0 && string(f.Description) != "null" {
		if err := s.checkADF(f.Description); err != nil {
			errs["description"] = "Operation value must be an Atlassian Document (see the Atlassian Document Format): " + err.Error()
		}
	}
	if len(errs) > 0 {
		writeError(w, http.StatusBadRequest, nil, errs)
		return
	}

	s.mu.Lock()
	n := len(s.issues) + 1
	is := Issue{
		ID: strconv.Itoa(10000 + n), Key: f.Project.Key + "-" + strconv.Itoa(n),
		Project: f.Project.Key, IssueType: f.IssueType.Name, Summary: *f.Summary,
		Labels: slices.Clone(f.Labels), Description: slices.Clone(f.Description),
		Created: s.opts.Now(),
	}
	if f.Priority != nil {
		is.Priority = f.Priority.Name
	}
	s.issues = append(s.issues, is)
	for _, l := range slices.Compact(slices.Sorted(slices.Values(is.Labels))) {
		s.byLabel[l] = append(s.byLabel[l], len(s.issues)-1)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]string{
		"id": is.ID, "key": is.Key, "self": s.URL + "/rest/api/3/issue/" + is.ID,
	})
}

// labelJQL is the JQL the server understands: labels = "x" or labels in
// ("x", "y", …), optionally after project = "KEY" AND. Quoted strings may
// escape " and \ with \.
var (
	labelJQL  = regexp.MustCompile(`^\s*(?:project\s*=\s*(` + jqlQuoted + `)\s+AND\s+)?labels\s*(?:=\s*(` + jqlQuoted + `)|in\s*\(\s*(` + jqlQuoted + `(?:\s*,\s*` + jqlQuoted + `)*)\s*\))\s*$`)
	jqlString = regexp.MustCompile(jqlQuoted)
)

const jqlQuoted = `"(?:[^"\\]|\\.)*"`

// jqlUnquote undoes the quoting of a JQL string literal.
func jqlUnquote(q string) string {
	q = q[1 : len(q)-1]
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if q[i] == '\\' && i+1 < len(q) {
			i++
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

func (s *Server) searchJQL(w http.ResponseWriter, r *http.Request) {
	var req struct {
		JQL           string   `json:"jql"`
		MaxResults    *int     `json:"maxResults"`
		Fields        []string `json:"fields"`
		NextPageToken string   `json:"nextPageToken"`
	}
	if !readBody(w, r, &req) {
		return
	}
	m := labelJQL.FindStringSubmatch(req.JQL)
	if m == nil {
		writeError(w, http.StatusBadRequest, []string{"jiratest understands only [project = \"…\" AND] labels = \"…\" and labels in (\"…\", …) queries, got: " + req.JQL}, nil)
		return
	}
	project := ""
	if m[1] != "" {
		project = jqlUnquote(m[1])
	}
	labels := []string{m[2]}
	if m[3] != "" {
		labels = jqlString.FindAllString(m[3], -1)
	}
	for i, l := range labels {
		labels[i] = jqlUnquote(l)
	}
	limit := 50
	if req.MaxResults != nil {
		limit = min(max(*req.MaxResults, 0), 5000)
	}
	now := s.opts.Now()
	type hit struct {
		ID     string         `json:"id"`
		Key    string         `json:"key"`
		Fields map[string]any `json:"fields,omitempty"`
	}
	hits := []hit{}
	s.mu.Lock()
	var found []int // indexes into issues, in creation order
	for _, l := range labels {
		found = append(found, s.byLabel[l]...)
	}
	slices.Sort(found)
	for _, i := range slices.Compact(found) {
		if len(hits) >= limit {
			break
		}
		if is := s.issues[i]; (project == "" || is.Project == project) && !now.Before(is.Created.Add(s.lag)) {
			hits = append(hits, hit{ID: is.ID, Key: is.Key})
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"issues": hits, "isLast": true})
}

// ErrInvalidADF reports a description that is not a valid ADF document.
var ErrInvalidADF = errors.New("jiratest: invalid ADF document")

func (s *Server) checkADF(doc []byte) error {
	if err := CheckADF(doc); err != nil {
		return err
	}
	if s.schema != nil {
		return s.schema.Validate(doc)
	}
	return nil
}
