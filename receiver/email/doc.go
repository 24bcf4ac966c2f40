// Package email is the SMTP sink: one message per event, with a text and
// an HTML part rendered from the route's templates.
//
// [New] builds the sink of one route from the mail server's [SMTPConfig]
// and the route's [Route]; its Deliver sends through the server with the
// configured TLS policy and authentication. [NewMessageBuilder] makes the
// exact message for an event, which the dry run (package dryrun) writes
// instead of sending. Every message of a sink for an event carries the
// same [MessageID], so a mailbox can drop the copy a redelivery sends;
// Deliver notes it for the receiver's console (see sink.Note).
// [SMTPConfig.Check] and [Route.Check] report every problem of the
// settings, each under its config path.
//
// Errors follow package sink: a 5xx reply, a certificate that does not
// verify, a server without STARTTLS under a policy that requires it and
// one offering no safe authentication are permanent; 4xx replies, refused
// or dropped connections and timeouts are transient. Each SMTP reply
// gives the error its reason class, such as "smtp 550".
//
// # Security
//
// The subject is the only header built from the payload, and it is made
// one line without NUL or Unicode format characters (U+202E and the other
// bidi controls, zero-width characters), so it cannot read backwards; the
// default parts do the same to every one-line value, and both parts lose
// NUL. The HTML part is an html/template, so every payload string is
// escaped for where it lands. STARTTLS is mandatory by default, and a
// password is never sent in clear unless the policy is "none".
package email
