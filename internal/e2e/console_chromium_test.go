package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/stairhook/stairhook/internal/testenv"
	"github.com/stairhook/stairhook/verify"
)

// chromiumInstall is how .ci/run installs the browser.
const chromiumInstall = "apt-get install -y chromium"

// browserActionTimeout bounds one step of a browser test: a navigation, a
// click and the page it loads, a script.
const browserActionTimeout = 20 * time.Second

// chromiumPath finds Chromium (or Chrome), or skips the test (fails under
// STAIRHOOK_E2E).
func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell"} {
		if p, ok := testenv.LookBinary(name); ok {
			return p
		}
	}
	testenv.Missing(t, "chromium", chromiumInstall)
	return ""
}

// consoleServe is `stairhook serve` with its admin listener: the console's
// base URL and the admin token serve generated and printed.
type consoleServe struct {
	*serveProc
	admin string // "http://127.0.0.1:port", no trailing slash
	token string
}

var (
	consoleURLLine   = regexp.MustCompile(`(?m)^console: (http://[^/\s]+)/ \(and /metrics\), admin token required$`)
	consoleTokenLine = regexp.MustCompile(`(?m)^admin token: (\S+)$`)
)

// startConsoleServe runs serve with the configuration o (which has no
// admin section: serve generates the token) and reads the console's
// address and token from its output.
func startConsoleServe(t testing.TB, bin string, o serveOptions, secret verify.Secret) *consoleServe {
	t.Helper()
	proc := o.start(t, bin, secret)
	cs := &consoleServe{serveProc: proc}
	waitFor(t, 10*time.Second, "the console's address and admin token on serve's output", func() bool {
		out := proc.stdout.String()
		u, tok := consoleURLLine.FindStringSubmatch(out), consoleTokenLine.FindStringSubmatch(out)
		if u == nil || tok == nil {
			return false
		}
		cs.admin, cs.token = u[1], tok[1]
		return true
	})
	return cs
}

// browser is one headless Chromium with one tab, for one test. It records
// everything the pages write to the console and every dialog they open
// (and dismisses it, so that a dialog cannot hang the test).
type browser struct {
	t    testing.TB
	ctx  context.Context
	base string // the console's base URL

	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
	dialogs  []string
}

// newBrowser starts Chromium with a viewport of width × height CSS pixels
// (mobile emulation when mobile is set) for the console at base.
func newBrowser(t testing.TB, base string, width, height int64, mobile bool) *browser {
	t.Helper()
	exe := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.WindowSize(int(width), int(height)),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser, whose life is that of ctx: no
	// timeout on it (see chromedp.Run).
	var vp []chromedp.EmulateViewportOption
	if mobile {
		vp = append(vp, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height, vp...)); err != nil {
		t.Fatalf("start chromium (%s): %v", exe, err)
	}
	b := &browser{t: t, ctx: ctx, base: base}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.messages = append(b.messages, m)
			b.mu.Unlock()
		}
	}()
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, fmt.Sprintf("%s %q on %s", ev.Type, ev.Message, ev.URL))
			b.mu.Unlock()
			// Not from this goroutine's caller: the dialog blocks the page
			// until it is handled.
			go func() {
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			}()
		}
	}()
	return b
}

// step runs actions with the step timeout.
func (b *browser) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserActionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// open navigates to path (of the console) and returns the status of the
// page it ends on, after redirects.
func (b *browser) open(path string) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserActionTimeout)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(b.base+path))
	if err != nil {
		b.t.Fatalf("browser: open %s: %v", path, err)
	}
	return resp.Status
}

// submit clicks the element sel (a form's button, a link), waits for the
// page it loads and returns its status.
func (b *browser) submit(sel string) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserActionTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.t.Fatalf("browser: click %s: %v", sel, err)
	}
	return resp.Status
}

// submitSearch is submit for an XPath (or text) selector.
func (b *browser) submitSearch(sel string) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserActionTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.Search(sel), chromedp.NodeVisible))
	if err != nil {
		b.t.Fatalf("browser: click %s: %v", sel, err)
	}
	return resp.Status
}

// fill replaces the text of the input sel by typing text.
func (b *browser) fill(sel, text string) {
	b.t.Helper()
	b.step("fill "+sel, chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// eval evaluates a JavaScript expression in the page (DevTools
// evaluation: the page's CSP does not apply to it) and decodes its value.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserActionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("browser: evaluate %s: %v", clipText(expr, 200), err)
	}
	return v
}

