package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/mailpit"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/verify"
	"github.com/stairhook/stairhook/verify/verifytest"
)

// The console's pages and actions, as the tests below reach them.
const (
	loginButton = `form[action="/login"] button[type="submit"]`
	jobArticle  = `#content article.job`
)

// TestConsoleBrowserOperator is an operator's session in Chromium against
// the real `stairhook serve`, with the Jira test server (behind a front
// that can fail) and Mailpit: a wrong token is refused; the login form
// leads on to the page asked for; an event arrives while Jira is down and
// the events page, refreshing itself, shows its Jira sink turn delivered;
// its detail shows the attempts and what the sinks noted; an event that
// Jira refuses (400) becomes a dead letter, and once the cause is fixed
// the dead-letter page replays it and it is delivered; a test
// notification sent from the Test page is accepted and its link leads to
// the event.
func TestConsoleBrowserOperator(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	mp := mailpit.Start(t)
	st := newServeStack(t)
	o := st.options(serveOptions{Delivery: fastRetries})
	o.SMTPHost, o.SMTPPort = mp.SMTPHost, mp.SMTPPort
	cs := startConsoleServe(t, st.bin, o, st.secret)
	ep := st.endpoint(cs.serveProc)
	b := newBrowser(t, cs.admin, 1200, 800, false)
	run := time.Now().UnixNano()

	// Without a session, a page sends the browser to the login form,
	// which remembers the page.
	b.open("/events")
	require.Equal(t, "/login?next=%2Fevents", b.location())

	// A wrong token is refused, on the form, with no session.
	b.fill(`input[name="token"]`, "not-the-admin-token-"+strconv.FormatInt(run, 36))
	assert.EqualValues(t, http.StatusUnauthorized, b.submit(loginButton))
	assert.Contains(t, b.textOf(`#content .error`), "not the admin token")
	assert.Zero(t, eval[int](b, `document.querySelectorAll('nav a').length`), "no navigation without a session")
	assert.Nil(t, b.cookie("stairhook_session"))
	failed := time.Now()
	b.problems() // the browser logs the 401 as a failed load

	// An event arrives while Jira is down (503): accepted, its email
	// delivered, its Jira sink retrying.
	st.front.outage(http.StatusServiceUnavailable, time.Hour)
	id1 := fmt.Sprintf("evt_console_%d_ok", run)
	resp := postSigned(t, ep.URL, st.secret, id1, eventBody(t, event.TypeChurnRisk, id1, nil))
	require.Equal(t, http.StatusAccepted, resp.StatusCode, resp.Body)
	waitFor(t, 20*time.Second, "a Jira attempt for "+id1, func() bool { return st.front.arrivals(jiraIssuePath)+st.front.arrivals(jiraSearchPath) > 0 })

	// The right token, once the wait after a failed login has passed.
	time.Sleep(time.Until(failed.Add(1100 * time.Millisecond)))
	b.fill(`input[name="token"]`, cs.token)
	require.EqualValues(t, http.StatusOK, b.submit(loginButton), "login: %s", b.text())
	assert.Equal(t, "/events", b.location(), "the login goes on to the page asked for")
	ck := b.cookie("stairhook_session")
	require.NotNil(t, ck, "the session cookie")
	assert.True(t, ck.HTTPOnly, "HttpOnly")
	assert.Equal(t, "Strict", string(ck.SameSite))
	assert.Equal(t, "/", ck.Path)

	// The event is listed, its Jira sink not delivered while Jira is down.
	states, err := sinkStates(b, id1)
	require.NoError(t, err, "the events page lists %s:\n%s", id1, b.text())
	assert.NotEqual(t, "delivered", states[sinkJira], "Jira is down")
	assert.Contains(t, []string{"queued", "running", "retrying", "waiting", "delivered"}, states[sinkEmail])

	// Not before an attempt has failed: the Jira sink retries a 503 up to
	// 3 times within one attempt, so an outage ending during the first
	// one would leave no failed attempt to show. A fourth request is the
	// second attempt's.
	waitFor(t, 60*time.Second, "a second Jira attempt for "+id1, func() bool {
		return st.front.arrivals(jiraIssuePath)+st.front.arrivals(jiraSearchPath) >= 4
	})

	// Jira comes back: the page refreshes itself (no reload here) and
	// shows both sinks delivered.
	st.front.outage(0, 0)
	b.waitJS("both sinks of "+id1+" delivered (the page's own refresh)", allDeliveredJS(id1), 30*time.Second)
	assert.Equal(t, "/events", b.location(), "refreshed in place")

	// The event's detail.
	require.EqualValues(t, http.StatusOK, b.submit(`#content a[href=`+cssString(eventPath(webhookName, id1))+`]`))
	assert.Equal(t, eventPath(webhookName, id1), b.location())
	assert.Contains(t, b.textOf(`#content h1`), id1)
	facts := b.textOf(`#content section[aria-label="Verified facts"]`)
	assert.Contains(t, facts, webhookName)
	assert.Contains(t, facts, "current", "the key label")
	assert.Contains(t, b.textOf(`#content section[aria-label="What the event says"]`), "Acme Corp")
	jobs := eval[[]map[string]string](b, `[...document.querySelectorAll('`+jobArticle+`')].map(a => ({
		sink: a.querySelector('h3').firstChild.textContent.trim(),
		state: a.querySelector('h3 .state').textContent,
		text: a.innerText,
		tries: String(a.querySelectorAll('tbody tr').length),
		firstError: (a.querySelector('tbody tr td.pre') || {}).textContent || '',
	}))`)
	require.Len(t, jobs, 2, "a job per sink")
	for _, j := range jobs {
		assert.Equal(t, "delivered", j["state"], j["sink"])
		switch j["sink"] {
		case sinkJira:
			assert.Regexp(t, `jira_issue\s+CS-\d+`, j["text"], "the Jira issue key")
			n, _ := strconv.Atoi(j["tries"])
			assert.GreaterOrEqual(t, n, 2, "the failed attempts and the delivery")
			assert.Contains(t, j["firstError"], "503", "the first attempt's error")
		case sinkEmail:
			assert.Regexp(t, `message_id\s+\S+@\S+`, j["text"], "the email's Message-ID")
		default:
			t.Errorf("unexpected sink %q", j["sink"])
		}
	}
	assert.Contains(t, b.textOf(`#content pre.body`), `"id": "`+id1+`"`, "the body, pretty-printed")
	assert.Len(t, waitMailpit(t, mp, id1, 1), 1, "the email in Mailpit")
	assert.Equal(t, 1, issuesFor(st.jira, id1))

	// Jira refuses the next event (400: permanent): a dead letter.
	st.front.outage(http.StatusBadRequest, time.Hour)
	id2 := fmt.Sprintf("evt_console_%d_dead", run)
	resp = postSigned(t, ep.URL, st.secret, id2, eventBody(t, event.TypeRenewal, id2, nil))
	require.Equal(t, http.StatusAccepted, resp.StatusCode, resp.Body)
	deadRow := fmt.Sprintf(`[...document.querySelectorAll('#content tbody tr')].find(tr => tr.querySelector('a') && tr.querySelector('a').textContent === %s)`, jsString(id2))
	b.reloadUntil("the dead letter of "+id2, "/dead", deadRow, 30*time.Second)
	row := eval[[]string](b, `[...(`+deadRow+`).querySelectorAll('td')].map(td => td.textContent)`)
	require.GreaterOrEqual(t, len(row), 6, "%q", row)
	assert.Equal(t, sinkJira, row[3], "the dead sink")
	assert.Contains(t, row[5], "400", "the error")

	// The cause is fixed; the operator replays it from the page.
	st.front.outage(0, 0)
	require.EqualValues(t, http.StatusOK, b.submitSearch(fmt.Sprintf(`//tr[td/a[text()=%q]]//button[normalize-space()="Replay"]`, id2)))
	assert.True(t, strings.HasPrefix(b.location(), "/dead"), b.location())
	assert.Equal(t, "The dead letter was queued again.", b.textOf(`#content .notice`))
	b.reloadUntil(id2+" delivered after the replay", eventPath(webhookName, id2),
		`[...document.querySelectorAll('`+jobArticle+`')].every(a => a.querySelector('h3 .state').textContent === 'delivered')`, 30*time.Second)
	assert.Contains(t, b.text(), "replay of job", "the replayed job says so")
	assert.Equal(t, 1, issuesFor(st.jira, id2))
	assert.Len(t, waitMailpit(t, mp, id2, 1), 1, "one email, not a second one by the replay")

	// A test notification from the Test page, followed to its event.
	b.open("/test")
	b.fill(`input[name="account"]`, "Console Test Co")
	require.EqualValues(t, http.StatusOK, b.submit(`form[action="/test"] button[type="submit"]`))
	result := b.textOf(`#content section[aria-label="Result"]`)
	assert.Contains(t, result, "Accepted")
	assert.Contains(t, result, "HTTP 202")
	testID := b.textOf(`#content section[aria-label="Result"] code`)
	require.True(t, strings.HasPrefix(testID, "evt_test_"), "the test event's id: %q", testID)
	require.EqualValues(t, http.StatusOK, b.submit(`#content section[aria-label="Result"] a`))
	assert.Equal(t, eventPath(webhookName, testID), b.location())
	assert.Contains(t, b.textOf(`#content h1`), testID)
	assert.Contains(t, b.textOf(`#content h1 .tag`), "test")
	assert.Contains(t, b.textOf(`#content section[aria-label="What the event says"]`), "Console Test Co")
	b.reloadUntil("the test notification delivered", eventPath(webhookName, testID),
		`document.querySelectorAll('`+jobArticle+`').length === 2 && [...document.querySelectorAll('`+jobArticle+` h3 .state')].every(s => s.textContent === 'delivered')`, 30*time.Second)

	// Log out: the session ends.
	require.EqualValues(t, http.StatusOK, b.submit(`form[action="/logout"] button`))
	assert.True(t, strings.HasPrefix(b.location(), "/login"), b.location())
	b.open("/events")
	assert.True(t, strings.HasPrefix(b.location(), "/login"), "after logging out: %s", b.location())

	dialogs, errs := b.problems()
	assert.Empty(t, dialogs, "dialogs")
	assert.Empty(t, errs, "console errors")
}

