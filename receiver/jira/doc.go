// Package jira is the Jira Cloud sink: one issue per event, created through
// the REST API v3 with an Atlassian Document Format description.
//
// [New] builds the sink of one route from the site's [Config] and the
// route's [Route]. Its Deliver searches the route's project for the event's
// label, stairhook-<the first 16 hex digits of SHA-256 over the event id>,
// and creates the issue when none has it: a redelivery, or another route
// into the same project, finds the issue instead of making a second one.
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
// (http only for a loopback test server), a redirect is never followed, and
// the token is removed from any error text the API sends back.
package jira