// waitJS waits until expr is true in the page, as the page is (its own
// refresh may change it). chromedp.Poll would compile the predicate with
// new Function, which the console's CSP forbids; DevTools evaluation is
// not bound by it.
func (b *browser) waitJS(what, expr string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for !eval[bool](b, "Boolean("+expr+")") {
		if time.Now().After(deadline) {
			b.t.Fatalf("browser: no %s within %v on %s; the page says:\n%s", what, timeout, b.location(), clipText(b.text(), 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reloadUntil opens path again every 200 ms until expr is true there.
func (b *browser) reloadUntil(what, path, expr string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b.open(path)
		if eval[bool](b, "Boolean("+expr+")") {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("browser: no %s within %v on %s; the page says:\n%s", what, timeout, path, clipText(b.text(), 2000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// location is the page's path and query.
func (b *browser) location() string {
	b.t.Helper()
	return eval[string](b, "location.pathname + location.search")
}

// text is the page's rendered text.
func (b *browser) text() string {
	b.t.Helper()
	return eval[string](b, "document.body ? document.body.innerText : ''")
}

// textOf is the text of the first element sel, "" when there is none.
func (b *browser) textOf(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf("(document.querySelector(%s) || {}).textContent || ''", jsString(sel)))
}

// dom is the document as the browser holds it now.
func (b *browser) dom() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserActionTimeout)
	defer cancel()
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		b.t.Fatalf("browser: the document of %s: %v", b.location(), err)
	}
	return html
}

// cookie returns the browser's cookie name for the console.
func (b *browser) cookie(name string) *network.Cookie {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserActionTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base + "/"}})
	require.NoError(b.t, err)
	for _, c := range res.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// login logs in through the form, from a page of the console that sends
// the browser to it.
func (b *browser) login(token string) {
	b.t.Helper()
	b.open("/")
	require.True(b.t, strings.HasPrefix(b.location(), "/login"), "the console sends a browser without a session to its login form, not %s", b.location())
	b.fill(`input[name="token"]`, token)
	status := b.submit(`form[action="/login"] button[type="submit"]`)
	require.EqualValues(b.t, 200, status, "login: %s", clipText(b.text(), 500))
	require.Equal(b.t, "/", b.location())
}

// problems returns the dialogs the pages opened and the errors they wrote
// to the console (exceptions, failed loads, CSP violations), since the
// last call.
func (b *browser) problems() (dialogs []string, errs []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	dialogs, b.dialogs = b.dialogs, nil
	for _, m := range b.messages {
		if strings.HasSuffix(m.URL, "/favicon.ico") {
			// The browser's own request (the console has no icon): 401
			// before the login, 404 after.
			continue
		}
		if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleWarning && strings.Contains(m.Text, "Content Security Policy") {
			errs = append(errs, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
		}
	}
	b.messages = nil
	return dialogs, errs
}

// settle waits a moment for what a page started to report itself (a
// failed load, a dialog), then returns the problems.
func (b *browser) settle() (dialogs []string, errs []string) {
	time.Sleep(300 * time.Millisecond)
	return b.problems()
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	q, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(q)
}

// cssString is s as a CSS string literal, for an attribute selector.
func cssString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\a `).Replace(s) + `"`
}

// eventPath is the console's page of an event.
func eventPath(webhook, id string) string {
	return "/event?" + url.Values{"webhook": {webhook}, "id": {id}}.Encode()
}

// clipText cuts s for a failure message.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// errNoRow means a page has no row for an event.
var errNoRow = errors.New("no row")

// sinkStatesJS is an expression giving the sink states of the event id's
// row on the events page ("staircase.main.jira: delivered", …), or null
// when the page has no row for it.
func sinkStatesJS(id string) string {
	return fmt.Sprintf(`(() => {
	const row = [...document.querySelectorAll('#content tbody tr')].find(tr => [...tr.querySelectorAll('a')].some(a => a.textContent === %s));
	return row ? [...row.querySelectorAll('.state')].map(s => s.textContent) : null;
})()`, jsString(id))
}

// sinkStates reads the sink states of the event id's row on the events
// page: sink name → state.
func sinkStates(b *browser, id string) (map[string]string, error) {
	b.t.Helper()
	list := eval[[]string](b, sinkStatesJS(id))
	if list == nil {
		return nil, errNoRow
	}
	out := map[string]string{}
	for _, s := range list {
		name, state, _ := strings.Cut(s, ": ")
		out[name] = state
	}
	return out, nil
}

// allDeliveredJS is true when the event id's row shows each of its sinks
// delivered.
func allDeliveredJS(id string) string {
	return fmt.Sprintf(`(() => { const s = %s; return s !== null && s.length > 0 && s.every(x => x.endsWith(': delivered')); })()`, sinkStatesJS(id))
}