// hostile are the texts of TestConsoleBrowserHostileContent: markup that
// would run a script or load something if the console rendered it as
// HTML, and addresses that would run one if it made them links.
var hostile = struct {
	account, domain, title, summary, rule, person, personTitle, change, email string
	jsURL, jsURLUpper, dataURL, httpURL                                       string
}{
	account:     `<script>alert("account")</script><img src=x onerror=alert("account-img")>`,
	domain:      `"><svg onload=alert("domain")>`,
	title:       `<img src=x onerror=alert("title")>`,
	summary:     `</pre></dd><script>alert("summary")</script><iframe src="javascript:alert('summary-frame')"></iframe>`,
	rule:        `<a href="javascript:alert('rule')">rule</a>`,
	person:      `<script>alert("person")</script>`,
	personTitle: `<a href="data:text/html,<script>alert('person-title')</script>">CEO</a>`,
	change:      `<body onload=alert("change")>`,
	email:       `javascript:alert("email")`,
	jsURL:       `javascript:alert("url")`,
	jsURLUpper:  "\tJaVaScRiPt:alert(\"url2\")",
	dataURL:     `data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==`,
	httpURL:     `http://app.staircase.ai/accounts/acc_plain_http`,
}

// hostileEvent is an event of the webhook whose every text is hostile,
// with staircase_url url.
func hostileEvent(t testing.TB, id, accountURL string) []byte {
	t.Helper()
	return eventBody(t, event.TypeAccountPersonnelChange, id, func(m map[string]any) {
		acc := m["account"].(map[string]any)
		acc["name"], acc["domain"], acc["staircase_url"] = hostile.account, hostile.domain, accountURL
		sig := m["signal"].(map[string]any)
		sig["title"] = hostile.title + " [" + id + "]"
		sig["summary"] = hostile.summary
		m["notification"].(map[string]any)["name"] = hostile.rule
		m["people"] = []any{map[string]any{
			"name": hostile.person, "email": hostile.email, "title": hostile.personTitle,
			"role": "decision_maker", "change": hostile.change,
		}}
	})
}

