package slack

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/slack-go/slack"
)

// standIn is a Slack stand-in on loopback: one incoming webhook
// (/services/…) and the Web API's chat.postMessage (/api/), which checks
// the token and the channel. Every message is decoded into slack-go's
// Block Kit types and checked against Slack's limits (checkBlocks); a
// message that fails is answered invalid_blocks and fails the test.
type standIn struct {
	t       testing.TB
	srv     *httptest.Server
	token   string
	hook    string // the webhook's path, the secret part of its URL
	mu      sync.Mutex
	posts   []post
	faults  []fault
	hits    int
	hang    chan struct{} // when set, requests wait for it to close
	channel map[string]string
}

// post is a message the stand-in accepted.
type post struct {
	raw     []byte // the body, for a webhook
	channel string // the channel id, for chat.postMessage
	text    string
	blocks  []slack.Block
	unfurl  string // unfurl_links,unfurl_media as sent
}

// fault is the answer to the next request instead of the normal one.
type fault struct {
	status     int    // HTTP status; 0 means 200 with ok:false
	retryAfter string // the Retry-After header, if any
	code       string // the error code: a webhook's body, or chat.postMessage's error
	location   string // for a redirect
}

const (
	testToken   = "xoxb-1111-2222-SeCrEtToKeN"
	testHookDir = "/services/T0000/B0000/"
	testHookKey = "XyZsEcReTwEbHoOkPaTh42"
)

func newStandIn(t testing.TB) *standIn {
	s := &standIn{t: t, token: testToken, hook: testHookDir + testHookKey,
		channel: map[string]string{"#cs-alerts": "C0CSALERTS", "C0CSALERTS": "C0CSALERTS"}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standIn) webhookURL() string { return s.srv.URL + s.hook }
func (s *standIn) apiURL() string     { return s.srv.URL + "/api/" }

// inject queues answers for the next requests, in order.
func (s *standIn) inject(f ...fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f...)
}

func (s *standIn) accepted() []post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]post(nil), s.posts...)
}

func (s *standIn) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

func (s *standIn) nextFault() (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits++
	if len(s.faults) == 0 {
		return fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f, true
}

func (s *standIn) serve(w http.ResponseWriter, r *http.Request) {
	if s.hang != nil {
		select {
		case <-s.hang:
		case <-r.Context().Done():
			return
		}
	}
	f, faulty := s.nextFault()
	if r.Method != http.MethodPost {
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	if faulty && f.status != 0 {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		if f.location != "" {
			w.Header().Set("Location", f.location)
		}
		w.WriteHeader(f.status)
		io.WriteString(w, f.code)
		return
	}
	switch {
	case r.URL.Path == s.hook:
		s.serveWebhook(w, r, f, faulty)
	case r.URL.Path == "/api/chat.postMessage":
		s.servePostMessage(w, r, f, faulty)
	case strings.HasPrefix(r.URL.Path, "/services/"):
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "no_service")
	default:
		http.NotFound(w, r)
	}
}

func (s *standIn) serveWebhook(w http.ResponseWriter, r *http.Request, f fault, faulty bool) {
	if faulty && f.code != "" {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, f.code)
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "invalid_payload")
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	var msg slack.WebhookMessage
	if err := json.Unmarshal(raw, &msg); err != nil || msg.Blocks == nil {
		s.t.Errorf("stand-in: webhook payload does not decode into slack.WebhookMessage: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "invalid_payload")
		return
	}
	if err := checkMessage(msg.Text, msg.Blocks.BlockSet); err != nil {
		s.t.Errorf("stand-in: %v\n%s", err, raw)
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "invalid_blocks")
		return
	}
	unfurl := fmt.Sprint(msg.UnfurlLinks != nil && *msg.UnfurlLinks, ",", msg.UnfurlMedia != nil && *msg.UnfurlMedia)
	s.record(post{raw: raw, text: msg.Text, blocks: msg.Blocks.BlockSet, unfurl: unfurl})
	io.WriteString(w, "ok")
}

