package console_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/receiver/console"
)

// routes are every route of the console but /login and /static/, with a
// method each.
var routes = []struct{ method, path string }{
	{"GET", "/"}, {"GET", "/events"}, {"GET", "/event?webhook=staircase&id=e1"}, {"GET", "/refused"},
	{"GET", "/dead"}, {"GET", "/keys"}, {"GET", "/test"}, {"GET", "/metrics"},
	{"GET", "/api/csrf"}, {"GET", "/api/overview"}, {"GET", "/api/events"}, {"GET", "/api/event?webhook=staircase&id=e1"},
	{"GET", "/api/refused"}, {"GET", "/api/dead"}, {"GET", "/api/keys"},
	{"POST", "/logout"}, {"POST", "/jobs/retry"}, {"POST", "/jobs/replay"}, {"POST", "/dead/replay-all"}, {"POST", "/test"},
	{"GET", "/no-such-page"}, {"POST", "/no-such-action"}, {"DELETE", "/events"}, {"HEAD", "/"},
}

// actions are the state-changing routes and a form each would carry.
var actions = []struct {
	path string
	form url.Values
}{
	{"/logout", nil},
	{"/jobs/retry", url.Values{"job": {"1"}}},
	{"/jobs/replay", url.Values{"job": {"1"}}},
	{"/dead/replay-all", url.Values{}},
	{"/test", url.Values{"webhook": {"staircase"}, "type": {"churn_risk"}, "account": {"Acme"}}},
}

func TestEveryRouteNeedsTheToken(t *testing.T) {
	r := newRig(t)
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			// A browser asking for a page goes to the login form; anything
			// else is told 401.
			req := httptest.NewRequest(rt.method, rt.path, strings.NewReader("csrf=x"))
			req.Header.Set("Accept", "text/html")
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res := r.anonymous().do(req)
			if rt.method == "GET" || rt.method == "HEAD" {
				require.Equal(t, http.StatusSeeOther, res.Code)
				loc, err := url.Parse(res.Header().Get("Location"))
				require.NoError(t, err)
				assert.Equal(t, "/login", loc.Path)
				assert.Equal(t, rt.path, loc.Query().Get("next"))
			} else {
				assert.Equal(t, http.StatusUnauthorized, res.Code)
			}
			req = httptest.NewRequest(rt.method, rt.path, nil)
			res = r.anonymous().do(req)
			assert.Equal(t, http.StatusUnauthorized, res.Code, "a script without the token")
			assert.Contains(t, res.Header().Get("WWW-Authenticate"), "Bearer")

			for _, cred := range []func(*http.Request){
				func(q *http.Request) { q.Header.Set("Authorization", "Bearer wrong-token-of-some-length") },
				func(q *http.Request) { q.Header.Set("Authorization", "Basic "+token) },
				func(q *http.Request) { q.Header.Set("Authorization", "Bearer "+token+"x") },
				func(q *http.Request) { q.Header.Set("Authorization", "Bearer "+token[:len(token)-1]) },
				func(q *http.Request) { q.AddCookie(&http.Cookie{Name: "stairhook_session", Value: "forged"}) },
				func(q *http.Request) { q.AddCookie(&http.Cookie{Name: "stairhook_session", Value: token}) },
			} {
				req = httptest.NewRequest(rt.method, rt.path, nil)
				cred(req)
				// Each from an address of its own: these tests are not about
				// the slowing down.
				c := r.anonymous()
				c.remote = "198.51.100." + strconv.Itoa(int(r.now.Add(1)%250)) + ":1"
				res = c.do(req)
				assert.Equal(t, http.StatusUnauthorized, res.Code)
			}
		})
	}
	// The login form and the two embedded files are open; nothing else
	// under /static/.
	c := r.anonymous()
	assert.Equal(t, http.StatusOK, c.get("/login").Code)
	css := c.get("/static/console.css")
	assert.Equal(t, http.StatusOK, css.Code)
	assert.Contains(t, css.Header().Get("Content-Type"), "text/css")
	assert.Equal(t, http.StatusOK, c.get("/static/console.js").Code)
	for _, p := range []string{"/static/", "/static/nope.css", "/static/layout.html", "/static/static/console.css"} {
		assert.Equal(t, http.StatusNotFound, c.get(p).Code, p)
	}
	// A path with dots is cleaned first, and lands outside /static/.
	res := c.get("/static/../layout.html")
	assert.NotEqual(t, http.StatusOK, res.Code)
	assert.NotContains(t, res.Body.String(), "define")
}