// TestConsoleBrowserHostileContent sends events whose account name,
// domain, title, summary, notification rule and people hold markup, and
// whose account address is a javascript:, data: or plain http URL; a
// request to a webhook named with markup (the refused list and the
// overview show it); and a test notification about an account named with
// markup. Every page that shows them must show the markup as text, run no
// script (no dialog, no console error: a CSP violation or a failed image
// load would be one), load no image or frame, and make no link other than
// the console's own and https ones — the https account address of a
// control event is a link.
func TestConsoleBrowserHostileContent(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	st := newServeStack(t)
	cs := startConsoleServe(t, st.bin, st.options(serveOptions{Delivery: fastRetries}), st.secret)
	ep := st.endpoint(cs.serveProc)
	run := time.Now().UnixNano()

	// An id with markup is visible ASCII, as ids must be.
	control := fmt.Sprintf("evt_hostile_%d_https", run)
	controlURL := "https://app.staircase.ai/accounts/acc_01J9Z3K7QK2V8M4N6P0R2T4V6X?tab=signals&x=%3Cb%3E"
	events := []struct{ id, accountURL string }{
		{fmt.Sprintf(`evt_hostile_%d_js"><img/src=x/onerror=alert("id")>`, run), hostile.jsURL},
		{fmt.Sprintf("evt_hostile_%d_js_upper", run), hostile.jsURLUpper},
		{fmt.Sprintf("evt_hostile_%d_data", run), hostile.dataURL},
		{fmt.Sprintf("evt_hostile_%d_http", run), hostile.httpURL},
		{control, controlURL},
	}
	for _, e := range events {
		resp := postSigned(t, ep.URL, st.secret, e.id, hostileEvent(t, e.id, e.accountURL))
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "%s: %s", e.id, resp.Body)
	}
	// A webhook named with markup: refused, and recorded under its name.
	body := eventBody(t, event.TypeRenewal, "evt_hostile_hook", nil)
	hookName := `<img src=x onerror=alert("hook")>` // no "/": the path must match
	hookURL := "http://" + cs.addr + "/webhooks/" + url.PathEscape(hookName)
	resp := postSigned(t, hookURL, st.secret, "evt_hostile_hook", body)
	require.GreaterOrEqual(t, resp.StatusCode, 400)

	b := newBrowser(t, cs.admin, 1200, 800, false)
	b.login(cs.token)
	// A test notification about an account named with markup.
	b.open("/test")
	b.fill(`input[name="account"]`, `<img src=x onerror=alert("test-account")>`)
	require.EqualValues(t, http.StatusOK, b.submit(`form[action="/test"] button[type="submit"]`))
	testID := b.textOf(`#content section[aria-label="Result"] code`)
	require.True(t, strings.HasPrefix(testID, "evt_test_"), "the test event: %s", b.text())

	pages := []string{"/", "/events", "/dead", "/refused", "/keys", "/test", eventPath(webhookName, testID)}
	for _, e := range events {
		pages = append(pages, eventPath(webhookName, e.id))
	}
	b.reloadUntil("every hostile event listed", "/events", fmt.Sprintf(`document.querySelectorAll('#content tbody tr').length >= %d`, len(events)+1), 20*time.Second)
	b.reloadUntil("the refused request listed", "/refused", `document.querySelectorAll('#content tbody tr').length >= 1`, 20*time.Second)
	b.problems()
	for _, p := range pages {
		t.Run(p, func(t *testing.T) {
			require.EqualValues(t, http.StatusOK, b.open(p))
			text := b.text()
			checkInert(t, b)
			switch {
			case strings.HasPrefix(p, "/event?"):
				q, _ := url.ParseQuery(strings.TrimPrefix(p, "/event?"))
				id := q.Get("id")
				if id == testID {
					assert.Contains(t, text, `<img src=x onerror=alert("test-account")>`, "the account name, as text")
					return
				}
				for _, s := range []string{hostile.account, hostile.domain, hostile.title, hostile.summary, hostile.rule,
					hostile.person, hostile.personTitle, hostile.change, hostile.email} {
					assert.Contains(t, text, s, "shown as text")
				}
				assert.Contains(t, b.textOf(`#content h1 code`), id)
				links := eval[[]string](b, `[...document.querySelectorAll('#content a[href]')].map(a => a.href)`)
				if id == control {
					assert.Contains(t, links, controlURL, "an https address is a link")
					assert.Equal(t, "noopener noreferrer", eval[string](b, `document.querySelector('#content a[href^="https:"]').rel`))
				} else {
					assert.Empty(t, links, "a javascript:, data: or http address is no link")
				}
			case p == "/refused":
				assert.Contains(t, text, hookName, "the webhook's name, as text")
			case p == "/events":
				assert.Contains(t, text, `"><img/src=x/onerror=alert("id")>`, "the event id, as text")
			}
		})
	}
	dialogs, errs := b.problems()
	assert.Empty(t, dialogs, "dialogs opened")
	assert.Empty(t, errs, "console errors")
}

