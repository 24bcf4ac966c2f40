// Package teams is the Microsoft Teams sink: one Adaptive Card per event,
// posted to a Teams workflow (Workflows / Power Automate, "When a Teams
// webhook request is received"), which shows it in its channel or chat.
//
// [New] builds the sink of one route from the [Config] and the route's
// [Route], whose webhook URL, when set, replaces the configured one.
// [NewMessageBuilder] makes the exact JSON for an event
// ([MessageBuilder.Build]), which the dry run (package dryrun) writes
// instead of posting. [Config.Check], [Config.CheckRoute] and
// [Route.Check] report every problem of the settings, each under its
// config path.
//
// The JSON is the envelope a workflow takes,
// {"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":{…}}]},
// around an Adaptive Card of version 1.5 with the same content as the
// Slack message: the title and severity ([TEST] and a notice for a test
// event), the account linked to its Staircase page, the facts, the
// summary, the people and the event id, and an "Open in Staircase"
// button. A message is at most 28 KB: past it people are left out first,
// then the summary is cut between code points, and a note says so.
//
// Errors follow package sink. A 2xx answer is done. A 429 is
// [ErrRateLimited], with Retry-After a *sink.RetryAfterError for the
// queue to wait exactly that long; 5xx, 408, timeouts and network
// failures are [ErrUnavailable], transient (a 503 with Retry-After is
// waited for too). Every other answer, a redirect included (never
// followed), is [ErrRejected] and permanent, naming the status and the
// workflow's error code.
//
// # Security
//
// Payload text is put only in TextRuns, which Adaptive Cards show as
// written, never as markdown: it cannot format, link or mention. One-line
// values lose control and format characters (render.OneLine), the summary
// its control characters and bidi overrides, and links are https only.
// The workflow URL is a secret (its sig parameter signs it): it is never
// logged, and no error holds it, nor any part of its path or query (an
// error names its host only, and a net/http error naming the URL is
// rebuilt without it). Answers are read up to 64 KiB.
package teams