func TestStateChangingNeedsCSRF(t *testing.T) {
	r := newRig(t)
	b := r.browser()
	other := r.browser()
	s := r.script()
	for _, a := range actions {
		t.Run(a.path, func(t *testing.T) {
			form := func(csrf string) url.Values {
				f := url.Values{}
				for k, v := range a.form {
					f[k] = v
				}
				if csrf != "" {
					f.Set("csrf", csrf)
				}
				return f
			}
			assert.Equal(t, http.StatusForbidden, b.post(a.path, form("")).Code, "no token")
			assert.Equal(t, http.StatusForbidden, b.post(a.path, form("forged")).Code, "a forged token")
			assert.Equal(t, http.StatusForbidden, b.post(a.path, form(other.csrf())).Code, "another session's token")
			assert.Equal(t, http.StatusForbidden, s.post(a.path, form("")).Code, "a script without its token")

			// A cross-site request is refused even with the right token.
			req := httptest.NewRequest(http.MethodPost, a.path, strings.NewReader(form(b.csrf()).Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			assert.Equal(t, http.StatusForbidden, b.do(req).Code, "cross-site")

			// With the session's own token it goes through (whatever the
			// action then answers).
			res := s.post(a.path, form(s.csrf()))
			assert.NotEqual(t, http.StatusForbidden, res.Code, res.Body.String())
			if a.path != "/logout" {
				res = b.post(a.path, form(b.csrf()))
				assert.NotEqual(t, http.StatusForbidden, res.Code, res.Body.String())
			}
		})
	}
	// The header works as the field does, for scripts.
	req := httptest.NewRequest(http.MethodPost, "/dead/replay-all", nil)
	req.Header.Set("X-CSRF-Token", s.csrf())
	assert.Equal(t, http.StatusSeeOther, s.do(req).Code)
}

func TestLoginCookieAndLogout(t *testing.T) {
	r := newRig(t)
	c := r.anonymous()
	res := c.post("/login", url.Values{"token": {token}, "next": {"/events?state=dead"}})
	require.Equal(t, http.StatusSeeOther, res.Code)
	assert.Equal(t, "/events?state=dead", res.Header().Get("Location"))
	ck := res.Result().Cookies()[0]
	assert.Equal(t, "stairhook_session", ck.Name)
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	assert.False(t, ck.Secure, "plain http: a Secure cookie would not come back")
	assert.NotContains(t, ck.Value, token)
	c.cookie = ck
	assert.Equal(t, http.StatusOK, c.get("/events").Code)

	// Over TLS the cookie is Secure.
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.TLS = &tls.ConnectionState{}
	res = r.anonymous().do(req)
	require.Equal(t, http.StatusSeeOther, res.Code)
	assert.True(t, res.Result().Cookies()[0].Secure)
	assert.NotEmpty(t, res.Header().Get("Strict-Transport-Security"))

	// Never a redirect elsewhere.
	for _, next := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "evil", "/login?next=//evil.example"} {
		res := r.anonymous().post("/login", url.Values{"token": {token}, "next": {next}})
		assert.Equal(t, "/", res.Header().Get("Location"), next)
	}

	// A session ends at its lifetime.
	r.advance(console.SessionLifetime + time.Second)
	assert.Equal(t, http.StatusUnauthorized, r.anonymous().do(withCookie(httptest.NewRequest("GET", "/api/events", nil), ck)).Code)

	// Logging out ends the session, even for a copy of its cookie.
	b := r.browser()
	saved := b.cookie
	res = b.action("/logout", nil)
	require.Equal(t, http.StatusSeeOther, res.Code)
	assert.Equal(t, -1, res.Result().Cookies()[0].MaxAge)
	assert.Equal(t, http.StatusUnauthorized, r.anonymous().do(withCookie(httptest.NewRequest("GET", "/api/events", nil), saved)).Code)
}

func withCookie(req *http.Request, ck *http.Cookie) *http.Request {
	req.AddCookie(ck)
	return req
}

func TestWrongTokenIsSlowedDown(t *testing.T) {
	r := newRig(t)
	c := r.anonymous()
	res := c.post("/login", url.Values{"token": {"not-the-token-at-all"}})
	assert.Equal(t, http.StatusUnauthorized, res.Code)
	assert.Contains(t, res.Body.String(), "not the admin token")

	// The next try from that address, even with the right token, waits.
	res = c.post("/login", url.Values{"token": {token}})
	assert.Equal(t, http.StatusTooManyRequests, res.Code)
	assert.Equal(t, "1", res.Header().Get("Retry-After"))
	assert.Empty(t, res.Result().Cookies())
	// A script from there too.
	req := httptest.NewRequest(http.MethodGet, "/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	assert.Equal(t, http.StatusTooManyRequests, c.do(req).Code)
	// Another address does not.
	assert.Equal(t, http.StatusOK, r.script().do(httptest.NewRequest(http.MethodGet, "/api/events", nil)).Code)

	// Each further failure doubles the wait.
	r.advance(time.Second)
	assert.Equal(t, http.StatusUnauthorized, c.post("/login", url.Values{"token": {"wrong-again-wrong-again"}}).Code)
	res = c.post("/login", url.Values{"token": {token}})
	assert.Equal(t, http.StatusTooManyRequests, res.Code)
	assert.Equal(t, "2", res.Header().Get("Retry-After"))
	r.advance(time.Second)
	assert.Equal(t, http.StatusTooManyRequests, c.post("/login", url.Values{"token": {token}}).Code)
	r.advance(time.Second)
	assert.Equal(t, http.StatusSeeOther, c.post("/login", url.Values{"token": {token}}).Code, "after the wait, and the count forgotten")
	assert.Equal(t, http.StatusUnauthorized, c.post("/login", url.Values{"token": {"wrong-once-more-wrong"}}).Code)
	assert.Equal(t, "1", c.post("/login", url.Values{"token": {token}}).Header().Get("Retry-After"), "back to the first wait")

	// A wrong bearer token counts the same.
	s := r.script()
	s.remote = "203.0.113.5:1"
	s.bearer = "wrong-bearer-token-value"
	assert.Equal(t, http.StatusUnauthorized, s.do(httptest.NewRequest(http.MethodGet, "/api/events", nil)).Code)
	s.bearer = token
	assert.Equal(t, http.StatusTooManyRequests, s.do(httptest.NewRequest(http.MethodGet, "/api/events", nil)).Code)

	// The wait is capped at a minute.
	for range 10 {
		r.advance(2 * time.Minute)
		s.bearer = "wrong-bearer-token-value"
		s.do(httptest.NewRequest(http.MethodGet, "/api/events", nil))
	}
	s.bearer = token
	assert.Equal(t, "60", s.do(httptest.NewRequest(http.MethodGet, "/api/events", nil)).Header().Get("Retry-After"))
}

func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	r := newRig(t)
	b := r.browser()
	for _, res := range []*httptest.ResponseRecorder{
		b.get("/"), b.get("/events"), b.get("/event?webhook=x&id=none"), b.get("/static/console.css"),
		r.anonymous().get("/login"), r.anonymous().get("/"), r.anonymous().do(httptest.NewRequest("GET", "/api/events", nil)),
		b.post("/jobs/retry", nil), b.get("/metrics"),
	} {
		h := res.Header()
		csp := h.Get("Content-Security-Policy")
		assert.Contains(t, csp, "default-src 'none'")
		assert.Contains(t, csp, "script-src 'self'")
		assert.Contains(t, csp, "style-src 'self'")
		assert.Contains(t, csp, "frame-ancestors 'none'")
		assert.NotContains(t, csp, "unsafe-inline")
		assert.Equal(t, "DENY", h.Get("X-Frame-Options"))
		assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
		assert.Equal(t, "no-referrer", h.Get("Referrer-Policy"))
		assert.Equal(t, "no-store", h.Get("Cache-Control"))
	}
	// No inline script or style anywhere.
	for _, p := range []string{"/", "/events", "/refused", "/dead", "/keys", "/test"} {
		page := b.get(p).Body.String()
		assert.NotRegexp(t, `<script>|<script [^>]*>[^<]|<style|style="|\son[a-z]+=`, page, p)
	}
}

func TestNewRefusesAWeakToken(t *testing.T) {
	r := newRig(t)
	_, err := console.New(console.Options{Queue: r.q, Token: strings.Repeat("x", console.MinTokenLength-1)})
	assert.ErrorIs(t, err, console.ErrWeakToken)
	_, err = console.New(console.Options{Token: token})
	assert.ErrorIs(t, err, console.ErrNoQueue)
	_, err = console.New(console.Options{Queue: r.q, Token: strings.Repeat("x", console.MinTokenLength)})
	assert.NoError(t, err)
}