// checkInert fails the test unless the page runs the console's script
// alone, loads no image, frame or object, makes no link but http(s) ones
// (the console's own are same-origin), and opened no dialog and wrote no
// error to the console.
func checkInert(t *testing.T, b *browser) {
	t.Helper()
	scripts := eval[[]string](b, `[...document.scripts].map(s => s.src)`)
	assert.Equal(t, []string{b.base + "/static/console.js"}, scripts, "the only script")
	assert.Zero(t, eval[int](b, `document.querySelectorAll('img, iframe, frame, object, embed, svg, video, audio, source, base, form:not([action^="/"])').length`),
		"no element that loads or runs something")
	assert.Zero(t, eval[int](b, `[...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => /^on/i.test(a.name))).length`), "no event handler attribute")
	type link struct{ Href, Protocol, Host string }
	for _, l := range eval[[]link](b, `[...document.querySelectorAll('a[href], area[href], [src], [action], [formaction]')].map(a => {
		const u = new URL(a.getAttribute('href') || a.getAttribute('src') || a.getAttribute('action') || a.getAttribute('formaction'), location.href);
		return {Href: u.href, Protocol: u.protocol, Host: u.host};
	})`) {
		switch {
		case l.Protocol == "https:":
		case l.Protocol == "http:" && "http://"+l.Host == b.base:
		default:
			t.Errorf("a link or source %q", l.Href)
		}
	}
	dialogs, errs := b.settle()
	assert.Empty(t, dialogs, "dialogs opened")
	assert.Empty(t, errs, "console errors")
}

// consoleRoute is a route of the admin listener.
type consoleRoute struct{ method, path string }

// consoleRoutes are every route of the console that requires the token
// (receiver/console's routes), and a path it does not serve.
var consoleRoutes = []consoleRoute{
	{"GET", "/"}, {"GET", "/events"}, {"GET", "/event?webhook=staircase&id=evt_x"}, {"GET", "/refused"},
	{"GET", "/dead"}, {"GET", "/keys"}, {"GET", "/test"}, {"GET", "/metrics"},
	{"GET", "/api/csrf"}, {"GET", "/api/overview"}, {"GET", "/api/events"}, {"GET", "/api/event?webhook=staircase&id=evt_x"},
	{"GET", "/api/refused"}, {"GET", "/api/dead"}, {"GET", "/api/keys"},
	{"POST", "/logout"}, {"POST", "/jobs/retry"}, {"POST", "/jobs/replay"}, {"POST", "/dead/replay-all"}, {"POST", "/test"},
	{"GET", "/no-such-page"}, {"DELETE", "/events"},
}

// consoleClient is an HTTP client that does not follow redirects, with a
// cookie jar of its own.
type consoleClient struct {
	t    testing.TB
	base string
	c    *http.Client
}

