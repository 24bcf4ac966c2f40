// Package receiver turns signed Staircase webhooks into Jira issues, emails
// and calls to sinks of your own: the reference receiver that `stairhook
// serve` runs.
//
// For most uses, load a configuration with [LoadConfig] (or build one with
// [DefaultConfig]), create a [Server] with [NewServer] and run
// [Server.ListenAndServe]. Each webhook of the configuration is served at
// POST /webhooks/{name} behind the verify middleware with its own keyring;
// GET /healthz answers 200 while the database (or, in inline mode, the id
// store) answers, and 503 store_unavailable otherwise.
//
// The path of one signal, and where each step lives:
//
//	POST /webhooks/{name}
//	  → verify.Middleware      body cap, signature, replay window, the id reserved
//	  → accept (this package)  decode (package event), match routes,
//	                           one transaction: the event + one job per sink (package queue)
//	  → 202 {"status":"queued","id":…,"sinks":[…]}
//	  … a worker (package queue, River)
//	  → Sink.Deliver           package jira, email or dryrun, or a sink of your own
//	                           (the contract and its errors: package sink)
//	  → done | retry | wait | dead
//
// # Delivery
//
// For each request the server
//   - verifies the signature and holds the signed id while the request
//     runs (verify.Middleware: a copy of an id being accepted is answered
//     409);
//   - decodes the event (400 invalid_event) and checks that its id is the
//     signed one (400 id_mismatch);
//   - records the event and one job per sink of every route whose [Match]
//     selects it (each sink once), in one transaction, and answers 202
//     {"status":"queued","id":…,"sinks":[…]} once that is durable. An
//     event no route selects is recorded too, with no jobs. An event
//     already recorded (by webhook and id, whichever instance recorded it)
//     is a redelivery: 200 with X-Stairhook-Duplicate: true, and nothing
//     runs. When the
//     database fails the answer is 503 store_unavailable with Retry-After,
//     and nothing of the event is kept: the sender retries.
//
// Workers (in the same process by default; see [ServerOptions.Role]) then
// run each job: one attempt of one sink, bounded by
// [DeliveryConfig.AttemptTimeout]. Success ends the job. A transient
// failure (any error a sink returns unmarked: network, timeout, 5xx, 408,
// 429) is retried after [DeliveryConfig.FirstRetry], doubling up to
// [DeliveryConfig.MaxRetry], with jitter; a [*RetryAfterError] (Jira's
// Retry-After or X-RateLimit-Reset) makes the job wait exactly that long,
// and the wait is not an attempt. A [Permanent] failure (a 4xx other than
// 408, 409 and 429, a template error, an address the SMTP server refuses)
// makes the job a dead letter at once; so does a job still failing
// [DeliveryConfig.GiveUpAfter] after it was queued. Dead letters stay in
// the database until `stairhook deadletter replay` queues them again. A
// request whose sink fails permanently is still an accepted event: a
// replay of it is a duplicate and runs nothing.
//
// The semantics, stated once: delivery to each sink is at least once. A
// job runs until its sink reports success; a process that dies between a
// sink's success and the record of it leaves the job to run again (River
// rescues it about a minute after its attempt could have timed out). The
// Jira sink makes that effectively once: it finds the issue of an earlier
// attempt by its label before creating one. The dry-run sinks overwrite
// their file. The email sink cannot: a crash in the window between the
// SMTP server's acceptance of a message and the job's record (milliseconds)
// sends it again on the next attempt, with the same Message-ID, which lets
// a mailbox or a filter drop the copy. There is no ordering: events, and
// the sinks of one event, are delivered in whatever order their attempts
// succeed. At most one attempt of an (event, sink) runs at a time across
// every instance sharing a database.
//
// The Jira sink marks each issue with the label stairhook-<first 16 hex
// digits of SHA-256 over the event id> and, before creating one, searches
// the route's project for it: routes (of any webhook) that send one event
// into the same project share one issue, routes into different projects
// each get their own, and renaming or reordering routes cannot make a
// redelivery create a second issue. It never follows a redirect: a 3xx
// answer is a permanent failure.
//
// Sink names are "<webhook>.<route>.<jira|email>", route being the route's
// name or route1, route2, … by position. A route naming jira or email while
// the configuration has no jira or smtp section uses a dry-run sink that
// writes the exact request or message into the outbox. A job's sink is
// found by name when it runs: keep names stable across restarts, since a
// job whose sink is gone becomes a dead letter.
//
// # The database
//
// One database holds everything the server remembers: the accepted events
// (webhook, id, type, account, received time, the verified key's label,
// the raw body), which are also the record of the signed ids, River's jobs
// with their attempts and errors, and the dead letters. SQLite
// (Config.Store.SQLite, ./stairhook.db by default, created with mode 0600)
// serves one instance; Postgres (Config.Store.Postgres) serves several,
// which share the ids, the events and the work, each in the role it is
// given. The schema is brought up to date at start, safely when several
// instances start at once (`stairhook migrate` does it ahead of a deploy).
// A dead-letter file of an earlier version (<outbox>/deadletter.jsonl) is
// imported at start, once, and renamed deadletter.jsonl.imported.
//
// # Inline mode
//
// [ServerOptions.Inline] keeps the earlier, synchronous delivery for the
// AWS Lambda bootstrap, which has no process to work a queue: the sinks run
// inside the request, sharing [ServerOptions.DeliveryTimeout]; the answer
// is 200 when all succeeded, 503 with Retry-After when one failed
// transiently (the sender retries; sinks that succeeded are recorded and
// skipped), and 422 when one rejected the event, after appending a
// [DeadLetter] to <outbox>/deadletter.jsonl. The ids and the record of done
// sinks live in Config.Store.Redis or, without it, in two bounded in-memory
// stores that a restart forgets (see [Config.Retention]).
//
// # Sinks of your own
//
// To send events elsewhere (a chat, a pager, a queue), implement [Sink]
// (package sink, which imports nothing of the receiver's but package
// event), give it to [NewServer] in [ServerOptions.Sinks] and list its Name
// under a route's sinks ([RouteConfig.Sinks]). It gets the same treatment
// as the built-in sinks of packages jira, email and dryrun: a job per
// event, retried or dead-lettered by its errors (see [Sink] for the
// contract).
//
// # Security
//
// Nothing reaches a sink before the signature verified, and nothing is
// acknowledged before it is durable. Requests are bounded: the middleware
// caps the body (1 MiB), event.Decode caps nesting depth, string lengths
// and the number of people, and each attempt has its timeout. The
// database fails closed: when it cannot be written the answer is 503,
// never an acknowledgement without a record. Secrets, signatures and
// computed MACs never appear in responses, log lines or errors;
// configuration errors name the field, not its value (template parse
// errors quote the template), and a Postgres URL is shown without its
// password.
//
// # Compatibility
//
// Unknown event types and fields are accepted, routed and kept. The
// response bodies' "error.code" values (invalid_event, id_mismatch,
// store_unavailable, shutting_down, not_accepting,
// not_found, method_not_allowed, besides the middleware's; in inline mode
// also sink_unavailable, store_full, sink_rejected and
// dead_letter_unavailable), the job kind "stairhook_delivery" with its
// arguments, and the dead-letter format are stable.
package receiver
