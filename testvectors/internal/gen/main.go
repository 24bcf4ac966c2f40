// Command gen writes testvectors/vectors.json, the shared test vectors of the
// Staircase webhook signature scheme. Run it with `go generate
// ./testvectors`.
//
// It computes every signature itself with crypto/hmac and crypto/sha256 and
// never calls package verify, so the vectors check the implementation
// instead of repeating its output. The output is deterministic: secrets and
// bodies derive from fixed seeds, and no clock or randomness is read, so a
// test can regenerate the file and compare it byte for byte.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/stairhook/stairhook/testvectors"
	"log"
	"os"
	"strconv"
	"strings"
)

func main() {
	out := flag.String("o", "vectors.json", "output file, - for standard output")
	flag.Parse()
	data, err := generate()
	if err != nil {
		log.Fatal(err)
	}
	if *out == "-" {
		_, err = os.Stdout.Write(data)
	} else {
		err = os.WriteFile(*out, data, 0o644)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// The JSON schema is package testvectors' own, so the generator cannot
// drift from what the tests read. (The embedded vectors.json must exist for
// that package to build; an empty file is enough to regenerate it.)
type (
	file    = testvectors.File
	vector  = testvectors.Vector
	vkey    = testvectors.VectorKey
	options = testvectors.VectorOptions
)

// Sentinel names, as the verifier's Go package spells them.
const (
	errMissing   = "ErrMissingSignature"
	errMalformed = "ErrMalformedHeader"
	errTooOld    = "ErrTimestampTooOld"
	errTooNew    = "ErrTimestampTooNew"
	errNoMatch   = "ErrNoMatchingSignature"
)

// Header names in the lower case the issue uses; case vectors vary them.
const (
	hID  = "x-staircase-id"
	hTS  = "x-staircase-timestamp"
	hSig = "x-staircase-signature"
	wID  = "webhook-id"
	wTS  = "webhook-timestamp"
	wSig = "webhook-signature"
)

// now is 2025-11-26T00:00:00Z, the clock of most vectors.
const now int64 = 1764115200

// stream returns n bytes derived from label: SHA-256 in counter mode. It
// stands in for randomness so that the output never changes.
func stream(label string, n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	var ctr [8]byte
	for i := uint64(0); len(out) < n; i++ {
		binary.BigEndian.PutUint64(ctr[:], i)
		h := sha256.New()
		h.Write([]byte("stairhook/testvectors/" + label + "/"))
		h.Write(ctr[:])
		out = h.Sum(out)
	}
	return out[:n]
}

// key is a secret with its label, as both the text and the HMAC key bytes.
type key struct {
	label string
	text  string // whsec_ form, or "" for a raw key
	bytes []byte
	raw   bool
}

func whsecKey(label, seed string, n int) key {
	b := stream("key/"+seed, n)
	return key{label: label, text: "whsec_" + base64.StdEncoding.EncodeToString(b), bytes: b}
}

func rawKey(label string, b []byte) key {
	return key{label: label, bytes: b, raw: true}
}

func (k key) entry(expires int64) vkey {
	if k.raw {
		return vkey{Label: k.label, RawBase64: base64.StdEncoding.EncodeToString(k.bytes), Expires: expires}
	}
	return vkey{Label: k.label, Secret: k.text, Expires: expires}
}

// mac is HMAC-SHA256(key, id + "." + ts + "." + body): the v1 signed content.
func mac(k []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, k)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return m.Sum(nil)
}

func bodyMAC(k []byte, body []byte) []byte {
	m := hmac.New(sha256.New, k)
	m.Write(body)
	return m.Sum(nil)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// v1 is one "v1,<base64>" entry.
func v1(k key, id, ts string, body []byte) string {
	return "v1," + b64(mac(k.bytes, id, ts, body))
}

func headers(id, ts, sig string) map[string]string {
	return map[string]string{hID: id, hTS: ts, hSig: sig}
}

func its(t int64) string { return strconv.FormatInt(t, 10) }

// tc is a case being built; zero fields take the defaults in add.
type tc struct {
	comment string
	flags   []string
	keys    []vkey
	opts    options
	now     int64
	headers map[string]string
	body    []byte
	err     string // sentinel name; "" means valid
	label   string // key label for a valid case
}

type builder struct {
	tests []vector
	fail  error
}

func (g *builder) add(c tc) {
	if c.now == 0 {
		c.now = now
	}
	if c.keys == nil {
		c.keys = []vkey{primary.entry(0)}
	}
	if c.headers == nil {
		c.headers = map[string]string{}
	}
	if c.flags == nil {
		c.flags = []string{}
	}
	v := vector{
		TcID:       len(g.tests) + 1,
		Comment:    c.comment,
		Flags:      c.flags,
		Keys:       c.keys,
		Options:    c.opts,
		Now:        c.now,
		Headers:    c.headers,
		BodyBase64: b64(c.body),
		Result:     "valid",
		Error:      c.err,
		KeyLabel:   c.label,
	}
	if c.err != "" {
		v.Result = "invalid"
		if c.label != "" && g.fail == nil {
			g.fail = fmt.Errorf("case %q: an invalid case names a key label", c.comment)
		}
	} else if c.label == "" && g.fail == nil {
		g.fail = fmt.Errorf("case %q: a valid case must name its key label", c.comment)
	}
	g.tests = append(g.tests, v)
}

var (
	primary = whsecKey("primary", "primary", 32)
	oldKey  = whsecKey("old", "old", 32)
	newKey  = whsecKey("new", "new", 32)
	wrong   = whsecKey("wrong", "wrong", 32)
	short   = whsecKey("short", "short", 16)
	raw16   = rawKey("raw16", stream("key/raw16", 16))
	raw32   = rawKey("raw32", stream("key/raw32", 32))
	rawText = rawKey("vendor", []byte("vendor-shared-secret-7f3a9c"))
)

const (
	id = "evt_01JDQ3Z8K4M2N6P8R0T2V4X6Z8"
	// ts is seven seconds before now: a request in flight.
	ts = now - 7
)

var (
	tsText = its(ts)
	body   = []byte(`{"type":"signal.created","id":"evt_01JDQ3Z8K4M2N6P8R0T2V4X6Z8","test":false,"account":{"id":"acc_42","name":"Acme Corp","status":"active"},"signal":{"id":"sig_7","title":"Churn risk rising","severity":"high"}}`)
	pretty = []byte(`{
  "type": "signal.created",
  "id": "evt_01JDQ3Z8K4M2N6P8R0T2V4X6Z8",
  "test": false,
  "account": {"id": "acc_42", "name": "Acme Corp", "status": "active"},
  "signal": {"id": "sig_7", "title": "Churn risk rising", "severity": "high"}
}`)
)

// The Standard Webhooks published example.
const (
	swSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTS     = "1614265330"
	swBody   = `{"test": 2432232314}`
	swSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func generate() ([]byte, error) {
	g := &builder{}
	bodies(g)
	entries(g)
	rotation(g)
	tolerance(g)
	malformed(g)
	tampering(g)
	headerCase(g)
	if err := standardWebhooks(g); err != nil {
		return nil, err
	}
	legacyBody(g)
	legacyDigest(g)
	rawSecrets(g)
	if g.fail != nil {
		return nil, g.fail
	}
	f := file{Scheme: "staircase-webhook-signature", Version: 1, NumberOfTests: len(g.tests), Tests: g.tests}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func bodies(g *builder) {
	flags := []string{"v1", "Body"}
	for _, c := range []struct {
		comment string
		body    []byte
	}{
		{"plain JSON body", body},
		{"empty body", []byte{}},
		{"unicode body (UTF-8, non-ASCII letters, CJK, emoji)", []byte(`{"account":{"name":"Zoë Ångström – 東京支社 🚀"},"note":"naïve café"}`)},
		{"binary body: every byte value 0x00 to 0xff", allBytes()},
		{"body of white space and CRLF line ends, signed as is", []byte("{\r\n  \"a\" : 1 ,\r\n  \"b\" : [ ]\r\n}\r\n")},
		{"body containing the separator characters . and newlines", []byte("1764115193.evt_x.\n.\n")},
		{"1 MiB body derived from a seed", stream("body/1MiB", 1<<20)},
	} {
		g.add(tc{comment: c.comment, flags: flags, headers: headers(id, tsText, v1(primary, id, tsText, c.body)), body: c.body, label: "primary"})
	}
	long := strings.Repeat("a", 255) + "z"
	g.add(tc{comment: "id of exactly 256 characters", flags: []string{"v1", "Id"}, headers: headers(long, tsText, v1(primary, long, tsText, body)), body: body, label: "primary"})
	g.add(tc{comment: "id of one character", flags: []string{"v1", "Id"}, headers: headers("x", tsText, v1(primary, "x", tsText, body)), body: body, label: "primary"})
	punct := `!"#$%&'()*+,-./:;<=>?@[\]^_` + "`{|}~"
	g.add(tc{comment: "id made of every visible ASCII punctuation character", flags: []string{"v1", "Id"}, headers: headers(punct, tsText, v1(primary, punct, tsText, body)), body: body, label: "primary"})
	lead := "0" + tsText
	g.add(tc{comment: "timestamp with a leading zero (11 digits) is signed and accepted as sent", flags: []string{"v1", "Timestamp"}, headers: headers(id, lead, v1(primary, id, lead, body)), body: body, label: "primary"})
	g.add(tc{comment: "secret given without the optional whsec_ prefix", flags: []string{"v1", "Secret"}, keys: []vkey{{Label: "primary", Secret: strings.TrimPrefix(primary.text, "whsec_")}}, headers: headers(id, tsText, v1(primary, id, tsText, body)), body: body, label: "primary"})
	g.add(tc{comment: "secret with surrounding white space, as pasted", flags: []string{"v1", "Secret"}, keys: []vkey{{Label: "primary", Secret: " \t" + primary.text + "\n"}}, headers: headers(id, tsText, v1(primary, id, tsText, body)), body: body, label: "primary"})
	g.add(tc{comment: "secret of 16 bytes, the minimum", flags: []string{"v1", "Secret"}, keys: []vkey{short.entry(0)}, headers: headers(id, tsText, v1(short, id, tsText, body)), body: body, label: "short"})
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// others returns n v1 entries made with keys nobody in the keyring holds.
func others(n int, id, ts string, body []byte) []string {
	var out []string
	for i := 0; i < n; i++ {
		k := whsecKey("other", "other/"+strconv.Itoa(i), 32)
		out = append(out, v1(k, id, ts, body))
	}
	return out
}

func entries(g *builder) {
	flags := []string{"v1", "Entries"}
	good := v1(primary, id, tsText, body)
	bad := v1(wrong, id, tsText, body)
	add := func(comment, sig string) {
		g.add(tc{comment: comment, flags: flags, headers: headers(id, tsText, sig), body: body, label: "primary"})
	}
	add("two entries, the second matches", bad+" "+good)
	add("two entries, the first matches", good+" "+bad)
	add("an unknown v2 entry before the matching v1 entry is ignored", "v2,"+b64(stream("v2", 48))+" "+good)
	add("a v1a entry (unknown version) beside the matching v1 entry is ignored", "v1a,"+b64(stream("v1a", 32))+" "+good)
	add("16 entries, the maximum, the last matches", strings.Join(append(others(15, id, tsText, body), good), " "))
	add("entries separated by several spaces, with leading and trailing space", "  "+bad+"   "+good+" ")
	add("entries separated by a tab", bad+"\t"+good)

	pad := 4096 - len(good) - len(" v2,")
	add("header of exactly 4096 bytes is accepted", good+" v2,"+strings.Repeat("A", pad))
}

func rotation(g *builder) {
	flags := []string{"v1", "Rotation"}
	ring := []vkey{oldKey.entry(0), newKey.entry(0)}
	g.add(tc{comment: "rotation: keyring old+new, signed with the old secret", flags: flags, keys: ring, headers: headers(id, tsText, v1(oldKey, id, tsText, body)), body: body, label: "old"})
	g.add(tc{comment: "rotation: keyring old+new, signed with the new secret", flags: flags, keys: ring, headers: headers(id, tsText, v1(newKey, id, tsText, body)), body: body, label: "new"})
	both := v1(oldKey, id, tsText, body) + " " + v1(newKey, id, tsText, body)
	g.add(tc{comment: "rotation: sender signs with both; the first key of the keyring that matches is reported", flags: flags, keys: []vkey{newKey.entry(0), oldKey.entry(0)}, headers: headers(id, tsText, both), body: body, label: "new"})
	g.add(tc{comment: "rotation: old key expired an hour ago, request signed with it", flags: flags, keys: []vkey{oldKey.entry(now - 3600), newKey.entry(0)}, headers: headers(id, tsText, v1(oldKey, id, tsText, body)), body: body, err: errNoMatch})
	g.add(tc{comment: "rotation: old key expires exactly now, so it is already inactive", flags: flags, keys: []vkey{oldKey.entry(now), newKey.entry(0)}, headers: headers(id, tsText, v1(oldKey, id, tsText, body)), body: body, err: errNoMatch})
	g.add(tc{comment: "rotation: old key expires one second after now, still active", flags: flags, keys: []vkey{oldKey.entry(now + 1), newKey.entry(0)}, headers: headers(id, tsText, v1(oldKey, id, tsText, body)), body: body, label: "old"})
	g.add(tc{comment: "rotation: old key expired, request signed with the new key", flags: flags, keys: []vkey{oldKey.entry(now - 3600), newKey.entry(0)}, headers: headers(id, tsText, v1(newKey, id, tsText, body)), body: body, label: "new"})
	g.add(tc{comment: "rotation: sender signs with both, old key expired, new key matches", flags: flags, keys: []vkey{oldKey.entry(now - 1), newKey.entry(0)}, headers: headers(id, tsText, both), body: body, label: "new"})
	g.add(tc{comment: "rotation: every key has expired", flags: flags, keys: []vkey{oldKey.entry(now - 60), newKey.entry(now)}, headers: headers(id, tsText, both), body: body, err: errNoMatch})
}

func tolerance(g *builder) {
	flags := []string{"v1", "Tolerance"}
	at := func(comment string, t int64, tol int64, err string) {
		s := its(t)
		label := "primary"
		if err != "" {
			label = ""
		}
		g.add(tc{comment: comment, flags: flags, opts: options{ToleranceSeconds: tol}, headers: headers(id, s, v1(primary, id, s, body)), body: body, err: err, label: label})
	}
	at("timestamp equal to now", now, 0, "")
	at("timestamp exactly 300 s old, at the default bound", now-300, 0, "")
	at("timestamp 301 s old, one second past the default bound", now-301, 0, errTooOld)
	at("timestamp exactly 300 s in the future, at the default bound", now+300, 0, "")
	at("timestamp 301 s in the future, one second past the default bound", now+301, 0, errTooNew)
	at("custom tolerance 60 s: 60 s old is valid", now-60, 60, "")
	at("custom tolerance 60 s: 61 s old", now-61, 60, errTooOld)
	at("custom tolerance 60 s: 60 s in the future is valid", now+60, 60, "")
	at("custom tolerance 60 s: 61 s in the future", now+61, 60, errTooNew)
	at("custom tolerance 1 day: 86400 s old is valid", now-86400, 86400, "")
	at("timestamp 0 (1970), a replay of an ancient request", 0, 0, errTooOld)
	at("largest 12-digit timestamp, far in the future", 999999999999, 0, errTooNew)
	s := its(now - 3600)
	g.add(tc{comment: "an hour-old timestamp with a wrong signature: the time check comes first", flags: []string{"v1", "Tolerance", "Order"}, headers: headers(id, s, v1(wrong, id, s, body)), body: body, err: errTooOld})
	g.add(tc{comment: "an hour-old timestamp with an undecodable v1 entry: the time check comes before decoding", flags: []string{"v1", "Tolerance", "Order"}, headers: headers(id, s, "v1,!!!!"), body: body, err: errTooOld})
	s = its(now + 3600)
	g.add(tc{comment: "a timestamp an hour ahead with a wrong signature", flags: []string{"v1", "Tolerance", "Order"}, headers: headers(id, s, v1(wrong, id, s, body)), body: body, err: errTooNew})
}

func malformed(g *builder) {
	flags := []string{"v1", "Malformed"}
	good := v1(primary, id, tsText, body)
	bad := func(comment string, h map[string]string, err string) {
		g.add(tc{comment: comment, flags: flags, headers: h, body: body, err: err})
	}
	bad("no headers at all", map[string]string{}, errMissing)
	bad("id and timestamp but no signature header", map[string]string{hID: id, hTS: tsText}, errMissing)
	bad("empty signature header", headers(id, tsText, ""), errMissing)
	bad("signature header of spaces only", headers(id, tsText, "   "), errMissing)
	bad("missing id header", map[string]string{hTS: tsText, hSig: good}, errMalformed)
	bad("missing timestamp header", map[string]string{hID: id, hSig: good}, errMalformed)
	bad("empty id", headers("", tsText, v1(primary, "", tsText, body)), errMalformed)
	bad("empty timestamp", headers(id, "", v1(primary, id, "", body)), errMalformed)
	for _, c := range []struct{ comment, ts string }{
		{"timestamp with a letter", "17641151a3"},
		{"timestamp with a plus sign", "+" + tsText},
		{"negative timestamp", "-1"},
		{"timestamp with a fraction", tsText + ".5"},
		{"timestamp with a trailing space", tsText + " "},
		{"timestamp in RFC 3339 form", "2025-11-25T23:59:53Z"},
		{"timestamp in milliseconds (13 digits)", tsText + "000"},
		{"timestamp of 13 digits with leading zeros", "000" + tsText},
	} {
		bad(c.comment, headers(id, c.ts, v1(primary, id, c.ts, body)), errMalformed)
	}
	for _, c := range []struct{ comment, id string }{
		{"id of 257 characters", strings.Repeat("a", 257)},
		{"id containing a space", "evt 1"},
		{"id containing a control character (0x01)", "evt\x011"},
		{"id containing DEL (0x7f)", "evt\x7f1"},
		{"id containing a non-ASCII letter", "évt_1"},
	} {
		bad(c.comment, headers(c.id, tsText, v1(primary, c.id, tsText, body)), errMalformed)
	}
	m := mac(primary.bytes, id, tsText, body)
	bad("v1 entry that is not base64", headers(id, tsText, "v1,"+strings.Repeat("!", 44)), errMalformed)
	bad("empty v1 entry", headers(id, tsText, "v1,"), errMalformed)
	bad("v1 entry decoding to 31 bytes", headers(id, tsText, "v1,"+b64(m[:31])), errMalformed)
	bad("v1 entry decoding to 33 bytes", headers(id, tsText, "v1,"+b64(append(append([]byte{}, m...), 0))), errMalformed)
	bad("v1 entry without base64 padding", headers(id, tsText, strings.TrimRight(good, "=")), errMalformed)
	bad("v1 entry in non-canonical base64 (padding bits set)", headers(id, tsText, "v1,"+nonCanonical(b64(m))), errMalformed)
	bad("v1 entry in hex instead of base64", headers(id, tsText, "v1,"+hex.EncodeToString(m)), errMalformed)
	uid, usig := urlSafe()
	bad("v1 entry in the URL-safe base64 alphabet", headers(uid, tsText, usig), errMalformed)
	bad("a malformed v1 entry beside a matching one", headers(id, tsText, good+" v1,AAAA"), errMalformed)

	bad("signature header of 4097 bytes", headers(id, tsText, good+" v2,"+strings.Repeat("A", 4097-len(good)-len(" v2,"))), errMalformed)
	bad("17 entries, one over the maximum, even though one matches", headers(id, tsText, strings.Join(append(others(16, id, tsText, body), good), " ")), errMalformed)
	bad("a value without any versioned entry", headers(id, tsText, b64(m)), errMalformed)
	bad("an entry with an empty version (,value)", headers(id, tsText, ","+b64(m)), errMalformed)
	bad("only a v2 entry: unknown versions are ignored", headers(id, tsText, "v2,"+b64(stream("v2", 48))), errNoMatch)
	bad("only a v1a entry: unknown versions are ignored", headers(id, tsText, "v1a,"+b64(m)), errNoMatch)
	bad("upper-case V1 is an unknown version", headers(id, tsText, "V1,"+b64(m)), errNoMatch)
	bad("only unknown versions and no id or timestamp: they are not checked", map[string]string{hSig: "v2,abc v1a,def"}, errNoMatch)
	bad("a malformed id and an hour-old timestamp: the id check comes first", headers("evt 1", its(now-3600), v1(primary, "evt 1", its(now-3600), body)), errMalformed)
}

// nonCanonical sets the unused low bits of the last base64 character of an
// encoded 32-byte value: lenient decoders accept it, canonical ones do not.
func nonCanonical(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(alphabet, s[42])
	return s[:42] + string(alphabet[i|3]) + s[43:]
}

// urlSafe finds an id whose MAC has a + or / in base64, and returns it with
// the entry in the URL-safe alphabet.
func urlSafe() (string, string) {
	for i := 0; ; i++ {
		id := "evt_urlsafe_" + strconv.Itoa(i)
		s := b64(mac(primary.bytes, id, tsText, body))
		if strings.ContainsAny(s, "+/") {
			return id, "v1," + base64.URLEncoding.EncodeToString(mac(primary.bytes, id, tsText, body))
		}
	}
}

func tampering(g *builder) {
	flags := []string{"v1", "Tampered"}
	good := v1(primary, id, tsText, body)
	bad := func(comment string, h map[string]string, b []byte) {
		g.add(tc{comment: comment, flags: flags, headers: h, body: b, err: errNoMatch})
	}
	flipped := append([]byte{}, body...)
	flipped[40] ^= 0x01
	bad("one bit of the body flipped", headers(id, tsText, good), flipped)
	bad("a trailing newline added to the body", headers(id, tsText, good), append(append([]byte{}, body...), '\n'))
	bad("the last byte of the body removed", headers(id, tsText, good), body[:len(body)-1])
	bad("the body re-serialized (pretty-printed JSON) after signing", headers(id, tsText, good), pretty)
	g.add(tc{comment: "signed pretty JSON, received compacted: re-serialized", flags: flags, headers: headers(id, tsText, v1(primary, id, tsText, pretty)), body: body, err: errNoMatch})
	bad("the body base64-encoded after signing", headers(id, tsText, good), []byte(b64(body)))
	bad("an empty body where a body was signed", headers(id, tsText, good), []byte{})
	bad("the id changed after signing", headers(id+"X", tsText, good), body)
	bad("the timestamp changed by one second after signing (still within tolerance)", headers(id, its(ts-1), good), body)
	sig := mac(primary.bytes, id, tsText, body)
	sig[0] ^= 0x80
	bad("one bit of the signature flipped", headers(id, tsText, "v1,"+b64(sig)), body)
	bad("signed with a wrong secret", headers(id, tsText, v1(wrong, id, tsText, body)), body)
	bad("key mistaken for the whsec_ text instead of the decoded bytes", headers(id, tsText, "v1,"+b64(mac([]byte(primary.text), id, tsText, body))), body)
	bad("signed content without the dots (id + ts + body)", headers(id, tsText, "v1,"+b64(hmacOf(primary.bytes, []byte(id+tsText+string(body))))), body)
	bad("a body-only MAC carried in a v1 entry", headers(id, tsText, "v1,"+b64(bodyMAC(primary.bytes, body))), body)
	bad("id and timestamp swapped in the signed content", headers(id, tsText, "v1,"+b64(mac(primary.bytes, tsText, id, body))), body)
}

func hmacOf(k, msg []byte) []byte { return bodyMAC(k, msg) }

func headerCase(g *builder) {
	flags := []string{"v1", "HeaderCase"}
	good := v1(primary, id, tsText, body)
	for _, c := range []struct{ comment, id, ts, sig string }{
		{"header names in canonical MIME case", "X-Staircase-Id", "X-Staircase-Timestamp", "X-Staircase-Signature"},
		{"header names in upper case", "X-STAIRCASE-ID", "X-STAIRCASE-TIMESTAMP", "X-STAIRCASE-SIGNATURE"},
		{"header names in mixed case", "x-StairCase-iD", "X-staircase-TIMESTAMP", "x-Staircase-signaTURE"},
	} {
		g.add(tc{comment: c.comment, flags: flags, headers: map[string]string{c.id: id, c.ts: tsText, c.sig: good}, body: body, label: "primary"})
	}
}

func standardWebhooks(g *builder) error {
	flags := []string{"v1", "StandardWebhooks"}
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(swSecret, "whsec_"))
	if err != nil {
		return err
	}
	sw := key{label: "sw", text: swSecret, bytes: k}
	got := v1(sw, swID, swTS, []byte(swBody))
	if !hmac.Equal([]byte(got), []byte(swSig)) {
		return fmt.Errorf("the Standard Webhooks example does not reproduce: computed %s", got)
	}
	swNow, _ := strconv.ParseInt(swTS, 10, 64)
	swHeaders := map[string]string{wID: swID, wTS: swTS, wSig: swSig}
	g.add(tc{comment: "the Standard Webhooks published example, in webhook-* headers", flags: flags, keys: []vkey{sw.entry(0)}, now: swNow, headers: swHeaders, body: []byte(swBody), label: "sw"})
	g.add(tc{comment: "the Standard Webhooks published example, in x-staircase-* headers", flags: flags, keys: []vkey{sw.entry(0)}, now: swNow, headers: map[string]string{hID: swID, hTS: swTS, hSig: swSig}, body: []byte(swBody), label: "sw"})
	g.add(tc{comment: "the Standard Webhooks published example, checked 301 s later", flags: flags, keys: []vkey{sw.entry(0)}, now: swNow + 301, headers: swHeaders, body: []byte(swBody), err: errTooOld})
	g.add(tc{comment: "the Standard Webhooks published example with the body re-serialized without the space", flags: flags, keys: []vkey{sw.entry(0)}, now: swNow, headers: swHeaders, body: []byte(`{"test":2432232314}`), err: errNoMatch})

	good := v1(primary, id, tsText, body)
	g.add(tc{comment: "Standard Webhooks headers with a Staircase secret", flags: flags, headers: map[string]string{wID: id, wTS: tsText, wSig: good}, body: body, label: "primary"})
	g.add(tc{comment: "Standard Webhooks headers in canonical case with two entries", flags: flags, headers: map[string]string{"Webhook-Id": id, "Webhook-Timestamp": tsText, "Webhook-Signature": v1(wrong, id, tsText, body) + " " + good}, body: body, label: "primary"})
	g.add(tc{comment: "families never mix: x-staircase-signature with webhook-id and webhook-timestamp", flags: append(flags, "Malformed"), headers: map[string]string{hSig: good, wID: id, wTS: tsText}, body: body, err: errMalformed})
	g.add(tc{comment: "families never mix: webhook-signature with x-staircase-id and x-staircase-timestamp", flags: append(flags, "Malformed"), headers: map[string]string{wSig: good, hID: id, hTS: tsText}, body: body, err: errMalformed})
	all := map[string]string{hID: id, hTS: tsText, hSig: good, wID: id, wTS: tsText, wSig: "v1," + b64(stream("garbage", 32))}
	g.add(tc{comment: "both families complete: x-staircase-* is read, webhook-* ignored", flags: flags, headers: all, body: body, label: "primary"})
	all = map[string]string{hID: id, hTS: tsText, hSig: v1(wrong, id, tsText, body), wID: id, wTS: tsText, wSig: good}
	g.add(tc{comment: "both families: a failing x-staircase-signature never falls back to webhook-signature", flags: flags, headers: all, body: body, err: errNoMatch})
	return nil
}

func legacyBody(g *builder) {
	flags := []string{"Legacy", "LegacyBody"}
	on := options{AllowBodySignature: true}
	m := bodyMAC(primary.bytes, body)
	valid := func(comment, value string) {
		g.add(tc{comment: comment, flags: flags, opts: on, headers: map[string]string{hSig: value}, body: body, label: "primary"})
	}
	invalid := func(comment string, o options, value, err string) {
		g.add(tc{comment: comment, flags: flags, opts: o, headers: map[string]string{hSig: value}, body: body, err: err})
	}
	valid("body signature, lower-case hex", hex.EncodeToString(m))
	valid("body signature, upper-case hex", strings.ToUpper(hex.EncodeToString(m)))
	valid("body signature, standard base64", b64(m))
	valid("body signature, sha256= prefix and hex", "sha256="+hex.EncodeToString(m))
	valid("body signature, SHA256= prefix and hex", "SHA256="+hex.EncodeToString(m))
	valid("body signature, Sha256= prefix and base64", "Sha256="+b64(m))
	g.add(tc{comment: "body signature with id and timestamp headers present (they are not signed)", flags: flags, opts: on, headers: headers(id, tsText, hex.EncodeToString(m)), body: body, label: "primary"})
	g.add(tc{comment: "body signature over an empty body", flags: flags, opts: on, headers: map[string]string{hSig: hex.EncodeToString(bodyMAC(primary.bytes, nil))}, body: []byte{}, label: "primary"})
	invalid("body signature with a wrong secret", on, hex.EncodeToString(bodyMAC(wrong.bytes, body)), errNoMatch)
	g.add(tc{comment: "body signature over a changed body", flags: flags, opts: on, headers: map[string]string{hSig: hex.EncodeToString(m)}, body: pretty, err: errNoMatch})
	invalid("body signature, not hex nor base64", on, "zzzz", errMalformed)
	invalid("body signature of 63 hex digits", on, hex.EncodeToString(m)[:63], errMalformed)
	invalid("body signature in base64 of 31 bytes", on, b64(m[:31]), errMalformed)
	invalid("body signature, two values", on, hex.EncodeToString(m)+" "+b64(m), errMalformed)
	invalid("body signature while AllowBodySignature is off", options{}, hex.EncodeToString(m), errMalformed)
	invalid("body signature in a v1 entry with the legacy mode on: v1 rules apply", on, "v1,"+b64(m), errMalformed)
	g.add(tc{comment: "a failing v1 header never falls back to the legacy mode", flags: flags, opts: on, headers: headers(id, tsText, v1(wrong, id, tsText, body)), body: body, err: errNoMatch})
	g.add(tc{comment: "a valid v1 header with the legacy mode on", flags: []string{"v1", "Legacy"}, opts: on, headers: headers(id, tsText, v1(primary, id, tsText, body)), body: body, label: "primary"})
	g.add(tc{comment: "a v1 MAC in hex as a body signature does not match", flags: flags, opts: on, headers: map[string]string{hSig: hex.EncodeToString(mac(primary.bytes, id, tsText, body))}, body: body, err: errNoMatch})
	g.add(tc{comment: "body signature with an expired key", flags: flags, opts: on, keys: []vkey{primary.entry(now - 1)}, headers: map[string]string{hSig: hex.EncodeToString(m)}, body: body, err: errNoMatch})
	g.add(tc{comment: "body signature with rotation: the second key matches", flags: flags, opts: on, keys: []vkey{oldKey.entry(0), newKey.entry(0)}, headers: map[string]string{hSig: hex.EncodeToString(bodyMAC(newKey.bytes, body))}, body: body, label: "new"})
	g.add(tc{comment: "body signature in webhook-signature", flags: flags, opts: on, headers: map[string]string{wSig: b64(m)}, body: body, label: "primary"})
}

func legacyDigest(g *builder) {
	flags := []string{"Legacy", "LegacyDigest"}
	on := options{AllowSecretDigest: true}
	d := sha256.Sum256([]byte(primary.text))
	valid := func(comment string, keys []vkey, o options, value, label string) {
		g.add(tc{comment: comment, flags: flags, keys: keys, opts: o, headers: map[string]string{hSig: value}, body: body, label: label})
	}
	invalid := func(comment string, keys []vkey, o options, value, err string) {
		g.add(tc{comment: comment, flags: flags, keys: keys, opts: o, headers: map[string]string{hSig: value}, body: body, err: err})
	}
	valid("secret digest: SHA-256 of the whsec_ text, hex", nil, on, hex.EncodeToString(d[:]), "primary")
	valid("secret digest: SHA-256 of the whsec_ text, base64", nil, on, b64(d[:]), "primary")
	valid("secret digest with sha256= prefix", nil, on, "sha256="+hex.EncodeToString(d[:]), "primary")
	g.add(tc{comment: "secret digest with an unrelated body: it proves nothing about the body", flags: flags, opts: on, headers: map[string]string{hSig: hex.EncodeToString(d[:])}, body: []byte(`{"forged":true}`), label: "primary"})
	rd := sha256.Sum256(rawText.bytes)
	valid("secret digest of a raw-bytes secret: SHA-256 of the raw bytes", []vkey{rawText.entry(0)}, on, hex.EncodeToString(rd[:]), "vendor")
	nd := sha256.Sum256([]byte(strings.TrimPrefix(primary.text, "whsec_")))
	invalid("secret digest over the text without the whsec_ prefix does not match", nil, on, hex.EncodeToString(nd[:]), errNoMatch)
	wd := sha256.Sum256([]byte(wrong.text))
	invalid("secret digest of a wrong secret", nil, on, hex.EncodeToString(wd[:]), errNoMatch)
	invalid("secret digest while AllowSecretDigest is off", nil, options{}, hex.EncodeToString(d[:]), errMalformed)
	invalid("secret digest with only AllowBodySignature on", nil, options{AllowBodySignature: true}, hex.EncodeToString(d[:]), errNoMatch)
	invalid("body signature with only AllowSecretDigest on", nil, on, hex.EncodeToString(bodyMAC(primary.bytes, body)), errNoMatch)
	valid("both legacy modes on, the value is a secret digest", nil, options{AllowBodySignature: true, AllowSecretDigest: true}, hex.EncodeToString(d[:]), "primary")
	valid("both legacy modes on, the value is a body signature", nil, options{AllowBodySignature: true, AllowSecretDigest: true}, b64(bodyMAC(primary.bytes, body)), "primary")
	invalid("secret digest, undecodable value", nil, on, "sha256=not-a-digest", errMalformed)
	invalid("secret digest of an expired key", []vkey{primary.entry(now)}, on, hex.EncodeToString(d[:]), errNoMatch)
}

func rawSecrets(g *builder) {
	flags := []string{"v1", "RawSecret"}
	for _, k := range []key{raw16, raw32, rawText} {
		g.add(tc{comment: fmt.Sprintf("raw-bytes secret of %d bytes", len(k.bytes)), flags: flags, keys: []vkey{k.entry(0)}, headers: headers(id, tsText, v1(k, id, tsText, body)), body: body, label: k.label})
	}
	g.add(tc{comment: "raw-bytes secret beside a whsec_ secret in one keyring", flags: append(flags, "Rotation"), keys: []vkey{primary.entry(0), raw32.entry(0)}, headers: headers(id, tsText, v1(raw32, id, tsText, body)), body: body, label: "raw32"})
	g.add(tc{comment: "raw-bytes secret, signed with the base64 text of the key instead of its bytes", flags: flags, keys: []vkey{raw32.entry(0)}, headers: headers(id, tsText, "v1,"+b64(mac([]byte(b64(raw32.bytes)), id, tsText, body))), body: body, err: errNoMatch})
}