func newConsoleClient(t testing.TB, base string) *consoleClient {
	return &consoleClient{t: t, base: base, c: &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends a request to path of base with the headers (name, value, …)
// and, for a form, its fields.
func (c *consoleClient) do(method, path string, form url.Values, headers ...string) *response {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	require.NoError(c.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := c.c.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	return &response{StatusCode: resp.StatusCode, Header: resp.Header, Body: readAllString(resp.Body)}
}

// TestConsoleAuthAndCSRF checks the admin listener with plain HTTP: every
// route without the token answers 401 (a browser asking for a page is
// sent to the login form instead), with the security headers; a
// state-changing request without its session's CSRF token, or from
// another site, is refused 403; failed logins are slowed down; and the
// webhook listener serves none of the console's routes.
func TestConsoleAuthAndCSRF(t *testing.T) {
	t.Parallel()
	st := newServeStack(t)
	cs := startConsoleServe(t, st.bin, st.options(serveOptions{}), st.secret)
	c := newConsoleClient(t, cs.admin)

	for _, r := range consoleRoutes {
		resp := c.do(r.method, r.path, nil)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s %s without the token: %s", r.method, r.path, resp.Body)
		assert.Equal(t, `Bearer realm="stairhook console"`, resp.Header.Get("WWW-Authenticate"), "%s %s", r.method, r.path)
		assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'", "%s %s", r.method, r.path)
		assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), "%s %s", r.method, r.path)
		assert.Empty(t, resp.Header.Values("Set-Cookie"), "%s %s", r.method, r.path)
		if r.method == http.MethodGet {
			resp = c.do(r.method, r.path, nil, "Accept", "text/html,application/xhtml+xml")
			assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s %s from a browser", r.method, r.path)
			assert.Equal(t, "/login?next="+url.QueryEscape(r.path), resp.Header.Get("Location"), "%s %s", r.method, r.path)
		}
		resp = c.do(r.method, r.path, nil, "Cookie", "stairhook_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s %s with a forged session", r.method, r.path)
	}
	// What needs no token: the login form and the two static files.
	for _, p := range []string{"/login", "/static/console.css", "/static/console.js"} {
		assert.Equal(t, http.StatusOK, c.do("GET", p, nil).StatusCode, p)
	}

	// A session, by the login form.
	resp := c.do("POST", "/login", url.Values{"token": {cs.token}, "next": {"/dead"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, resp.Body)
	assert.Equal(t, "/dead", resp.Header.Get("Location"))
	cookies, err := http.ParseSetCookie(resp.Header.Get("Set-Cookie"))
	require.NoError(t, err)
	assert.True(t, cookies.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, cookies.SameSite)
	session := "stairhook_session=" + cookies.Value
	bearer := "Bearer " + cs.token
	csrfOf := func(auth ...string) string {
		var v struct{ CSRF string }
		resp := c.do("GET", "/api/csrf", nil, auth...)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.NoError(t, json.Unmarshal([]byte(resp.Body), &v))
		require.NotEmpty(t, v.CSRF)
		return v.CSRF
	}
	principals := []struct {
		name       string
		auth       []string
		csrf, peer string // its CSRF token, and the other principal's
	}{
		{name: "session", auth: []string{"Cookie", session}},
		{name: "bearer", auth: []string{"Authorization", bearer}},
	}
	principals[0].csrf, principals[1].csrf = csrfOf(principals[0].auth...), csrfOf(principals[1].auth...)
	principals[0].peer, principals[1].peer = principals[1].csrf, principals[0].csrf
	require.NotEqual(t, principals[0].csrf, principals[1].csrf)
	for _, p := range principals {
		for _, r := range consoleRoutes {
			if r.method != http.MethodPost {
				continue
			}
			for _, bad := range []struct{ why, csrf string }{
				{"without the CSRF token", ""}, {"with a wrong CSRF token", p.csrf + "x"}, {"with another principal's CSRF token", p.peer},
			} {
				form := url.Values{"job": {"1"}, "webhook": {webhookName}, "type": {event.TypeRenewal}, "account": {"x"}}
				if bad.csrf != "" {
					form.Set("csrf", bad.csrf)
				}
				resp = c.do(r.method, r.path, form, p.auth...)
				assert.Equal(t, http.StatusForbidden, resp.StatusCode, "%s %s (%s) %s", r.method, r.path, p.name, bad.why)
			}
			form := url.Values{"csrf": {p.csrf}, "job": {"1"}}
			resp = c.do(r.method, r.path, form, append(p.auth, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example")...)
			assert.Equal(t, http.StatusForbidden, resp.StatusCode, "%s %s (%s) from another site", r.method, r.path, p.name)
		}
		// With its token the action runs (a replay of all of no dead
		// letter), the token in the form or, for scripts, in a header.
		resp = c.do("POST", "/dead/replay-all", url.Values{"csrf": {p.csrf}}, p.auth...)
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s: %s", p.name, resp.Body)
		resp = c.do("POST", "/dead/replay-all", url.Values{}, append(p.auth, "X-CSRF-Token", p.csrf)...)
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "%s, the header: %s", p.name, resp.Body)
	}

	// The webhook listener serves none of it, with the token or without.
	hook := newConsoleClient(t, "http://"+cs.addr)
	for _, r := range append(consoleRoutes, consoleRoute{"GET", "/login"}, consoleRoute{"GET", "/static/console.js"}) {
		for _, auth := range [][]string{nil, {"Authorization", bearer}, {"Cookie", session}} {
			resp := hook.do(r.method, r.path, url.Values{}, append(auth, "Accept", "text/html")...)
			assert.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, resp.StatusCode, "webhook listener: %s %s", r.method, r.path)
			assert.NotContains(t, resp.Body, "stairhook_", "webhook listener: %s %s", r.method, r.path)
			assert.NotContains(t, resp.Body, "<html", "webhook listener: %s %s", r.method, r.path)
			assert.Empty(t, resp.Header.Values("Set-Cookie"), "webhook listener: %s %s", r.method, r.path)
		}
	}

	// Failed logins are slowed down: a second try at once waits.
	resp = c.do("POST", "/login", url.Values{"token": {"wrong-token-0123456789"}})
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp = c.do("POST", "/login", url.Values{"token": {cs.token}})
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "the right token too, within the wait")
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	resp = c.do("GET", "/api/overview", nil, "Authorization", bearer)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "a bearer token too")
}

// TestConsoleNoLeak fills the console with what could carry a secret — a
// Jira that answers 401 echoing the Authorization header it got (the
// dead letter's error), refused requests of every kind (tampered, wrong
// secret, stale, future, malformed, unknown webhook), a duplicate, an
// event whose texts quote the secret and a signature, a test notification
// the console signs itself — then reads every page as the browser renders
// it (the DOM, after its script ran) and as HTTP serves it (body and
// headers), every API answer and /metrics, and serve's log: none holds
// the webhook secret (in any encoding), a MAC the receiver computed, a
// signature value received, the Jira or SMTP credentials, or the admin
// token and session.
func TestConsoleNoLeak(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	lc := newLeakCheck()
	st := newServeStack(t)
	keys := [][]byte{lc.secret("webhook secret", st.secret)}
	lc.add("jira API token", jiraToken)
	lc.add("jira basic auth", base64.StdEncoding.EncodeToString([]byte(jiraEmail+":"+jiraToken)))
	lc.add("smtp password", smtpPassword)
	lc.add("smtp AUTH PLAIN", base64.StdEncoding.EncodeToString([]byte("\x00"+smtpUser+"\x00"+smtpPassword)))
	o := st.options(serveOptions{Delivery: fastRetries})
	o.JiraURL = echoJira(t)
	cs := startConsoleServe(t, st.bin, o, st.secret)
	lc.add("admin token", cs.token)
	ep := st.endpoint(cs.serveProc)
	run := time.Now().UnixNano()
	now := time.Now()

	send := func(what, target string, h http.Header, body []byte) *response {
		t.Helper()
		lc.request(what, keys, h, body)
		return postRaw(t, target, h, body)
	}
	sendReq := func(what string, req *http.Request) *response {
		t.Helper()
		body, err := io.ReadAll(req.Body)
		require.NoError(t, err)
		return send(what, ep.URL, req.Header, body)
	}
	idOK := fmt.Sprintf("evt_leak_%d_ok", run)
	body := eventBody(t, event.TypeChurnRisk, idOK, nil)
	h := verifytest.SignedHeaders(st.secret, idOK, now, body)
	require.Equal(t, http.StatusAccepted, send("accepted", ep.URL, h, body).StatusCode)
	assert.Equal(t, http.StatusOK, send("duplicate", ep.URL, verifytest.SignedHeaders(st.secret, idOK, now.Add(time.Second), body), body).StatusCode)
	// An event that quotes the secret, the signature of the first and a
	// MAC, as a careless sender might: the console redacts them.
	idQuote := fmt.Sprintf("evt_leak_%d_quote", run)
	mac := macHex(keys[0], h, body)
	quote := eventBody(t, event.TypeAccountPersonnelChange, idQuote, func(m map[string]any) {
		m["signal"].(map[string]any)["summary"] = "our webhook secret is " + st.secret.Encode()
		m["people"] = []any{map[string]any{"name": "Eve", "title": "X-Staircase-Signature: " + h.Get("X-Staircase-Signature"),
			"role": "decision_maker", "change": "signature=" + mac}}
	})
	require.Equal(t, http.StatusAccepted, send("quoting", ep.URL, verifytest.SignedHeaders(st.secret, idQuote, now, quote), quote).StatusCode)

	other := eventBody(t, event.TypeRenewal, "evt_leak_refused", nil)
	assert.Equal(t, http.StatusUnauthorized, sendReq("tampered", verifytest.TamperedBody(st.secret, "evt_leak_t", now, ep.URL, other)).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, sendReq("wrong secret", verifytest.WrongSecret("evt_leak_w", now, ep.URL, other)).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, sendReq("stale", verifytest.StaleTimestamp(st.secret, "evt_leak_s", now, verify.DefaultTolerance, ep.URL, other)).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, sendReq("future", verifytest.FutureTimestamp(st.secret, "evt_leak_f", now.Add(time.Minute), verify.DefaultTolerance, ep.URL, other)).StatusCode)
	malformed := verifytest.SignedHeaders(st.secret, "evt_leak_m", now, other)
	malformed.Set("X-Staircase-Signature", malformed.Get("X-Staircase-Signature")+"!")
	assert.Equal(t, http.StatusBadRequest, send("malformed", ep.URL, malformed, other).StatusCode)
	unknown := strings.TrimSuffix(ep.URL, webhookName) + "nosuch"
	assert.Equal(t, http.StatusUnauthorized, send("unknown webhook", unknown, verifytest.SignedHeaders(st.secret, "evt_leak_u", now, other), other).StatusCode)

	// The browser: the login, and a test notification, signed by serve.
	b := newBrowser(t, cs.admin, 1200, 800, false)
	b.login(cs.token)
	session := b.cookie("stairhook_session")
	require.NotNil(t, session)
	lc.add("session cookie", session.Value)
	b.open("/test")
	before := time.Now()
	require.EqualValues(t, http.StatusOK, b.submit(`form[action="/test"] button[type="submit"]`))
	after := time.Now()
	testID := b.textOf(`#content section[aria-label="Result"] code`)
	require.True(t, strings.HasPrefix(testID, "evt_test_"), b.text())
	result := b.dom() // checked below, once the test notification's MACs are known

	api := newConsoleClient(t, cs.admin)
	bearer := []string{"Authorization", "Bearer " + cs.token}
	// The test notification's MACs: its body as stored (the API shows it
	// indented; compacting gives back the bytes signed), signed at a
	// second between before and after.
	var ev struct{ Body string }
	resp := api.do("GET", "/api/event?"+url.Values{"webhook": {webhookName}, "id": {testID}}.Encode(), nil, bearer...)
	require.Equal(t, http.StatusOK, resp.StatusCode, resp.Body)
	require.NoError(t, json.Unmarshal([]byte(resp.Body), &ev))
	var signed bytes.Buffer
	require.NoError(t, json.Compact(&signed, []byte(ev.Body)))
	for ts := before.Unix() - 1; ts <= after.Unix()+1; ts++ {
		th := http.Header{"X-Staircase-Id": {testID}, "X-Staircase-Timestamp": {strconv.FormatInt(ts, 10)}}
		lc.request("test notification at "+strconv.FormatInt(ts, 10), keys, th, signed.Bytes())
	}
	lc.check(t, "the test notification's result (DOM)", result)

	// Everything has happened: the Jira sink of each event died of the
	// echoed 401, the emails went out, the refusals are recorded.
	b.reloadUntil("the dead letters", "/dead", `document.querySelectorAll('#content tbody tr').length >= 3`, 30*time.Second)
	b.reloadUntil("the refused requests", "/refused", `document.querySelectorAll('#content tbody tr').length >= 6`, 30*time.Second)

	pages := []string{"/", "/events", "/events?state=dead", "/dead", "/refused", "/keys", "/test", "/login", "/metrics",
		eventPath(webhookName, idOK), eventPath(webhookName, idQuote), eventPath(webhookName, testID)}
	apis := []string{"/api/overview", "/api/events", "/api/events?state=dead", "/api/dead", "/api/refused", "/api/keys", "/api/csrf"}
	for _, id := range []string{idOK, idQuote, testID} {
		apis = append(apis, "/api"+eventPath(webhookName, id))
	}
	for _, p := range pages {
		require.EqualValues(t, http.StatusOK, b.open(p), p)
		lc.check(t, p+" (DOM)", b.dom())
	}
	for _, p := range append(pages, apis...) {
		resp := api.do("GET", p, nil, bearer...)
		assert.Equal(t, http.StatusOK, resp.StatusCode, p)
		lc.response(t, p+" (HTTP)", resp)
		if strings.HasPrefix(p, "/api/") && p != "/api/csrf" {
			require.EqualValues(t, http.StatusOK, b.open(p), p)
			lc.check(t, p+" (DOM)", b.dom())
		}
	}
	// What the pages show was redacted, not dropped.
	b.open(eventPath(webhookName, idQuote))
	assert.Contains(t, b.text(), "whsec_[redacted]")
	assert.Contains(t, b.text(), "signature=[redacted]")
	b.open("/dead")
	assert.Contains(t, b.text(), "401", "the dead letter's error")
	lc.check(t, "serve's log", cs.stderr.String())
	assert.Greater(t, lc.checked, 40)
}

// TestConsoleNarrowScreen reads every page of the console on a 375 px
// wide phone screen (mobile emulation): none is wider than the screen
// (tables scroll in their own box), and the navigation and the forms'
// buttons are on it.
func TestConsoleNarrowScreen(t *testing.T) {
	t.Parallel()
	chromiumPath(t)
	st := newServeStack(t)
	cs := startConsoleServe(t, st.bin, st.options(serveOptions{Delivery: fastRetries}), st.secret)
	ep := st.endpoint(cs.serveProc)
	run := time.Now().UnixNano()

	// Content as long as it comes: an id of 100 characters, a dead letter
	// with Jira's error, refused requests.
	st.front.outage(http.StatusBadRequest, time.Hour)
	idDead := fmt.Sprintf("evt_narrow_%d_dead_%s", run, strings.Repeat("x", 60))
	require.Equal(t, http.StatusAccepted, postSigned(t, ep.URL, st.secret, idDead, eventBody(t, event.TypeChurnRisk, idDead, nil)).StatusCode)
	other := eventBody(t, event.TypeRenewal, "evt_narrow_refused", nil)
	postRaw(t, ep.URL, verifytest.WrongSecret("evt_narrow_refused", time.Now(), ep.URL, other).Header, other)

	b := newBrowser(t, cs.admin, 375, 812, true)
	b.open("/")
	checkFits(t, b, "the login form")
	b.login(cs.token)
	b.reloadUntil("the dead letter", "/dead", `document.querySelectorAll('#content tbody tr').length >= 1`, 30*time.Second)
	st.front.outage(0, 0)
	idOK := fmt.Sprintf("evt_narrow_%d_ok", run)
	require.Equal(t, http.StatusAccepted, postSigned(t, ep.URL, st.secret, idOK, eventBody(t, event.TypeAccountPersonnelChange, idOK, nil)).StatusCode)
	b.reloadUntil(idOK+" delivered", "/events", allDeliveredJS(idOK), 30*time.Second)

	for _, p := range []string{"/", "/events", "/dead", "/refused", "/keys", "/test", eventPath(webhookName, idOK), eventPath(webhookName, idDead)} {
		require.EqualValues(t, http.StatusOK, b.open(p), p)
		checkFits(t, b, p)
	}
	b.open("/test")
	require.EqualValues(t, http.StatusOK, b.submit(`form[action="/test"] button[type="submit"]`))
	checkFits(t, b, "the test notification's result")
}

// inScrollJS defines inScroll(e): whether e is inside a box that scrolls
// sideways (a wide table's), where it may be off the screen until the
// reader scrolls that box.
const inScrollJS = `var inScroll = e => { for (let p = e.parentElement; p; p = p.parentElement) { const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll') return true; } return false; };
`

// checkFits fails the test when the page is wider than the viewport, or
// a link of the navigation or a button is off the screen, naming the
// elements that stick out. What is inside a box that scrolls sideways
// (a table's) may stick out of the screen, not out of the page.
func checkFits(t *testing.T, b *browser, what string) {
	t.Helper()
	type fit struct {
		Width, ScrollWidth int
		Out                []string
	}
	f := eval[fit](b, inScrollJS+`(() => {
	const w = window.innerWidth;
	const out = [...document.body.querySelectorAll('*')].filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.right > w + 0.5 || r.left < -0.5) && !inScroll(e); })
		.slice(0, 10).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + ' ' + Math.round(e.getBoundingClientRect().left) + '..' + Math.round(e.getBoundingClientRect().right) + ': ' + (e.textContent || '').trim().slice(0, 40));
	return {Width: w, ScrollWidth: document.documentElement.scrollWidth, Out: out};
})()`)
	assert.Equal(t, 375, f.Width, "%s: the viewport", what)
	assert.LessOrEqual(t, f.ScrollWidth, 375, "%s: the page is wider than the screen; sticking out: %q", what, f.Out)
	assert.Empty(t, f.Out, "%s: elements off the screen", what)
	off := eval[[]string](b, inScrollJS+`[...document.querySelectorAll('nav a, button, input, select')].filter(e => e.type !== 'hidden' && !inScroll(e)).filter(e => { const r = e.getBoundingClientRect(); return r.left < 0 || r.right > window.innerWidth || r.width === 0; }).map(e => e.outerHTML.slice(0, 80))`)
	assert.Empty(t, off, "%s: controls off the screen", what)
}

// macHex is the MAC, in hex, that a receiver holding key computes for a
// request with the headers h and body.
func macHex(key []byte, h http.Header, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(h.Get("X-Staircase-Id") + "." + h.Get("X-Staircase-Timestamp") + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ulidLike is a random id that looks like Staircase's (a ULID: 26
// characters of Crockford's base 32, time first).
func ulidLike(t testing.TB) string {
	const digits = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	b := make([]byte, 26)
	ms := time.Now().UnixMilli()
	for i := 9; i >= 0; i-- {
		b[i] = digits[ms%32]
		ms /= 32
	}
	r := make([]byte, 16)
	_, err := rand.Read(r)
	require.NoError(t, err)
	for i := 10; i < 26; i++ {
		b[i] = digits[r[i-10]%32]
	}
	return string(b)
}

// screenshotPath is where TestConsoleScreenshot saves the events page,
// from this package's folder: the README shows it.
var screenshotPath = filepath.Join("..", "..", "docs", "console.png")

// TestConsoleScreenshot fills a console with a few events, most of them
// delivered, one a dead letter and one a test notification, and saves a
// screenshot of its events page (1200 × 800) to docs/console.png. It runs
// only with STAIRHOOK_SCREENSHOT=1 (.ci/run sets it), as it rewrites a
// file of the repository.
func TestConsoleScreenshot(t *testing.T) {
	if os.Getenv("STAIRHOOK_SCREENSHOT") != "1" {
		t.Skip("set STAIRHOOK_SCREENSHOT=1 to save the console's screenshot to docs/console.png")
	}
	t.Parallel()
	chromiumPath(t)
	st := newServeStack(t)
	cs := startConsoleServe(t, st.bin, st.options(serveOptions{Delivery: fastRetries}), st.secret)
	ep := st.endpoint(cs.serveProc)
	b := newBrowser(t, cs.admin, 1200, 800, false)
	b.login(cs.token)

	accounts := []struct{ typ, id, name string }{
		{event.TypeRenewal, "acc_01J9Z3K7QK2V8M4N6P0R2T4V6X", "Acme Corp"},
		{event.TypeChurnRisk, "acc_01JA0B4N8R6T2V0X8Z6B4D2F0H", "Globex"},
		{event.TypeAccountPersonnelChange, "acc_01JA1C5P9S7U3W1Y9A7C5E3G1J", "Initech"},
		{event.TypeHighlyPositiveMessage, "acc_01JA2D6Q0T8V4X2Z0B8D6F4H2K", "Umbrella Health"},
		{event.TypeCommercialDiscussion, "acc_01JA3E7R1U9W5Y3A1C9E7G5J3M", "Stark Logistics"},
	}
	var ids []string
	for i, a := range accounts {
		id := "evt_" + ulidLike(t)
		body := eventBody(t, a.typ, id, func(m map[string]any) {
			acc := m["account"].(map[string]any)
			acc["id"], acc["name"] = a.id, a.name
		})
		if i == 1 {
			// Jira refuses this one: the dead letter.
			st.front.outage(http.StatusBadRequest, time.Hour)
		}
		require.Equal(t, http.StatusAccepted, postSigned(t, ep.URL, st.secret, id, body).StatusCode)
		if i == 1 {
			b.reloadUntil("the dead letter", "/dead", `document.querySelectorAll('#content tbody tr').length >= 1`, 30*time.Second)
			st.front.outage(0, 0)
		}
		ids = append(ids, id)
		time.Sleep(1100 * time.Millisecond) // a second apart on the page
	}
	b.open("/test")
	require.EqualValues(t, http.StatusOK, b.submit(`form[action="/test"] button[type="submit"]`))
	ids = append(ids, b.textOf(`#content section[aria-label="Result"] code`))
	for i, id := range ids {
		if i == 1 {
			continue
		}
		b.reloadUntil(id+" delivered", "/events", allDeliveredJS(id), 30*time.Second)
	}
	b.open("/events")
	ctx, cancel := context.WithTimeout(b.ctx, browserActionTimeout)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(shot))
	require.NoError(t, err)
	assert.Equal(t, 1200, img.Bounds().Dx())
	require.NoError(t, os.MkdirAll(filepath.Dir(screenshotPath), 0o755))
	require.NoError(t, os.WriteFile(screenshotPath, shot, 0o644))
	t.Logf("saved %s (%d bytes)", screenshotPath, len(shot))
}
