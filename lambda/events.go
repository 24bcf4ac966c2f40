package lambda

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// trigger is the AWS service that sent an event; it fixes the response shape.
type trigger int

const (
	triggerRESTv1      trigger = iota + 1 // API Gateway REST API, payload format 1.0
	triggerHTTPv2                         // API Gateway HTTP API, payload format 2.0
	triggerFunctionURL                    // Lambda Function URL (the 2.0 shape)
	triggerALB                            // Application Load Balancer target group
)

// probe holds the few fields that tell the triggers apart.
type probe struct {
	Version           string          `json:"version"`
	HTTPMethod        string          `json:"httpMethod"`
	MultiValueHeaders json.RawMessage `json:"multiValueHeaders"`
	RequestContext    struct {
		ELB        json.RawMessage `json:"elb"`
		ResourceID string          `json:"resourceId"`
		Stage      string          `json:"stage"`
		RequestID  string          `json:"requestId"`
		DomainName string          `json:"domainName"`
	} `json:"requestContext"`
}

// classify tells the trigger from the JSON alone:
//   - requestContext.elb present: an ALB target group;
//   - version "2.0": an HTTP API, or a Function URL when the domain name is
//     a lambda-url one (both answer in the same shape);
//   - httpMethod with an API Gateway request context (resourceId, stage or
//     requestId) and no version or version "1.0": a REST API, or an HTTP API
//     configured for payload format 1.0, which is the same shape.
func (p *probe) classify() (trigger, bool) {
	switch {
	case present(p.RequestContext.ELB):
		return triggerALB, true
	case p.Version == "2.0":
		if strings.Contains(p.RequestContext.DomainName, ".lambda-url.") {
			return triggerFunctionURL, true
		}
		return triggerHTTPv2, true
	case (p.Version == "" || p.Version == "1.0") && p.HTTPMethod != "" &&
		(p.RequestContext.ResourceID != "" || p.RequestContext.Stage != "" || p.RequestContext.RequestID != ""):
		return triggerRESTv1, true
	}
	return 0, false
}

// present reports whether a raw JSON field was given and is not null.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// event is an HTTP request from any trigger, in one form.
type event struct {
	trigger trigger
	// multiValue is an ALB target group with multi-value headers on, which
	// must be answered with multiValueHeaders.
	multiValue bool

	method      string
	path        string
	pathEscaped bool // path is percent-encoded as on the wire (2.0 and ALB)
	rawQuery    string
	header      http.Header
	domainName  string
	sourceIP    string
	body        string
	base64      bool
	headerBytes int
}

// decodeEvent parses an event payload into an event. Its errors wrap
// ErrUnknownEvent and never quote the payload.
func decodeEvent(payload []byte) (*event, error) {
	var p probe
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, jsonError(err)
	}
	t, ok := p.classify()
	if !ok {
		return nil, unknownEvent("no httpMethod with an API Gateway requestContext, no version \"2.0\" and no requestContext.elb")
	}
	var (
		ev  *event
		err error
	)
	switch t {
	case triggerRESTv1:
		var in events.APIGatewayProxyRequest
		if err = json.Unmarshal(payload, &in); err == nil {
			ev = fromRESTv1(&in)
		}
	case triggerHTTPv2, triggerFunctionURL:
		// A Function URL event is payload format 2.0 too: every field read
		// here has the same JSON name in both types.
		var in events.APIGatewayV2HTTPRequest
		if err = json.Unmarshal(payload, &in); err == nil {
			ev = fromHTTPv2(&in)
		}
	case triggerALB:
		var in events.ALBTargetGroupRequest
		if err = json.Unmarshal(payload, &in); err == nil {
			ev = fromALB(&in, present(p.MultiValueHeaders))
		}
	}
	if err != nil {
		return nil, jsonError(err)
	}
	ev.trigger = t
	if ev.method == "" {
		return nil, unknownEvent("the event has no HTTP method")
	}
	return ev, nil
}

// unknownEventError is ErrUnknownEvent with what was wrong. Its type name is
// the errorType that Lambda reports for the failed invocation.
type unknownEventError struct{ detail string }

func (e *unknownEventError) Error() string { return ErrUnknownEvent.Error() + ": " + e.detail }
func (e *unknownEventError) Unwrap() error { return ErrUnknownEvent }

func unknownEvent(detail string) error { return &unknownEventError{detail} }

// jsonError describes a decoding failure by position or field name only.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return unknownEvent(fmt.Sprintf("invalid JSON at offset %d", syn.Offset))
	case errors.As(err, &typ):
		return unknownEvent(fmt.Sprintf("field %q is a JSON %s, not %s", typ.Field, typ.Value, typ.Type))
	}
	return unknownEvent("invalid JSON")
}

func fromRESTv1(in *events.APIGatewayProxyRequest) *event {
	ev := &event{
		method:     in.HTTPMethod,
		path:       in.Path,
		rawQuery:   encodeQuery(in.MultiValueQueryStringParameters, in.QueryStringParameters),
		domainName: in.RequestContext.DomainName,
		sourceIP:   in.RequestContext.Identity.SourceIP,
		body:       in.Body,
		base64:     in.IsBase64Encoded,
	}
	ev.header = ev.headers(in.MultiValueHeaders, in.Headers)
	return ev
}

