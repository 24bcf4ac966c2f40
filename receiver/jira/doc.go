// Package jira is the Jira Cloud sink: one issue per event, created through
// the REST API v3 with an Atlassian Document Format description.
//
// [New] builds the sink of one route from the site's [Config] and the
// route's [Route]. Its Deliver searches the route's project for the event's
// label, stairhook-<the first 32 hex digits of SHA-256 over the webhook's
// name, a zero byte and the event id>, and creates the issue when none has
// it: a redelivery, or another route of the webhook into the same
// project, finds the issue instead of making a second one. Issues made
// before the label named the webhook carry stairhook-<the first 16 hex
// digits of SHA-256 over the event id>; the sink looks for that label too
// while the event is at most [LegacyLabelWindow] old, and never creates
// it. Whether it found the issue or created it, Deliver notes the issue's
// key and page for the receiver's console (see sink.Note).
// [NewIssueBuilder] makes the exact create-issue request for an event, which
// the dry run (package dryrun) writes instead of sending. [Config.Check] and
// [Route.Check] report every problem of the settings, each under its
// config path.
//
// Errors follow package sink. Within one Deliver, 429 and 503 are retried
// (honouring Retry-After or X-RateLimit-Reset), and so is every other
// transient failure of the search, which changes nothing; a delay that
// would pass the attempt's deadline comes back as a *sink.RetryAfterError.
// 408, 409, other 5xx and network failures of the create are transient,
// left to the next attempt; a redirect and every other 4xx are permanent.
//
// # Security
//
// The API token travels in every request: Config.BaseURL must be https
// (http only for a loopback test server) without a user name or password,
// a redirect is never followed, and the token is removed from any error
// text the API sends back.
//
// The label names the webhook the request was authenticated for (its
// path), so a sender holding another webhook's secret cannot post an event
// id first and have the real event's delivery find its issue. The summary
// and the one-line fields of the description lose NUL and Unicode format
// characters such as the bidi controls, so they cannot read backwards.
package jira
