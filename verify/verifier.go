package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultTolerance is how far a signed timestamp may lie from now, in either
// direction, when Options.Tolerance is zero.
const DefaultTolerance = 5 * time.Minute

// Key is one entry of a verifier's keyring.
type Key struct {
	// Label names the key in results and logs, for example "current" or
	// "before-2026-11-rotation", so an operator can see which secret senders
	// still use. Empty means "key1", "key2", … by position. Labels are unique.
	Label string
	// Secret is the shared secret. It must be valid (see ParseSecret).
	Secret Secret
	// Expires, when not zero, is the instant from which the key is no longer
	// accepted: a key is active while now is before Expires. Use it to retire
	// the old secret some time after "Regenerate secret".
	Expires time.Time
}

// Scheme tells which signing method a verified request used.
type Scheme string

const (
	// SchemeV1 is HMAC-SHA256 over id, timestamp and body, with replay
	// protection. It is the only scheme a receiver should need.
	SchemeV1 Scheme = "v1"
	// SchemeBody is the legacy HMAC-SHA256 over the body alone, accepted only
	// with Options.AllowBodySignature. It has no replay protection.
	SchemeBody Scheme = "body"
	// SchemeSecretDigest is the legacy SHA-256 of the secret's text, accepted
	// only with Options.AllowSecretDigest. It proves nothing about the body.
	SchemeSecretDigest Scheme = "secret-digest"
)

// Result describes a request that verified.
type Result struct {
	// ID is the signed event id (x-staircase-id or webhook-id). It is empty
	// for the legacy schemes, which sign no id.
	ID string
	// Timestamp is the signed time; zero for the legacy schemes.
	Timestamp time.Time
	// KeyLabel is the Label of the key that matched.
	KeyLabel string
	// Scheme is the signing method that matched.
	Scheme Scheme
}

// Options configures a Verifier and its Middleware. The zero value of every
// field but Keys is a safe default.
type Options struct {
	// Keys is the keyring; at least one key is required. Several keys let a
	// receiver accept the old and the new secret during a rotation.
	Keys []Key

	// Tolerance is how far the signed timestamp may lie before or after now.
	// Default value is DefaultTolerance (5 minutes). Negative is an error.
	Tolerance time.Duration

	// Now returns the current time. Default value is time.Now.
	Now func() time.Time

	// AllowBodySignature accepts the legacy header whose single value is
	// HMAC-SHA256(key, body) in hex or base64, with an optional "sha256="
	// prefix. It has no timestamp, so no replay protection. Default value is
	// false.
	AllowBodySignature bool

	// AllowSecretDigest accepts the legacy header whose value is the SHA-256
	// of the secret's text. It proves only that the sender knows a digest of
	// the secret, nothing about the body; anyone who saw one request can
	// forge any other. Default value is false.
	AllowSecretDigest bool

	// MaxBodyBytes caps the body the Middleware reads. Default value is
	// DefaultMaxBodyBytes (1 MiB). A larger body is answered 413. Negative
	// is an error (ErrInvalidOptions).
	MaxBodyBytes int64

	// BodyBudget bounds the memory of the bodies the Middleware reads at
	// once: each request takes its Content-Length (MaxBodyBytes without
	// one) before its body is read and gives it back once it is read; one
	// that finds too little left is answered 503 with Retry-After, its body
	// unread. Share one budget between the verifiers of a listener to bound
	// them together; it must be at least MaxBodyBytes (ErrInvalidOptions
	// otherwise). Default value is a budget of this Verifier's own, of
	// DefaultMaxBodyBytesInFlight or MaxBodyBytes, whichever is larger.
	BodyBudget *BodyBudget

	// Store records the ids the Middleware has seen, for replay protection
	// and idempotency. Default value is a NewMemoryStore with its defaults,
	// made by NewVerifier for this Verifier alone: it protects this
	// Verifier only, not others in the same process. Give Verifiers of one
	// webhook the same Store, and use a shared store (see verify/redisstore)
	// when several processes or instances receive it.
	Store Store

	// Retention is how long the Middleware remembers an id. Default value,
	// and the minimum, is twice the tolerance, so that a captured request
	// cannot be replayed while its timestamp is still accepted. Negative is
	// an error (ErrInvalidOptions).
	Retention time.Duration

	// AllowPUT lets the Middleware accept PUT as well as POST. Default value
	// is false: any method but POST is answered 405.
	AllowPUT bool

	// OnError is called by the Middleware for every request it rejects, and
	// when recording the outcome in the Store fails after the next handler
	// answered or panicked, with an error that wraps one of this package's sentinels.
	// Default value logs one line with log/slog at Warn level: the reason,
	// the id header if any and the remote address, never a signature or
	// secret.
	OnError func(r *http.Request, err error)

	// OnDuplicate is called by the Middleware for every request that
	// verified but whose signed id the Store already holds, with its Result
	// and what the Store answered: StateDone for an id processed before
	// (answered 200 with DuplicateHeader, next not called: a redelivery, or
	// a replay inside the tolerance), StateInFlight for an id another
	// request is processing (answered 409; OnError gets it too, with
	// ErrInFlight, as it gets every rejection). Use it to count or log
	// duplicates. Default value logs each StateDone one with log/slog at
	// Info level: the id, the key label and the remote address; the
	// in-flight ones are left to OnError's line.
	OnDuplicate func(r *http.Request, res Result, state State)

	// DisableDeduplication turns the Middleware's Store off: every request
	// that verifies reaches the next handler, a redelivery of an id already
	// processed and a replay of a captured request within the tolerance
	// included. Set it only when the application deduplicates by the signed
	// id itself (Result.ID, from FromContext) atomically and durably, for
	// example with a unique key on the id in the transaction that records
	// the event. Store and Retention must then be zero (ErrInvalidOptions
	// otherwise), and OnDuplicate is never called. Default value is false:
	// the Middleware deduplicates.
	DisableDeduplication bool
}

