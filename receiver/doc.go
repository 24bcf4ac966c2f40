// Package receiver turns signed Staircase webhooks into Jira issues, emails
// and calls to sinks of your own: the reference receiver that `stairhook
// serve` runs.
//
// For most uses, load a configuration with [LoadConfig] (or build one with
// [DefaultConfig]), create a [Server] with [NewServer] and run
// [Server.ListenAndServe]. Each webhook of the configuration is served at
// POST /webhooks/{name} behind the verify middleware with its own keyring;
// GET /healthz answers 200 while the id store answers (503
// store_unavailable otherwise) and, in memory, has room for a new id (503
// store_full otherwise). Use it for readiness rather than liveness: a
// restart forgets an in-memory store (see Memory store). [event.Decode] and
// [event.Sample] are usable on their own.
//
// # Delivery
//
// Processing is synchronous. For each request the server
//   - verifies the signature and reserves the signed id (verify.Middleware:
//     a duplicate of a delivered event is answered 200 with
//     X-Stairhook-Duplicate: true, one in flight 409);
//   - decodes the event (400 invalid_event) and checks that its id is the
//     signed one (400 id_mismatch);
//   - runs the sinks of every route whose [Match] selects the event, in
//     order, each sink once (200 {"status":"ignored"} when none does). A sink that already
//     succeeded for this event id is skipped: the record, kept for
//     [Config.Retention] under the key "sink/<webhook>/<event id>/<sink name>", lives
//     in the same store as the ids with Redis, and in memory by default
//     (see Memory store below);
//   - answers 200 when every sink succeeded now or before; 503 with
//     Retry-After when any failed transiently or the store failed, so the
//     sender retries and only the failed sinks run again; otherwise 422
//     when a sink rejected the event permanently, after appending one
//     [DeadLetter] per rejecting sink to <outbox>/deadletter.jsonl (if that
//     write fails, 503: the event is never dropped). The 422 names the sink
//     and a reason class derived from the error's type, such as
//     "jira 400", "smtp 550" or "template" ("unclassified" for a sink of
//     your own), never the destination's text.
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
// writes the exact request or message into the outbox.
//
// # Sinks of your own
//
// To send events elsewhere (a chat, a pager, a queue), implement [Sink],
// give it to [NewServer] in [ServerOptions.Sinks] and list its Name under
// a route's sinks ([RouteConfig.Sinks]); it runs after the route's jira and
// email. It gets the same treatment as the built-in sinks: its success is
// recorded under its Name, so it runs once per event id even when several
// routes or webhooks select the event, and its failures are retried or
// dead-lettered (see [Sink] for the contract).
//
// # Memory store
//
// Without Redis, the ids and the records of done sinks are kept in the
// process, in two bounded stores. The ids (kept minutes) are never
// forgotten early: when their store is full, new events are answered 503
// and the sender retries later. The done sinks (kept [Config.Retention],
// days) forget the oldest record when their store is full, so new events
// are never refused for it; a very late redelivery or replay of an old
// event may then run a sink again. A restart forgets both: a dead-letter
// replay after a restart runs every sink of the event again (the Jira sink
// still finds its issue by its label, unless search lags behind; an email
// is sent again), and a redelivery of an event delivered before the
// restart is processed again. Redis keeps both across restarts and shares
// them between processes.
//
// # Security
//
// Nothing reaches a sink before the signature verified. Requests are
// bounded: the middleware caps the body (1 MiB), [event.Decode] caps nesting
// depth, string lengths and the number of people, and all sinks of one
// delivery share one deadline ([ServerOptions.DeliveryTimeout]). The store
// fails closed: when it cannot be read or written the answer is 503, never
// a delivery without its record. Secrets, signatures and computed MACs
// never appear in responses, log lines or errors; configuration errors name
// the field, not its value (template parse errors quote the template).
//
// # Compatibility
//
// Unknown event types and fields are accepted, routed and kept
// ([event.Event.Raw], [event.Event.Fields]). The response bodies' "error.code" values
// (invalid_event, id_mismatch, unknown_webhook, sink_unavailable,
// store_unavailable, store_full, sink_rejected, dead_letter_unavailable,
// not_found, method_not_allowed, besides the middleware's) and the
// dead-letter format are stable.
package receiver
