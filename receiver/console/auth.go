package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sessions and the slowing down of failed logins.
const (
	// SessionLifetime is how long a login lasts.
	SessionLifetime = 12 * time.Hour
	// sessionCookie is the session cookie's name.
	sessionCookie = "stairhook_session"
	// csrfField is the form field, and csrfHeader the header, that carry
	// the CSRF token of a state-changing request.
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
	// maxThrottled bounds the addresses whose failed logins are counted;
	// past it the oldest are forgotten, and when none can be, every new
	// address shares one count.
	maxThrottled = 4096
	// firstDelay is the wait after a first failed login from an address;
	// it doubles with each further failure, up to maxDelay.
	firstDelay = time.Second
	maxDelay   = time.Minute
	// forgetAfter is how long an address's failures are remembered.
	forgetAfter = 15 * time.Minute
	// maxRevoked bounds the sessions remembered as logged out; past it the
	// session key is replaced, which ends every session.
	maxRevoked = 10_000
)

// sessionBytes are a session's expiry and its random id; the cookie is
// these and their MAC.
const (
	sessionIDBytes = 16
	sessionBytes   = 8 + sessionIDBytes
	macBytes       = sha256.Size
)

// bearer is the principal of a request authorized by its Authorization
// header: it has no session.
const bearer = "bearer"

// auth checks tokens and sessions, and slows down guessing.
type auth struct {
	tokenHash [sha256.Size]byte
	now       func() time.Time

	mu      sync.Mutex // guards key, revoked, failed
	key     []byte
	revoked map[string]time.Time
	failed  map[string]*failures
}

// failures are the failed logins of one address.
type failures struct {
	n     int
	until time.Time // no attempt is checked before
	last  time.Time
}

func newAuth(token string, key []byte, now func() time.Time) *auth {
	return &auth{tokenHash: sha256.Sum256([]byte(token)), now: now, key: key,
		revoked: map[string]time.Time{}, failed: map[string]*failures{}}
}

// tokenOK compares a given token with the admin token in constant time
// (of the token's length too: both are hashed first).
func (a *auth) tokenOK(given string) bool {
	h := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(h[:], a.tokenHash[:]) == 1
}

func (a *auth) mac(parts ...[]byte) []byte {
	a.mu.Lock()
	m := hmac.New(sha256.New, a.key)
	a.mu.Unlock()
	for _, p := range parts {
		m.Write(p)
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// newSession returns a session cookie's value and its id.
func (a *auth) newSession() (string, string) {
	raw := make([]byte, sessionBytes, sessionBytes+macBytes)
	binary.BigEndian.PutUint64(raw, uint64(a.now().Add(SessionLifetime).Unix()))
	rand.Read(raw[8:])
	v := append(raw, a.mac([]byte("session"), raw)...)
	return base64.RawURLEncoding.EncodeToString(v), base64.RawURLEncoding.EncodeToString(raw[8:])
}

// session returns the id of a valid session cookie's value.
func (a *auth) session(value string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(b) != sessionBytes+macBytes {
		return "", false
	}
	raw := b[:sessionBytes]
	if !hmac.Equal(b[sessionBytes:], a.mac([]byte("session"), raw)) {
		return "", false
	}
	if a.now().Unix() >= int64(binary.BigEndian.Uint64(raw)) {
		return "", false
	}
	id := base64.RawURLEncoding.EncodeToString(raw[8:])
	a.mu.Lock()
	_, out := a.revoked[id]
	a.mu.Unlock()
	return id, !out
}

// revoke ends the session id, which expires at exp.
func (a *auth) revoke(id string) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, exp := range a.revoked {
		if now.After(exp) {
			delete(a.revoked, k)
		}
	}
	if len(a.revoked) >= maxRevoked {
		// Too many to remember: a new key ends every session at once.
		a.key = make([]byte, 32)
		rand.Read(a.key)
		clear(a.revoked)
		return
	}
	a.revoked[id] = now.Add(SessionLifetime)
}

// csrf is the CSRF token of a principal (a session id, or bearer).
func (a *auth) csrf(principal string) string {
	return base64.RawURLEncoding.EncodeToString(a.mac([]byte("csrf"), []byte(principal)))
}

// wait is how long the address must wait before its next try; zero when it
// may try now.
func (a *auth) wait(addr string) time.Duration {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.failed[a.bucket(addr, now)]
	if f == nil || !now.Before(f.until) {
		return 0
	}
	return f.until.Sub(now)
}

// fail counts a failed try of the address.
func (a *auth) fail(addr string) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	k := a.bucket(addr, now)
	f := a.failed[k]
	if f == nil {
		f = &failures{}
		a.failed[k] = f
	}
	f.n++
	f.last = now
	d := firstDelay
	for i := 1; i < f.n && d < maxDelay; i++ {
		d *= 2
	}
	f.until = now.Add(min(d, maxDelay))
}