func fromHTTPv2(in *events.APIGatewayV2HTTPRequest) *event {
	ev := &event{
		method:      in.RequestContext.HTTP.Method,
		path:        in.RawPath,
		pathEscaped: true,
		rawQuery:    in.RawQueryString,
		domainName:  in.RequestContext.DomainName,
		sourceIP:    in.RequestContext.HTTP.SourceIP,
		body:        in.Body,
		base64:      in.IsBase64Encoded,
	}
	ev.header = ev.headers(nil, in.Headers)
	splitJoinedSignature(ev.header)
	ev.addCookies(in.Cookies)
	return ev
}

// signatureHeaders are the headers whose repeated lines are read together:
// SPEC.md §2 takes the entries of every line, for the Staircase family and
// for the Standard Webhooks one (§7).
var signatureHeaders = [...]string{"X-Staircase-Signature", "Webhook-Signature"}

// splitJoinedSignature undoes, in the signature headers of an HTTP API or
// Function URL event, the commas with which AWS joined repeated header
// lines, so that the verifier reads the entries of every line as it does
// over HTTP. Other headers keep their commas: only here does the scheme
// define what the lines hold.
func splitJoinedSignature(h http.Header) {
	for _, name := range signatureHeaders {
		vs := h[name]
		for i, v := range vs {
			vs[i] = separateEntries(v)
		}
	}
}

// separateEntries returns s with every comma that separates two signature
// entries replaced by a space, the separator the verifier expects. An entry
// is <version>,<value>: its first comma, after the version token, stays, and
// a v1 or v1a value is base64, which never holds a comma. A later comma
// separates entries when the next one starts like an entry, a version token
// (v or V, a digit, then letters or digits, as v1, v1a, v2) and its comma,
// after optional spaces or tabs; any other comma is left in place, so a
// value that was malformed on its own line stays malformed, and a value of
// an unknown version that holds commas stays whole.
func separateEntries(s string) string {
	var out []byte // a copy, made at the first change
	inEntry, versioned := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			inEntry, versioned = false, false
		case c != ',':
			inEntry = true
		case inEntry && !versioned:
			versioned = true
		case startsVersionedEntry(s[i+1:]):
			if out == nil {
				out = []byte(s)
			}
			out[i] = ' '
			inEntry, versioned = false, false
		default:
			inEntry = true
		}
	}
	if out == nil {
		return s
	}
	return string(out)
}

// maxVersionToken bounds the version token startsVersionedEntry looks
// for, so each comma costs a bounded look ahead.
const maxVersionToken = 16

