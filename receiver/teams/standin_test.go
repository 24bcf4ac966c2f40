package teams

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"
)

// teamsMaxBytes is Teams' limit on a message, written apart from the
// package's constant so that a wrong constant fails here.
const teamsMaxBytes = 28 * 1024

// checkMessage makes the checks that hold whatever the parser says: the
// envelope a workflow takes, at most 28 KB, an AdaptiveCard 1.5 whose body
// is RichTextBlocks of TextRuns only (never markdown), every text valid
// UTF-8 without control characters (but line breaks in the summary) or
// bidi overrides, every URL https.
func checkMessage(data []byte) error {
	if len(data) > teamsMaxBytes {
		return fmt.Errorf("%d bytes (%d allowed)", len(data), teamsMaxBytes)
	}
	var m struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string          `json:"contentType"`
			Content     json.RawMessage `json:"content"`
		} `json:"attachments"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("envelope: %v", err)
	}
	if m.Type != "message" || len(m.Attachments) != 1 || m.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" {
		return fmt.Errorf("envelope: type %q, %d attachments", m.Type, len(m.Attachments))
	}
	var c struct {
		Schema                      string `json:"$schema"`
		Type, Version, FallbackText string
		Body                        []struct {
			Type      string
			Separator bool
			Inlines   []struct {
				Type, Text, Weight, Size, Color string
				IsSubtle                        bool
				SelectAction                    *struct{ Type, URL string }
			}
		}
		Actions []struct{ Type, Title, URL string }
	}
	dec = json.NewDecoder(bytes.NewReader(m.Attachments[0].Content))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("card: %v", err)
	}
	if c.Type != "AdaptiveCard" || c.Version != "1.5" || len(c.Body) == 0 {
		return fmt.Errorf("card: type %q version %q, %d elements", c.Type, c.Version, len(c.Body))
	}
	if err := checkText("fallbackText", c.FallbackText, false); err != nil {
		return err
	}
	for i, e := range c.Body {
		if e.Type != "RichTextBlock" || len(e.Inlines) == 0 {
			return fmt.Errorf("body[%d]: %s with %d inlines", i, e.Type, len(e.Inlines))
		}
		for j, r := range e.Inlines {
			where := fmt.Sprintf("body[%d].inlines[%d]", i, j)
			if r.Type != "TextRun" || r.Text == "" {
				return fmt.Errorf("%s: %s %q", where, r.Type, r.Text)
			}
			if err := checkText(where, r.Text, true); err != nil {
				return err
			}
			if r.SelectAction != nil && (r.SelectAction.Type != "Action.OpenUrl" || !strings.HasPrefix(r.SelectAction.URL, "https://")) {
				return fmt.Errorf("%s: select action %+v", where, *r.SelectAction)
			}
		}
	}
	for i, a := range c.Actions {
		if a.Type != "Action.OpenUrl" || !strings.HasPrefix(a.URL, "https://") {
			return fmt.Errorf("actions[%d]: %+v", i, a)
		}
	}
	return nil
}

func checkText(where, s string, lines bool) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: invalid UTF-8", where)
	}
	for _, r := range s {
		if (unicode.IsControl(r) && !(lines && r == '\n')) || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') {
			return fmt.Errorf("%s: character %U", where, r)
		}
	}
	return nil
}

// standIn is a Teams workflow on loopback: it takes a message at its one
// URL (with a sig query parameter, as a real one has), checks it
// (checkMessage, and the adaptivecards parser when given), answers 202,
// or the faults queued.
type standIn struct {
	t      testing.TB
	srv    *httptest.Server
	cards  *cardValidator
	mu     sync.Mutex
	posts  [][]byte
	faults []fault
	hits   int
	hang   chan struct{}
}

type fault struct {
	status     int
	retryAfter string
	body       string
	location   string
}

const (
	testWorkflowPath = "/powerautomate/automations/direct/workflows/0f2c7e3a9b1d4c6e8f0a2b4c6d8e0f1a/triggers/manual/paths/invoke"
	testSig          = "SiGnAtUrEsEcReT0123456789abcdefXYZ"
	testQuery        = "api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=" + testSig
)

func newStandIn(t testing.TB, cards *cardValidator) *standIn {
	s := &standIn{t: t, cards: cards}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standIn) url() string { return s.srv.URL + testWorkflowPath + "?" + testQuery }

func (s *standIn) inject(f ...fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f...)
}

func (s *standIn) accepted() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.posts...)
}

func (s *standIn) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

func (s *standIn) serve(w http.ResponseWriter, r *http.Request) {
	if s.hang != nil {
		select {
		case <-s.hang:
		case <-r.Context().Done():
			return
		}
	}
	s.mu.Lock()
	s.hits++
	var f *fault
	if len(s.faults) > 0 {
		f = &s.faults[0]
		s.faults = s.faults[1:]
	}
	s.mu.Unlock()
	if f != nil {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		if f.location != "" {
			w.Header().Set("Location", f.location)
		}
		w.WriteHeader(f.status)
		io.WriteString(w, f.body)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != testWorkflowPath || r.URL.Query().Get("sig") != testSig {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"code":"DirectApiAuthorizationRequired","message":"bad sig"}}`)
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	if err := checkMessage(data); err != nil {
		s.t.Errorf("stand-in: %v\n%s", err, data)
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":{"code":"InvalidRequestContent"}}`)
		return
	}
	if s.cards != nil {
		results, err := s.cards.validate(data)
		if err == nil {
			err = results[0]
		}
		if err != nil {
			s.t.Errorf("stand-in: %v\n%s", err, data)
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"code":"InvalidRequestContent"}}`)
			return
		}
	}
	s.mu.Lock()
	s.posts = append(s.posts, data)
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}