// Verifier checks signed webhook requests against a keyring. It is safe for
// concurrent use.
type Verifier struct {
	keys      []verifierKey
	tolerance time.Duration
	now       func() time.Time
	opts      Options
	mw        middlewareConfig
}

type verifierKey struct {
	label   string
	expires time.Time
	// mac and digest are secret-derived: behind pointers, a Verifier value
	// printed with %v (whose String is on the pointer) shows addresses,
	// not key material.
	mac    *keyMAC
	digest *[sha256.Size]byte // AllowSecretDigest only
}

// NewVerifier returns a Verifier for opts. It copies the keys, so later
// changes to opts do not affect it. It fails with ErrInvalidSecret for a key
// without a valid secret and ErrInvalidOptions for other unusable options,
// among them a keyring whose keys have all expired by Options.Now.
func NewVerifier(opts Options) (*Verifier, error) {
	if len(opts.Keys) == 0 {
		return nil, withHint(ErrInvalidOptions, "no keys")
	}
	if opts.Tolerance < 0 {
		return nil, withHint(ErrInvalidOptions, "negative tolerance")
	}
	v := &Verifier{tolerance: opts.Tolerance, now: opts.Now, opts: opts}
	if v.tolerance == 0 {
		v.tolerance = DefaultTolerance
	}
	if v.now == nil {
		v.now = time.Now
	}
	seen := make(map[string]bool, len(opts.Keys))
	for i, k := range opts.Keys {
		if !k.Secret.valid() {
			return nil, withHint(ErrInvalidSecret, fmt.Sprintf("key %d (%q)", i+1, k.Label))
		}
		label := k.Label
		if label == "" {
			label = "key" + strconv.Itoa(i+1)
		}
		if seen[label] {
			return nil, withHint(ErrInvalidOptions, fmt.Sprintf("duplicate key label %q", label))
		}
		seen[label] = true
		v.keys = append(v.keys, verifierKey{
			label:   label,
			expires: k.Expires,
			mac:     newKeyMAC(k.Secret.key),
		})
		if opts.AllowSecretDigest {
			d := k.Secret.Digest()
			v.keys[len(v.keys)-1].digest = &d
		}
	}
	if err := v.checkKeyringActive(); err != nil {
		return nil, err
	}
	v.opts.Keys = nil
	if err := v.initMiddleware(); err != nil {
		return nil, err
	}
	return v, nil
}

