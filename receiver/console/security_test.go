package console_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/queue"
	"github.com/stairhook/stairhook/verify"
)

// hostile is an event whose every text the console shows tries to run a
// script or make a dangerous link.
func hostile(ev map[string]any) {
	ev["type"] = `<b onmouseover=alert(0)>renewal</b>`
	acc := ev["account"].(map[string]any)
	acc["name"] = `<script>alert("account")</script>`
	acc["domain"] = `"><img src=x onerror=alert(1)>`
	acc["staircase_url"] = "javascript:alert(2)"
	sig := ev["signal"].(map[string]any)
	sig["title"] = `<img src=x onerror=alert(3)>`
	sig["summary"] = "data:text/html;base64,PHNjcmlwdD5hbGVydCg0KTwvc2NyaXB0Pg=="
	ev["people"] = []any{
		map[string]any{"name": `<svg onload=alert(5)>`, "email": "javascript:alert(6)", "title": `"><script>alert(7)</script>`,
			"role": "JaVaScRiPt:alert(8)", "change": "joined"},
	}
}

// scriptish are what must never appear unescaped in a page.
// (Escaped, they start with &lt; and are text.)
var scriptish = regexp.MustCompile(`(?i)<script|<img|<svg|<b[\s>]|<[^>]*\son[a-z]+\s*=`)

func assertInert(t *testing.T, page, where string) {
	t.Helper()
	// The console's own script tag is the only one.
	own := strings.Replace(page, `<script src="/static/console.js" defer></script>`, "", 1)
	assert.NotRegexp(t, scriptish, own, where)
	for _, l := range links(page) {
		l = strings.ToLower(strings.TrimSpace(html.UnescapeString(l)))
		assert.False(t, strings.HasPrefix(l, "javascript:") || strings.HasPrefix(l, "data:") || strings.HasPrefix(l, "vbscript:"),
			"%s: a link to %q", where, l)
	}
}

func TestHostileContentIsInert(t *testing.T) {
	r := newRig(t)
	r.sinkErr.Store(`<script>alert("error")</script> see javascript:alert(9)`)
	id := `evt_"><script>alert(10)</script>`
	r.accept("staircase", id, hostile, "dead", "ok")
	r.accept("staircase", "evt_data_url", func(ev map[string]any) {
		ev["account"].(map[string]any)["staircase_url"] = "data:text/html,<script>alert(11)</script>"
	}, "ok")
	r.accept("staircase", "evt_http", func(ev map[string]any) {
		ev["account"].(map[string]any)["staircase_url"] = "http://app.staircase.example/accounts/1"
	})
	r.accept("staircase", "evt_https", func(ev map[string]any) {
		ev["account"].(map[string]any)["staircase_url"] = "https://app.staircase.example/accounts/1"
	})
	settle(t, r, map[string]map[string]queue.SinkState{"staircase/" + id: {"dead": queue.StateDead, "ok": queue.StateDelivered}})
	b := r.browser()
	detail := "/event?" + url.Values{"webhook": {"staircase"}, "id": {id}}.Encode()
	for _, p := range []string{"/", "/events", "/events?q=" + url.QueryEscape(id), detail, "/dead", "/event?webhook=staircase&id=evt_data_url",
		"/event?webhook=staircase&id=evt_http"} {
		res := b.get(p)
		require.Equal(t, http.StatusOK, res.Code, p)
		assertInert(t, res.Body.String(), p)
	}
	page := b.get(detail).Body.String()
	assert.Contains(t, page, `&lt;script&gt;alert(&#34;account&#34;)&lt;/script&gt;`, "shown as text")
	assert.Contains(t, page, `&lt;img src=x onerror=alert(3)&gt;`)
	assert.Contains(t, page, `&lt;svg onload=alert(5)&gt;`)
	assert.Contains(t, page, `javascript:alert(6)`, "as text, not as a link")
	assert.Contains(t, page, `&lt;script&gt;alert(&#34;error&#34;)&lt;/script&gt;`, "a sink's error, as text")
	assert.NotContains(t, page, "ZgotmplZ", "no link at all, not even one html/template defused")
	assert.NotContains(t, b.get("/event?webhook=staircase&id=evt_http").Body.String(), `href="http://app.staircase.example`, "plain http is not a link")
	assert.NotContains(t, b.get("/event?webhook=staircase&id=evt_data_url").Body.String(), "ZgotmplZ")
	assert.Contains(t, b.get("/event?webhook=staircase&id=evt_https").Body.String(),
		`<a href="https://app.staircase.example/accounts/1" rel="noopener noreferrer">`, "https is")

	// The JSON answers escape markup too.
	for _, p := range []string{"/api/events", "/api/event?" + url.Values{"webhook": {"staircase"}, "id": {id}}.Encode(), "/api/dead"} {
		res := b.get(p)
		require.Equal(t, http.StatusOK, res.Code, p)
		assert.Equal(t, "application/json", res.Header().Get("Content-Type"))
		assert.NotContains(t, res.Body.String(), "<", p)
		assert.NotContains(t, res.Body.String(), ">", p)
	}

	// A test notification about a hostile account name.
	res := b.action("/test", url.Values{"webhook": {"staircase"}, "type": {"churn_risk"}, "account": {`<script>alert(12)</script>`}})
	require.Equal(t, http.StatusOK, res.Code)
	assertInert(t, res.Body.String(), "test result")
}

