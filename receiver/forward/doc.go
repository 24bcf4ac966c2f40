// Package forward is the signed HTTP forwarding sink: each event is posted,
// byte for byte as it was received, to a URL of the route's choosing (an
// automation tool, an internal service, another stairhook), signed afresh
// with that destination's own secret, so the next hop verifies it with
// package verify or any Standard Webhooks library.
//
// [New] builds the sink of one route from its [Route]; [Route.Check]
// reports every problem of the settings, each under its config path.
//
// Each Deliver is one POST of [event.Event.Raw] with Content-Type
// application/json, the event id as Idempotency-Key, the route's extra
// headers, and the signature (SPEC.md, section 3) over the event id, the
// current time and those bytes: in x-staircase-id, x-staircase-timestamp
// and x-staircase-signature, or with Route.Headers "standard" in
// webhook-id, webhook-timestamp and webhook-signature. The id is the
// event's own, so the destination can drop a redelivery; the timestamp is
// taken again on every attempt, so a retry hours later is still within
// the destination's tolerance.
//
// Errors follow package sink: 2xx is done; 408, 409, 429, 5xx and
// failures to connect or to get an answer are transient, a 429 or 503
// with Retry-After waiting that long; a 3xx and every other status are
// permanent. The var block lists the sentinels.
//
// # Security
//
// The route's URL must be https (http only for a loopback destination). A
// redirect is never followed. A response body is read up to 64 KiB and
// never logged; an error quotes at most its first 256 bytes, made one
// line, with the secret, this request's signature, the URL's password and
// the Basic authorization made of it, query values and extra header
// values replaced by "[redacted]". Errors and logs show the URL with its
// password and query replaced (URL.Redacted, then "?redacted"), never the
// secret nor an extra header's value.
package forward