// FromSecrets returns a Verifier, every option at its default, for the
// secrets the admin copied from Staircase, in the text form ParseSecret
// reads: the one line a receiver needs to start.
//
//	v, err := verify.FromSecrets(os.Getenv("STAIRHOOK_SECRET"))
//
// Give the new and the old secret during a rotation; they are labelled
// "key1", "key2", … in order, as Result.KeyLabel reports. For labels,
// expiries, a shared Store or any other option, use NewVerifier. It fails
// with ErrInvalidSecret for a text that is not a secret (an empty one, as
// an unset environment variable gives, included), naming its position but
// never its text, and with ErrInvalidOptions for no text at all.
func FromSecrets(texts ...string) (*Verifier, error) {
	if len(texts) == 0 {
		return nil, withHint(ErrInvalidOptions, "FromSecrets: no secret")
	}
	keys := make([]Key, len(texts))
	for i, text := range texts {
		s, err := ParseSecret(text)
		if err != nil {
			if strings.TrimSpace(text) == "" {
				return nil, withHint(ErrInvalidSecret, fmt.Sprintf("secret %d of %d is empty (is its environment variable set?)", i+1, len(texts)))
			}
			return nil, fmt.Errorf("secret %d of %d: %w", i+1, len(texts), err)
		}
		keys[i] = Key{Secret: s}
	}
	return NewVerifier(Options{Keys: keys})
}

// checkKeyringActive refuses a keyring whose keys have all expired: such a
// verifier would answer every request ErrNoMatchingSignature, which is a
// configuration mistake, not a state to start in. Keys that expire later
// are the rotation working as meant, and Verify's error then says that
// every key has expired.
func (v *Verifier) checkKeyringActive() error {
	now := v.now()
	var last time.Time
	for i := range v.keys {
		k := &v.keys[i]
		if k.active(now) {
			return nil
		}
		if k.expires.After(last) {
			last = k.expires
		}
	}
	return withHint(ErrInvalidOptions, "every key has expired, the last at "+last.UTC().Format(time.RFC3339)+": no request could verify")
}

// String describes the verifier by its key labels and tolerance. It never
// shows key material, so a *Verifier is safe in %v, %+v and logs (and so is
// a Verifier value, whose key material is behind pointers).
func (v *Verifier) String() string {
	var b strings.Builder
	b.WriteString("verify.Verifier(keys:")
	for i, k := range v.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte(' ')
		b.WriteString(k.label)
	}
	b.WriteString("; tolerance ")
	b.WriteString(v.tolerance.String())
	b.WriteByte(')')
	return b.String()
}

// GoString returns the same form as String, so %#v is safe too.
func (v *Verifier) GoString() string { return v.String() }

// Tolerance returns the timestamp tolerance in force.
func (v *Verifier) Tolerance() time.Duration { return v.tolerance }

func (k *verifierKey) active(now time.Time) bool {
	return k.expires.IsZero() || now.Before(k.expires)
}