// startsVersionedEntry reports whether s starts, after optional spaces or
// tabs, with a version token and its comma: v or V, a digit, then up to
// maxVersionToken letters and digits in all.
func startsVersionedEntry(s string) bool {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	if i+2 >= len(s) || (s[i] != 'v' && s[i] != 'V') || s[i+1] < '0' || s[i+1] > '9' {
		return false
	}
	start := i
	i += 2
	for i < len(s) && i-start < maxVersionToken && isAlnum(s[i]) {
		i++
	}
	return i < len(s) && s[i] == ','
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// fromALB reads an ALB event. The ALB passes the path and the query
// parameters as they were on the wire, without decoding them, and names the
// client in X-Forwarded-For, whose last entry it appended itself.
func fromALB(in *events.ALBTargetGroupRequest, multiValue bool) *event {
	ev := &event{
		multiValue:  multiValue,
		method:      in.HTTPMethod,
		path:        in.Path,
		pathEscaped: true,
		rawQuery:    rawQuery(in.MultiValueQueryStringParameters, in.QueryStringParameters),
		body:        in.Body,
		base64:      in.IsBase64Encoded,
	}
	ev.header = ev.headers(in.MultiValueHeaders, in.Headers)
	if xff := ev.header.Values("X-Forwarded-For"); len(xff) > 0 {
		last := xff[len(xff)-1]
		ev.sourceIP = strings.TrimSpace(last[strings.LastIndexByte(last, ',')+1:])
	}
	return ev
}

// headers builds the request header from the multi-value map when the event
// has one (API Gateway sends both, the multi-value one complete), else from
// the single-value map. Header.Add puts every name in canonical form, so
// lower-case and mixed-case names both work.
func (ev *event) headers(multi map[string][]string, single map[string]string) http.Header {
	h := make(http.Header, max(len(multi), len(single)))
	if len(multi) > 0 {
		for k, vs := range multi {
			for _, v := range vs {
				ev.addHeader(h, k, v)
			}
		}
		return h
	}
	for k, v := range single {
		ev.addHeader(h, k, v)
	}
	return h
}

func (ev *event) addHeader(h http.Header, k, v string) {
	ev.headerBytes += len(k) + len(v) + 4 // ": " and CRLF, as on the wire
	h.Add(k, v)
}

// addCookies restores the Cookie header that HTTP APIs and Function URLs
// move into the cookies array.
func (ev *event) addCookies(cookies []string) {
	if len(cookies) > 0 {
		ev.addHeader(ev.header, "Cookie", strings.Join(cookies, "; "))
	}
}

// encodeQuery re-encodes the decoded query parameters of a REST API event,
// preferring the multi-value map, which holds every value.
func encodeQuery(multi map[string][]string, single map[string]string) string {
	if len(multi) > 0 {
		return url.Values(multi).Encode()
	}
	q := make(url.Values, len(single))
	for k, v := range single {
		q.Set(k, v)
	}
	return q.Encode()
}

// rawQuery joins the still-encoded query parameters of an ALB event, keys in
// sorted order.
func rawQuery(multi map[string][]string, single map[string]string) string {
	var b strings.Builder
	add := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	if len(multi) > 0 {
		for _, k := range slices.Sorted(maps.Keys(multi)) {
			for _, v := range multi[k] {
				add(k, v)
			}
		}
		return b.String()
	}
	for _, k := range slices.Sorted(maps.Keys(single)) {
		add(k, single[k])
	}
	return b.String()
}

// failure is an answer the adapter gives itself, without calling the
// handler, in the same JSON form as verify's middleware.
type failure struct {
	status  int
	code    string
	message string
}

func (f *failure) write(w http.ResponseWriter) {
	body, _ := json.Marshal(map[string]map[string]string{"error": {"code": f.code, "message": f.message}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(f.status)
	_, _ = w.Write(body)
}

// httpRequest builds the request for the handler, or the failure to answer
// instead when the event cannot be a valid HTTP request.
func (ev *event) httpRequest(ctx context.Context) (*http.Request, *failure) {
	if !validToken(ev.method) {
		return nil, &failure{http.StatusBadRequest, "invalid_method", "the HTTP method is not a valid token"}
	}
	if ev.headerBytes > maxHeaderBytes {
		return nil, &failure{http.StatusRequestHeaderFieldsTooLarge, "headers_too_large", "the request header fields exceed 1 MiB"}
	}
	for k, vs := range ev.header {
		if !validToken(k) {
			return nil, &failure{http.StatusBadRequest, "invalid_header", "a header name is not a valid token"}
		}
		for _, v := range vs {
			if !validHeaderValue(v) {
				return nil, &failure{http.StatusBadRequest, "invalid_header", "a header value holds a control character"}
			}
		}
	}

	u := &url.URL{RawQuery: ev.rawQuery}
	p := ev.path
	if p == "" {
		p = "/"
	}
	if p[0] != '/' {
		return nil, &failure{http.StatusBadRequest, "invalid_path", "the request path does not start with /"}
	}
	u.Path = p
	if ev.pathEscaped {
		dec, err := url.PathUnescape(p)
		if err != nil {
			return nil, &failure{http.StatusBadRequest, "invalid_path", "the request path has an invalid percent-encoding"}
		}
		u.Path = dec
		if dec != p {
			u.RawPath = p
		}
	}

	body, fail := ev.decodeBody()
	if fail != nil {
		return nil, fail
	}

	r := (&http.Request{
		Method:     ev.method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     ev.header,
		Body:       http.NoBody,
		RequestURI: u.RequestURI(),
	}).WithContext(ctx)
	if len(body) > 0 {
		r.Body = readCloser{bytes.NewReader(body)}
		r.ContentLength = int64(len(body))
	}
	// As net/http's server does: the Host header becomes Request.Host and
	// leaves the map.
	r.Host = ev.header.Get("Host")
	if r.Host == "" {
		r.Host = ev.domainName
	}
	delete(r.Header, "Host")
	if addr, err := netip.ParseAddr(ev.sourceIP); err == nil {
		r.RemoteAddr = netip.AddrPortFrom(addr, 0).String()
	}
	return r, nil
}

// decodeBody returns the body bytes as the sender sent them, checking the
// size before doing any work proportional to it.
func (ev *event) decodeBody() ([]byte, *failure) {
	tooLarge := &failure{http.StatusRequestEntityTooLarge, "body_too_large", "the request body exceeds 6 MiB"}
	if !ev.base64 {
		if len(ev.body) > MaxBodyBytes {
			return nil, tooLarge
		}
		return []byte(ev.body), nil
	}
	if base64.StdEncoding.DecodedLen(len(ev.body)) > MaxBodyBytes+2 {
		return nil, tooLarge
	}
	body, err := base64.StdEncoding.DecodeString(ev.body)
	if err != nil {
		return nil, &failure{http.StatusBadRequest, "invalid_base64_body", "the event is marked isBase64Encoded but its body is not standard base64"}
	}
	if len(body) > MaxBodyBytes {
		return nil, tooLarge
	}
	return body, nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// validToken reports whether s is an RFC 9110 token, as method and header
// names must be.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || !tokenChar[c] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// validHeaderValue reports whether v holds no control character other than
// horizontal tab, so no value can smuggle a line break into a log or a
// forwarded request.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