// secrets is a webhook secret, a MAC computed with it and the signature
// header that carries the MAC: none may show on any page or answer.
type secrets struct {
	text, b64, hexKey string
	mac, signature    string
}

func newSecrets(t *testing.T) secrets {
	s, err := verify.NewSecret()
	require.NoError(t, err)
	text := s.Encode()
	b64 := strings.TrimPrefix(text, verify.SecretPrefix)
	key, err := base64.StdEncoding.DecodeString(b64)
	require.NoError(t, err)
	m := hmac.New(sha256.New, key)
	m.Write([]byte("evt_leak.1700000000.{}"))
	mac := base64.StdEncoding.EncodeToString(m.Sum(nil))
	return secrets{text: text, b64: b64, hexKey: hex.EncodeToString(key), mac: mac, signature: "v1," + mac}
}

func (s secrets) assertAbsent(t *testing.T, where, text string) {
	t.Helper()
	for name, v := range map[string]string{"the secret": s.b64, "the key as hex": s.hexKey, "the MAC": s.mac,
		"the MAC, URL-encoded": url.QueryEscape(s.mac), "the admin token": token} {
		assert.NotContains(t, text, v, "%s shows %s", where, name)
	}
}

func TestNothingLeaks(t *testing.T) {
	r := newRig(t)
	s := newSecrets(t)
	// A sink that quotes everything it should not.
	r.sinkErr.Store("POST https://bot:" + s.b64 + "@jira.example/rest failed: Authorization: Basic " + s.b64 +
		"; secret=" + s.text + "; X-Staircase-Signature: " + s.signature + "; token " + s.b64)
	r.accept("staircase", "evt_leak", func(ev map[string]any) {
		ev["signal"].(map[string]any)["summary"] = "a sender that pasted " + s.text + " into a field"
	}, "dead", "ok", "slow")
	settle(t, r, map[string]map[string]queue.SinkState{"staircase/evt_leak": {"dead": queue.StateDead, "ok": queue.StateDelivered, "slow": queue.StateRetrying}})

	// Refused requests carrying the signature, and a hint quoting it.
	req := httptest.NewRequest(http.MethodPost, "/webhooks/staircase", nil)
	for _, h := range []string{"X-Staircase-Signature", "Webhook-Signature"} {
		req.Header.Set(h, s.signature)
	}
	req.Header.Set("X-Staircase-Id", "evt_leak")
	r.rec.Refused(queue.NewRefusal(req, "staircase", 401, "no_matching_signature", "no match for "+s.signature))
	r.rec.KeyUsed("staircase", "current", r.clock())
	require.NoError(t, r.rec.Flush(context.Background()))

	b := r.browser()
	sc := r.script()
	var seen []string
	check := func(c *client, path string, res *httptest.ResponseRecorder) {
		t.Helper()
		text := res.Body.String()
		for k, v := range res.Header() {
			text += "\n" + k + ": " + strings.Join(v, ", ")
		}
		s.assertAbsent(t, path, text)
		if c.cookie != nil {
			assert.NotContains(t, res.Body.String(), c.cookie.Value, "%s shows the session cookie", path)
		}
		seen = append(seen, path)
	}
	pages := []string{
		"/", "/events", "/events?state=dead", "/events?q=evt_leak", "/event?webhook=staircase&id=evt_leak", "/event?id=evt_leak",
		"/refused", "/refused?reason=no_matching_signature", "/dead", "/dead?sink=dead", "/keys", "/test", "/metrics",
		"/api/overview", "/api/events", "/api/event?webhook=staircase&id=evt_leak", "/api/refused", "/api/dead", "/api/keys", "/api/csrf",
		"/login", "/static/console.css", "/static/console.js", "/no-such-page",
	}
	for _, c := range []*client{b, sc} {
		for _, p := range pages {
			check(c, p, c.get(p))
		}
	}
	// The answers of actions, and the test notification's.
	r.echo.Store(s.signature)
	check(b, "POST /test", b.action("/test", url.Values{"webhook": {"staircase"}, "type": {"churn_risk"}, "account": {"Acme"}}))
	check(b, "POST /jobs/retry", b.action("/jobs/retry", url.Values{"job": {"999999"}}))
	check(b, "POST /login", r.anonymous().post("/login", url.Values{"token": {token}}))
	check(b, "POST /login (wrong)", r.anonymous().post("/login", url.Values{"token": {s.text}}))

	// The planted values are there to be found: the check can fail.
	page := b.get("/event?webhook=staircase&id=evt_leak").Body.String()
	assert.Contains(t, page, "whsec_[redacted]")
	assert.Contains(t, page, "Signature: [redacted]")
	assert.Contains(t, page, "Authorization: Basic [redacted]")
	assert.Contains(t, page, "https://[redacted]@jira.example")
	assert.Contains(t, b.get("/refused").Body.String(), "<code>X-Staircase-Signature</code>")
	assert.Len(t, seen, 2*len(pages)+4)
}