// Verify checks the signature headers h against body, the raw bytes exactly
// as received. On success it returns which key and scheme matched. On failure
// the error wraps exactly one of ErrMissingSignature, ErrMalformedHeader,
// ErrTimestampTooOld, ErrTimestampTooNew or ErrNoMatchingSignature, chosen in
// the order SPEC.md fixes. Header names are matched case-insensitively: the
// canonical key (the only one in a map built by net/http) is read when
// present, as http.Header.Get does; otherwise a hand-built map that holds a
// name under several spellings is read as that header repeated (signature
// lines together, in sorted key order; an id or timestamp is then
// malformed).
//
// Verify does not remember ids: replay protection within the tolerance
// window needs a Store, as the Middleware uses.
func (v *Verifier) Verify(h http.Header, body []byte) (Result, error) {
	var c check
	defer c.release()
	if err := v.checkHeaders(&c, h); err != nil {
		return Result{}, err
	}
	return v.checkBody(&c, body, c.now)
}

// check is one verification in two steps: checkHeaders takes every step of
// SPEC.md's order that the headers alone decide, checkBody the MACs, which
// need the body. The Middleware runs checkHeaders before it reads the body,
// so that a request the headers condemn costs no body read. It lives on the
// caller's stack: its slices are rebuilt from its arrays on demand rather
// than stored, which would make it escape.
type check struct {
	now    time.Time // of the timestamp check
	one    [1][]string
	multi  [][]string // signature lines under several spellings, if so
	sum    sigSummary
	legacy bool // no versioned entry: a legacy mode applies

	// v1
	id, tsText string
	ts         int64
	small      [2][32]byte           // decoded entries, the usual one or two
	big        *[maxEntries][32]byte // more, from bigSigsPool

	// legacy
	mac [32]byte
}

// lines returns the signature header's value lists.
func (c *check) lines() [][]string {
	if c.multi != nil {
		return c.multi
	}
	return c.one[:]
}

// sigs returns the decoded v1 entries.
func (c *check) sigs() [][32]byte {
	if c.big != nil {
		return c.big[:c.sum.v1]
	}
	return c.small[:c.sum.v1]
}

// release returns what c took from a pool.
func (c *check) release() {
	if c.big != nil {
		bigSigsPool.Put(c.big)
		c.big = nil
	}
}

// checkHeaders runs steps 1 to 6 of SPEC.md's verification order up to, not
// including, the MAC of any key. Of them, only the timestamp's depends on
// the time.
func (v *Verifier) checkHeaders(c *check, h http.Header) error {
	hs := headers(h)
	fam := staircaseHeaders
	single, several, ok := hs.values(fam.signature)
	if !ok {
		fam = standardHeaders
		single, several, ok = hs.values(fam.signature)
	}
	if !ok {
		return ErrMissingSignature
	}
	c.one[0], c.multi = single, several
	summarize(&c.sum, c.lines())
	sum := &c.sum
	if sum.entries == 0 {
		return ErrMissingSignature
	}
	if sum.length > maxHeaderLen {
		return withHint(ErrMalformedHeader, "signature header longer than 4096 bytes")
	}
	if sum.entries > maxEntries {
		return withHint(ErrMalformedHeader, "more than 16 signature entries")
	}
	if sum.v1 > 0 {
		return v.checkV1Headers(c, hs, fam)
	}
	if sum.versioned > 0 {
		return withHint(ErrNoMatchingSignature, "no v1 entry; entries of other versions are ignored")
	}
	if !v.opts.AllowBodySignature && !v.opts.AllowSecretDigest {
		return withHint(ErrMalformedHeader, legacyHint(sum.only))
	}
	if sum.entries != 1 {
		return withHint(ErrMalformedHeader, "a legacy signature header holds a single value")
	}
	if !decodeMAC(&c.mac, trimSHA256Prefix(sum.only)) {
		return withHint(ErrMalformedHeader, "legacy signature is neither 64 hex digits nor base64 of 32 bytes")
	}
	c.legacy = true
	c.now = v.now()
	return nil
}

func legacyHint(only string) string {
	var mac [32]byte
	if only != "" && decodeMAC(&mac, trimSHA256Prefix(only)) {
		return "no v1 entry; the value looks like a body-only signature or a secret digest, accepted only with AllowBodySignature or AllowSecretDigest"
	}
	return "no versioned entry such as v1,<base64>"
}