// succeed forgets the address's failures.
func (a *auth) succeed(addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.failed, addr)
}

// bucket is the key of addr's failures: addr itself, or when the map is
// full of recent failures, the one shared key "" (fail closed: a flood of
// addresses slows down every new one). Called with mu held.
func (a *auth) bucket(addr string, now time.Time) string {
	if f, ok := a.failed[addr]; ok {
		if now.Sub(f.last) > forgetAfter {
			delete(a.failed, addr)
		}
		return addr
	}
	if len(a.failed) < maxThrottled {
		return addr
	}
	for k, f := range a.failed {
		if now.Sub(f.last) > forgetAfter {
			delete(a.failed, k)
		}
	}
	if len(a.failed) < maxThrottled {
		return addr
	}
	return ""
}

// remoteHost is the client's address without its port: the unit of the
// slowing down. (The console does not trust X-Forwarded-For: behind a
// proxy, every client shares the proxy's count.)
func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

type principalKey struct{}

// principal is who the request is authorized as: a session id or bearer.
func principal(r *http.Request) string {
	p, _ := r.Context().Value(principalKey{}).(string)
	return p
}

// requireAuth lets through a request with the admin token (a session
// cookie, or Authorization: Bearer TOKEN). Others get 401, or, for a
// browser asking for a page, a redirect to the login form. A wrong
// bearer token counts as a failed login; an address that failed recently
// gets 429 with Retry-After, its token unchecked.
func (c *Console) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); h != "" {
			token, ok := strings.CutPrefix(h, "Bearer ")
			addr := remoteHost(r)
			if d := c.auth.wait(addr); d > 0 {
				tooMany(w, d)
				return
			}
			if !ok || !c.auth.tokenOK(token) {
				c.auth.fail(addr)
				c.log.LogAttrs(r.Context(), slog.LevelWarn, "console: wrong bearer token", slog.String("remote", addr))
				unauthorized(w)
				return
			}
			c.auth.succeed(addr)
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, bearer)))
			return
		}
		if ck, err := r.Cookie(sessionCookie); err == nil {
			if id, ok := c.auth.session(ck.Value); ok {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, id)))
				return
			}
		}
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Contains(r.Header.Get("Accept"), "text/html") {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		unauthorized(w)
	})
}

// requireCSRF lets through a request whose CSRF token (form field csrf, or
// header X-CSRF-Token) is its principal's; others get 403.
func (c *Console) requireCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		given := r.Header.Get(csrfHeader)
		if given == "" {
			given = r.PostFormValue(csrfField)
		}
		want := c.auth.csrf(principal(r))
		if given == "" || subtle.ConstantTimeCompare([]byte(given), []byte(want)) != 1 {
			http.Error(w, "403 forbidden: missing or wrong CSRF token; reload the page", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="stairhook console"`)
	http.Error(w, "401 unauthorized: log in at /login, or send Authorization: Bearer TOKEN", http.StatusUnauthorized)
}

func tooMany(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
	http.Error(w, "429 too many failed logins from this address: wait and try again", http.StatusTooManyRequests)
}

// safeNext is where a login goes on to: a path of this console, never
// another site ("//host", "/\host" or a scheme).
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\x00") || strings.HasPrefix(next, "/login") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

type loginData struct {
	Next   string
	Failed bool
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", "Log in", loginData{Next: safeNext(r.URL.Query().Get("next"))})
}

// login checks the token of the login form; a success sets the session
// cookie (HttpOnly, SameSite=Strict, Secure over TLS) and goes on to the
// page asked for.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	addr := remoteHost(r)
	if d := c.auth.wait(addr); d > 0 {
		tooMany(w, d)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "400 bad request: the form could not be read", http.StatusBadRequest)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if !c.auth.tokenOK(r.PostForm.Get("token")) {
		c.auth.fail(addr)
		c.log.LogAttrs(r.Context(), slog.LevelWarn, "console: failed login", slog.String("remote", addr))
		c.render(w, r, http.StatusUnauthorized, "login", "Log in", loginData{Next: next, Failed: true})
		return
	}
	c.auth.succeed(addr)
	value, _ := c.auth.newSession()
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/", MaxAge: int(SessionLifetime / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if p := principal(r); p != bearer {
		c.auth.revoke(p)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// csrfAPI gives a script its CSRF token for the state-changing routes.
func (c *Console) csrfAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"csrf": c.auth.csrf(principal(r))})
}