func (s *standIn) servePostMessage(w http.ResponseWriter, r *http.Request, f fault, faulty bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	answer := func(v map[string]any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	token := r.PostForm.Get("token")
	if token == "" {
		token = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.token)) != 1 {
		answer(map[string]any{"ok": false, "error": "invalid_auth"})
		return
	}
	if faulty && f.code != "" {
		answer(map[string]any{"ok": false, "error": f.code})
		return
	}
	id, ok := s.channel[r.PostForm.Get("channel")]
	if !ok {
		answer(map[string]any{"ok": false, "error": "channel_not_found"})
		return
	}
	var blocks slack.Blocks
	if err := json.Unmarshal([]byte(r.PostForm.Get("blocks")), &blocks); err != nil {
		s.t.Errorf("stand-in: blocks do not decode into slack.Blocks: %v", err)
		answer(map[string]any{"ok": false, "error": "invalid_blocks_format"})
		return
	}
	if err := checkMessage(r.PostForm.Get("text"), blocks.BlockSet); err != nil {
		s.t.Errorf("stand-in: %v\n%s", err, r.PostForm.Get("blocks"))
		answer(map[string]any{"ok": false, "error": "invalid_blocks"})
		return
	}
	s.record(post{channel: id, text: r.PostForm.Get("text"), blocks: blocks.BlockSet,
		unfurl: r.PostForm.Get("unfurl_links") + "," + r.PostForm.Get("unfurl_media")})
	answer(map[string]any{"ok": true, "channel": id, "ts": "1700000000.000100"})
}

func (s *standIn) record(p post) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts = append(s.posts, p)
}

// Slack's limits as the stand-in checks them, written apart from the
// package's own constants so that a wrong constant fails here.
const (
	slackMaxBlocks  = 50
	slackMaxSection = 3000
	slackMaxHeader  = 150
	slackMaxField   = 2000
	slackMaxFields  = 10
	slackMaxContext = 10
	slackMaxURL     = 255
	slackMaxTotal   = 12000
)

// utf16Len counts characters the way the limits are kept.
func utf16Len(s string) int { return len(utf16.Encode([]rune(s))) }

// checkMessage checks a message's notification text and blocks: Slack's
// limits, valid UTF-8, and payload text that is inert.
func checkMessage(text string, blocks []slack.Block) error {
	if err := checkMrkdwn("text", text); err != nil {
		return err
	}
	return checkBlocks(blocks)
}

