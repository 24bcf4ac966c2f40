// Package verify signs and verifies Staircase AI webhook requests.
//
// Receivers start with [FromSecrets] (or [NewVerifier], for options) and
// either call [Verifier.Verify] on the raw body and headers, or wrap their
// handler in [Verifier.Middleware], which also caps the body, answers
// failures with stable status codes and uses a [Store] to turn away replays
// and duplicate deliveries. Senders
// start with [NewSecret] (show [Secret.Encode] to the admin once) and
// [NewSigner]. The wire format is defined in SPEC.md at the root of the
// module and locked by the vectors in package testvectors.
//
// # Stores
//
// The [Store] of the Middleware records the ids it has seen. A
// [MemoryStore] keeps them in the process: enough for a single instance,
// but forgotten when it restarts. A [SQLStore] keeps them in a table of a
// SQLite database, which survives restarts, or of Postgres, which several
// instances share; package verify/redisstore keeps them in Redis. Checking
// a store of your own against the contract takes a call to
// verifytest.TestStore and one to verifytest.TestStoreWallClock.
//
// # Security
//
// Every comparison of secret-derived bytes is constant-time. No error, log
// line or response produced by this package contains a secret, a computed
// MAC or the signature value that was received; errors carry only safe
// hints. Verify works on the exact bytes received: never re-serialize a
// body before verifying it. The timestamp check is two-sided; replay
// protection inside the tolerance window needs a Store shared by every
// instance that receives the webhook. The legacy modes (AllowBodySignature,
// AllowSecretDigest) are off by default and weaker, as their documentation
// explains.
//
// # Compatibility
//
// Scheme v1 is the Standard Webhooks signing method carried in
// x-staircase-id, x-staircase-timestamp and x-staircase-signature; requests
// with the webhook-id, webhook-timestamp and webhook-signature headers of
// Standard Webhooks verify too. Entries of unknown versions are ignored, so
// a sender can add a future scheme beside v1 without breaking receivers.
// This package imports only the standard library.
package verify
