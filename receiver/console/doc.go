// Package console is the receiver's operator console and its Prometheus
// metrics, served on the admin listener, apart from the webhooks.
//
// [New] builds the console over the receiver's database ([queue.Queue]):
// server-rendered pages (html/template, one layout, the stylesheet and
// script embedded, no build step, nothing from another site) that read
// through the queue's query functions, never its tables:
//
//   - / — the overview: events accepted, delivered, dead and refused in the
//     last hour and day, the queue's depth and oldest pending job, the
//     refused requests by reason, per webhook;
//   - /events — newest first, filtered by webhook, type, account, sink
//     state and time, or searched by id; /event — one event: the verified
//     facts, the signal, each sink's attempts with their errors (redacted),
//     what a sink noted of its delivery (a Jira issue, an email's
//     Message-ID), the body; "retry now" and "replay";
//   - /refused — the last refused requests, with the reason, a safe hint
//     and the names of the signature headers present;
//   - /dead — the dead letters: replay one, or all matching a filter;
//   - /keys — each key of each webhook: when it last verified a request, and
//     how many in the last 24 hours, so an old key can be retired;
//   - /test — a test notification: a sample signed with the webhook's
//     current key, sent to the public listener ([SendFunc]);
//   - /metrics — the registry given in [Options.Registry];
//   - /api/… — the data of each page as JSON, for scripts.
//
// Pages refresh themselves every few seconds with a small script, and read
// the same without it; they fit a 375 px wide screen.
//
// [NewMetrics] registers the stairhook_ metrics on a registry of the
// caller's and returns the [Metrics] the receiver calls from its accept
// and work paths.
//
// # Security
//
// Every route but /login and the two embedded files under /static/
// requires the admin token: a session cookie set by the login form
// (HttpOnly, SameSite=Strict, Secure over TLS, 12 hours), or
// Authorization: Bearer TOKEN. The token is compared in constant time;
// after a failed try an address waits 1 s, doubling with each further
// failure up to a minute (429 with Retry-After), in a bounded table.
// Every state-changing request needs the CSRF token of its session (form
// field csrf or header X-CSRF-Token; a script reads its own at
// /api/csrf), and a browser's cross-origin request is refused. Answers
// carry a strict Content-Security-Policy (nothing inline, nothing from
// elsewhere), X-Frame-Options: DENY, X-Content-Type-Options: nosniff,
// Referrer-Policy: no-referrer and Cache-Control: no-store.
//
// Everything an event says is escaped by html/template; a URL from an
// event is a link only when it is https. No page or answer holds a
// secret, a MAC or a signature value: the database never stores them (a
// refused request keeps the names of its signature headers only), and the
// errors, hints and answers the console shows are redacted of anything
// that looks like one, then clipped. Metric labels are bounded: names the
// configuration does not list are counted as "(other)".
package console