// checkBlocks checks blocks against Slack's limits and checks that every
// text is inert: no control or format characters, no markup but the
// links this package makes, every & an escape.
func checkBlocks(blocks []slack.Block) error {
	if len(blocks) == 0 || len(blocks) > slackMaxBlocks {
		return fmt.Errorf("%d blocks (1 to %d allowed)", len(blocks), slackMaxBlocks)
	}
	total := 0
	text := func(where string, o *slack.TextBlockObject, max int) error {
		if o == nil {
			return fmt.Errorf("%s: no text object", where)
		}
		n := utf16Len(o.Text)
		total += n
		if n < 1 || n > max {
			return fmt.Errorf("%s: %d characters (1 to %d allowed)", where, n, max)
		}
		switch o.Type {
		case slack.PlainTextType:
			return checkPlain(where, o.Text)
		case slack.MarkdownType:
			if !o.Verbatim {
				return fmt.Errorf("%s: mrkdwn without verbatim: Slack would link and mention plain text", where)
			}
			return checkMrkdwn(where, o.Text)
		}
		return fmt.Errorf("%s: text type %q", where, o.Type)
	}
	for i, b := range blocks {
		where := fmt.Sprintf("blocks[%d]", i)
		switch b := b.(type) {
		case *slack.HeaderBlock:
			if b.Text == nil || b.Text.Type != slack.PlainTextType {
				return fmt.Errorf("%s: a header takes plain_text", where)
			}
			if err := text(where+".text", b.Text, slackMaxHeader); err != nil {
				return err
			}
		case *slack.SectionBlock:
			if b.Text == nil && len(b.Fields) == 0 {
				return fmt.Errorf("%s: a section needs text or fields", where)
			}
			if b.Text != nil {
				if err := text(where+".text", b.Text, slackMaxSection); err != nil {
					return err
				}
			}
			if len(b.Fields) > slackMaxFields {
				return fmt.Errorf("%s: %d fields", where, len(b.Fields))
			}
			for j, f := range b.Fields {
				if err := text(fmt.Sprintf("%s.fields[%d]", where, j), f, slackMaxField); err != nil {
					return err
				}
			}
		case *slack.ContextBlock:
			els := b.ContextElements.Elements
			if len(els) == 0 || len(els) > slackMaxContext {
				return fmt.Errorf("%s: %d context elements", where, len(els))
			}
			for j, e := range els {
				o, ok := e.(*slack.TextBlockObject)
				if !ok {
					return fmt.Errorf("%s: context element %T", where, e)
				}
				if err := text(fmt.Sprintf("%s.elements[%d]", where, j), o, slackMaxSection); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("%s: unexpected block %T", where, b)
		}
	}
	if total > slackMaxTotal {
		return fmt.Errorf("%d characters in all blocks (%d allowed)", total, slackMaxTotal)
	}
	return nil
}

// link is the only markup with angle brackets a message may hold: an
// https link. A route's template may write others; the tests that use
// one say so.
var link = regexp.MustCompile(`<(https://[^\s|<>]+)\|[^<>]+>`)

// checkMrkdwn checks that mrkdwn holds no markup but links to https URLs
// of at most slackMaxURL characters, that every & starts an escape, that
// nothing could mention a whole channel, and that no control character
// but LF, nor any bidi embedding, override or isolate, is left (a body
// keeps the other format characters, which right-to-left text needs).
func checkMrkdwn(where, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: invalid UTF-8", where)
	}
	for _, r := range s {
		if (unicode.IsControl(r) && r != '\n') || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') {
			return fmt.Errorf("%s: character %U", where, r)
		}
	}
	for _, m := range link.FindAllStringSubmatch(s, -1) {
		if u := strings.ReplaceAll(m[1], "&amp;", "&"); utf16Len(m[1]) > slackMaxURL || strings.ContainsAny(u, "<>") {
			return fmt.Errorf("%s: link URL of %d characters: %q", where, utf16Len(m[1]), m[1])
		}
	}
	rest := link.ReplaceAllString(s, "")
	if strings.ContainsAny(rest, "<>") {
		return fmt.Errorf("%s: markup outside a link: %q", where, rest)
	}
	for i := strings.IndexByte(s, '&'); i >= 0; i = next(s, i) {
		if !strings.HasPrefix(s[i:], "&amp;") && !strings.HasPrefix(s[i:], "&lt;") && !strings.HasPrefix(s[i:], "&gt;") {
			return fmt.Errorf("%s: & that is not an escape at %d", where, i)
		}
	}
	if broadcastMention.MatchString(s) {
		return fmt.Errorf("%s: broadcast mention: %q", where, broadcastMention.FindString(s))
	}
	return nil
}

var broadcastMention = regexp.MustCompile(`(?i)@(channel|here|everyone)`)

func next(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '&')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// checkPlain checks that one-line plain text is valid UTF-8 without
// control or format characters (render.OneLine) but the word joiner
// defuseMentions puts after an "@".
func checkPlain(where, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s: invalid UTF-8", where)
	}
	for _, r := range s {
		if unicode.IsControl(r) || (unicode.Is(unicode.Cf, r) && r != '\u2060') {
			return fmt.Errorf("%s: character %U", where, r)
		}
	}
	return nil
}