// bigSigsPool holds room for the decoded entries of headers with more than
// two v1 entries.
var bigSigsPool = sync.Pool{New: func() any { return new([maxEntries][32]byte) }}

// decodeV1 decodes the v1 entries of lines into sigs, len(sigs) == sum.v1.
func decodeV1(sigs [][32]byte, sum *sigSummary, lines [][]string) bool {
	if len(sigs) == 1 {
		return decodeBase64MAC(&sigs[0], sum.firstV1[len("v1,"):])
	}
	n := 0
	for _, values := range lines {
		for _, val := range values {
			for rest := val; ; {
				var e string
				e, rest = nextEntry(rest)
				if e == "" {
					break
				}
				if strings.HasPrefix(e, "v1,") {
					if n == len(sigs) || !decodeBase64MAC(&sigs[n], e[len("v1,"):]) {
						return false
					}
					n++
				}
			}
		}
	}
	return n == len(sigs)
}

// checkV1Headers is step 4 of SPEC.md's order but its last sub-step: the id
// and timestamp headers, the timestamp's age, the entries' encoding.
func (v *Verifier) checkV1Headers(c *check, hs headers, fam family) error {
	id, ok := hs.single(fam.id)
	if !ok {
		return withHint(ErrMalformedHeader, "missing or repeated "+strings.ToLower(fam.id)+" header")
	}
	if !validID(id) {
		return withHint(ErrMalformedHeader, strings.ToLower(fam.id)+" must be 1 to 256 visible ASCII characters")
	}
	tsText, ok := hs.single(fam.timestamp)
	if !ok {
		return withHint(ErrMalformedHeader, "missing or repeated "+strings.ToLower(fam.timestamp)+" header")
	}
	ts, ok := parseTimestamp(tsText)
	if !ok {
		return withHint(ErrMalformedHeader, strings.ToLower(fam.timestamp)+" must be 1 to 12 decimal digits")
	}
	c.id, c.tsText, c.ts = id, tsText, ts
	c.now = v.now()
	if err := v.checkTimestamp(ts, c.now); err != nil {
		return err
	}

	// Every v1 entry must be well formed, whichever one matches. One or two
	// entries, the usual case, fit in c; more come from a pool.
	if c.sum.v1 > len(c.small) {
		c.big = bigSigsPool.Get().(*[maxEntries][32]byte)
	}
	if !decodeV1(c.sigs(), &c.sum, c.lines()) {
		return withHint(ErrMalformedHeader, "a v1 entry is not standard base64 of 32 bytes")
	}
	return nil
}

// checkTimestamp is the two-sided check of the signed Unix time ts at now.
func (v *Verifier) checkTimestamp(ts int64, now time.Time) error {
	signed := time.Unix(ts, 0)
	// Compare instants, not now.Sub(signed): a Duration saturates about 292
	// years out, and a 12-digit timestamp lies up to 31 000 years ahead.
	// The hints count whole seconds, which fit in an int64 for any
	// 12-digit timestamp.
	if signed.Before(now.Add(-v.tolerance)) {
		ago := now.Unix() - ts
		if now.Nanosecond() > 0 {
			ago++ // round up, so the hint never shows an age within the tolerance
		}
		return withHint(ErrTimestampTooOld, fmt.Sprintf("signed %d s ago, tolerance %d s", ago, int64(v.tolerance/time.Second)))
	}
	if signed.After(now.Add(v.tolerance)) {
		return withHint(ErrTimestampTooNew, fmt.Sprintf("signed %d s in the future, tolerance %d s", ts-now.Unix(), int64(v.tolerance/time.Second)))
	}
	return nil
}

