package lambda

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// errResponseTooLarge is what Write returns once the handler's body would
// pass MaxBodyBytes; the invocation then answers 500.
var errResponseTooLarge = errors.New("lambda: response body exceeds 6 MiB")

// responseWriter collects the handler's answer in memory, with the
// semantics of net/http's server where a handler can tell: the header map is
// frozen by the first WriteHeader or Write, 1xx codes are informational, and
// an unset Content-Type is sniffed from the body.
type responseWriter struct {
	header   http.Header
	status   int
	sent     http.Header
	body     bytes.Buffer
	overflow bool
}

func newResponseWriter() *responseWriter {
	return &responseWriter{header: make(http.Header)}
}

// Header implements http.ResponseWriter.
func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter.
func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		// As net/http does: this is a bug in the handler.
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.status != 0 || code < 200 {
		return
	}
	w.status = code
	w.sent = w.header.Clone()
}

// Write implements http.ResponseWriter.
func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if len(p) > MaxBodyBytes-w.body.Len() {
		w.overflow = true
		return 0, errResponseTooLarge
	}
	return w.body.Write(p)
}

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified
}

// response is the handler's answer, ready to put in a trigger's shape.
type response struct {
	status int
	header http.Header
	body   string
	base64 bool
}

// maxResponseBytes is the largest response payload AWS takes from a
// synchronous invocation: 6 MiB and 100 bytes, as its error "Exceeded
// maximum allowed payload size (6291556 bytes)" states. A larger one fails
// the invocation, so the caller would see a gateway error rather than the
// adapter's 500.
const maxResponseBytes = 6<<20 + 100

// maxALBResponseBytes is the largest response JSON an Application Load
// Balancer takes from a Lambda target: 1 MB by its documentation, read as
// 1,000,000 bytes, the smaller reading. A larger one reaches the caller as
// the load balancer's 502 rather than the adapter's 500.
const maxALBResponseBytes = 1_000_000

// responseLimit is the largest response document the trigger of ev takes.
func (ev *event) responseLimit() int {
	if ev.trigger == triggerALB {
		return maxALBResponseBytes
	}
	return maxResponseBytes
}

// responseTooLarge is the answer instead of a handler's response that does
// not fit: over MaxBodyBytes as written, or over the trigger's limit once
// encoded in its shape.
func responseTooLarge(ev *event) *response {
	fw := newResponseWriter()
	(&failure{http.StatusInternalServerError, "response_too_large", "the handler's response is larger than the trigger accepts"}).write(fw)
	return fw.result(ev)
}

// result returns the answer to the request of ev.
func (w *responseWriter) result(ev *event) *response {
	if w.overflow {
		return responseTooLarge(ev)
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	h := w.sent
	body := w.body.Bytes()
	if ev.method == http.MethodHead {
		body = nil
	}
	if _, set := h["Content-Type"]; !set && len(body) > 0 && h.Get("Content-Encoding") == "" {
		h.Set("Content-Type", http.DetectContentType(body))
	}
	r := &response{status: w.status, header: h}
	if isText(h, body) {
		r.body = string(body)
	} else {
		// Base64 makes a body a third larger: 6 MiB written becomes 8 MiB.
		// Checked before encoding, so no work is spent on an answer that
		// cannot be sent; Invoke checks the whole encoded response.
		if base64.StdEncoding.EncodedLen(len(body)) > ev.responseLimit() {
			return responseTooLarge(ev)
		}
		r.body = base64.StdEncoding.EncodeToString(body)
		r.base64 = true
	}
	return r
}

// isText reports whether body can go back as a JSON string unchanged: UTF-8
// text of a textual media type, not content-encoded. Everything else goes
// back base64-encoded, so no byte is altered on the way.
func isText(h http.Header, body []byte) bool {
	if len(body) == 0 {
		return true
	}
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return false
	}
	if !utf8.Valid(body) {
		return false
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		return true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if cs, ok := params["charset"]; ok {
		switch strings.ToLower(cs) {
		case "utf-8", "utf8", "us-ascii":
		default:
			return false
		}
	}
	switch {
	case strings.HasPrefix(mt, "text/"), strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "+xml"):
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript",
		"application/x-www-form-urlencoded", "application/yaml", "application/x-yaml",
		"application/x-ndjson":
		return true
	}
	return false
}

// encodeResponse puts r in the response shape of the event's trigger.
func (ev *event) encodeResponse(r *response) ([]byte, error) {
	switch ev.trigger {
	case triggerRESTv1:
		single, multi := splitHeaders(r.header)
		return json.Marshal(events.APIGatewayProxyResponse{
			StatusCode:        r.status,
			Headers:           single,
			MultiValueHeaders: multi,
			Body:              r.body,
			IsBase64Encoded:   r.base64,
		})
	case triggerHTTPv2:
		headers, cookies := joinHeaders(r.header)
		return json.Marshal(events.APIGatewayV2HTTPResponse{
			StatusCode:      r.status,
			Headers:         headers,
			Cookies:         cookies,
			Body:            r.body,
			IsBase64Encoded: r.base64,
		})
	case triggerFunctionURL:
		headers, cookies := joinHeaders(r.header)
		return json.Marshal(events.LambdaFunctionURLResponse{
			StatusCode:      r.status,
			Headers:         headers,
			Cookies:         cookies,
			Body:            r.body,
			IsBase64Encoded: r.base64,
		})
	case triggerALB:
		out := events.ALBTargetGroupResponse{
			StatusCode:        r.status,
			StatusDescription: statusDescription(r.status),
			Body:              r.body,
			IsBase64Encoded:   r.base64,
		}
		if ev.multiValue {
			_, out.MultiValueHeaders = splitHeaders(r.header)
		} else {
			out.Headers = albHeaders(r.header)
		}
		return json.Marshal(out)
	}
	return nil, fmt.Errorf("lambda: internal error: trigger %d has no response shape", ev.trigger)
}

// splitHeaders returns the single-valued headers and all of them with every
// value. API Gateway merges the two maps, keeping the multi-value one where
// both name a pair.
func splitHeaders(h http.Header) (map[string]string, map[string][]string) {
	single := make(map[string]string, len(h))
	multi := make(map[string][]string, len(h))
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		multi[k] = vs
		if len(vs) == 1 {
			single[k] = vs[0]
		}
	}
	return single, multi
}

// joinHeaders returns the headers of a 2.0 response, repeated ones joined
// with commas, and the Set-Cookie values, which go in the cookies array.
func joinHeaders(h http.Header) (map[string]string, []string) {
	out := make(map[string]string, len(h))
	cookies := []string{} // [] rather than null, which some consumers reject
	for k, vs := range h {
		switch {
		case len(vs) == 0:
		case k == "Set-Cookie":
			cookies = vs
		default:
			out[k] = strings.Join(vs, ",")
		}
	}
	return out, cookies
}

// albHeaders returns the headers of an ALB response without multi-value
// headers: repeated ones joined with commas, except Set-Cookie, which cannot
// be joined and keeps its first value. Turn on multi-value headers on the
// target group to send several cookies.
func albHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		switch {
		case len(vs) == 0:
		case k == "Set-Cookie":
			out[k] = vs[0]
		default:
			out[k] = strings.Join(vs, ",")
		}
	}
	return out
}

// statusDescription is the ALB's status line text, such as "200 OK".
func statusDescription(code int) string {
	if text := http.StatusText(code); text != "" {
		return strconv.Itoa(code) + " " + text
	}
	return strconv.Itoa(code)
}
