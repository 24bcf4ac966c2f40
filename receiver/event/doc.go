// Package event is the Staircase AI signal as it arrives on the wire (the
// envelope in SPEC.md) and its bounded decoder. It imports only the
// standard library, so a handler behind verify.Middleware can decode what
// it received without pulling in the reference receiver.
//
// Start with [Decode]: it takes the verified body and returns an [*Event],
// or an error wrapping [ErrInvalid] (answer it 400). Switch on
// [Event.Type], comparing with the Type constants; unknown types are
// accepted, so keep a default branch. [Sample] returns a realistic body
// per documented type, for tests.
//
// # Security
//
// Decode bounds the work any body can cause on top of the middleware's
// body cap: nesting depth, string lengths and the number of people are
// capped, allocation is at most 64 bytes per byte of body, and an error
// never quotes the body.
//
// # Compatibility
//
// Unknown fields are kept ([Event.Raw], [Event.Fields]); each typed field
// is read from the exact key in its json tag only.
package event