// checkBody finishes a check that passed checkHeaders: the MACs of the
// active keys over body, at now. A now later than c.now, when the body
// took time to arrive, is checked against the timestamp again first, so
// the outcome is the one Verify would give at now: the other steps of
// checkHeaders do not depend on the time.
func (v *Verifier) checkBody(c *check, body []byte, now time.Time) (Result, error) {
	if c.legacy {
		return v.verifyLegacy(&c.mac, body, now)
	}
	if !now.Equal(c.now) {
		if err := v.checkTimestamp(c.ts, now); err != nil {
			return Result{}, err
		}
	}
	sigs := c.sigs()
	active := 0
	for i := range v.keys {
		k := &v.keys[i]
		if !k.active(now) {
			continue
		}
		active++
		if k.mac.matchesSigned(c.id, c.tsText, body, sigs) {
			return Result{ID: c.id, Timestamp: time.Unix(c.ts, 0), KeyLabel: k.label, Scheme: SchemeV1}, nil
		}
	}
	if active == 0 {
		return Result{}, withHint(ErrNoMatchingSignature, "no active key: every key has expired")
	}
	return Result{}, withHint(ErrNoMatchingSignature, v.diagnose(now, c.id, c.tsText, body, sigs))
}

// maxDiagnoseBody bounds the extra work spent on hints for a failed request.
const maxDiagnoseBody = 64 << 10

// diagnose looks for a common cause of a mismatch by recomputing the MAC over
// likely variants of the body. It runs only on the failure path, on bodies up
// to 64 KiB, at most three variants per active key.
func (v *Verifier) diagnose(now time.Time, id, ts string, body []byte, sigs [][32]byte) string {
	const generic = "signature does not match any active key: wrong secret, or the body differs from what was signed"
	if len(body) > maxDiagnoseBody {
		return generic
	}
	type variant struct {
		body []byte
		hint string
	}
	var variants []variant
	if n := len(body); n > 0 && body[n-1] == '\n' {
		variants = append(variants, variant{body[:n-1], "body differs from what was signed: a trailing newline was added"})
	} else {
		variants = append(variants, variant{append(body[:n:n], '\n'), "body differs from what was signed: a trailing newline was removed"})
	}
	if dec, ok := decodeBase64Body(body); ok {
		variants = append(variants, variant{dec, "body differs from what was signed: it looks base64-encoded; verify the decoded bytes"})
	}
	if c, ok := compactJSON(body); ok {
		variants = append(variants, variant{c, "body differs from what was signed: it looks re-serialized (JSON white space changed); verify the raw bytes as received"})
	}
	for i := range v.keys {
		k := &v.keys[i]
		if !k.active(now) {
			continue
		}
		for _, vr := range variants {
			if k.mac.matchesSigned(id, ts, vr.body, sigs) {
				return vr.hint
			}
		}
	}
	return generic
}

// verifyLegacy matches got, the decoded value of a legacy header, against
// the active keys at now.
func (v *Verifier) verifyLegacy(got *[32]byte, body []byte, now time.Time) (Result, error) {
	active := 0
	for i := range v.keys {
		k := &v.keys[i]
		if !k.active(now) {
			continue
		}
		active++
		if v.opts.AllowBodySignature {
			st := k.mac.get()
			ok := hmac.Equal(st.bodyOnly(body), got[:])
			k.mac.put(st)
			if ok {
				return Result{KeyLabel: k.label, Scheme: SchemeBody}, nil
			}
		}
		if v.opts.AllowSecretDigest && hmac.Equal(k.digest[:], got[:]) {
			return Result{KeyLabel: k.label, Scheme: SchemeSecretDigest}, nil
		}
	}
	if active == 0 {
		return Result{}, withHint(ErrNoMatchingSignature, "no active key: every key has expired")
	}
	return Result{}, withHint(ErrNoMatchingSignature, "legacy signature does not match any active key")
}

func trimSHA256Prefix(s string) string {
	if len(s) >= 7 && strings.EqualFold(s[:7], "sha256=") {
		return s[7:]
	}
	return s
}
