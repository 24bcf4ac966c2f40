// Package sink is the contract between the receiver and a destination.
//
// Implement [Sink] (Name and Deliver) to send events somewhere of your own,
// and give it to receiver.NewServer in ServerOptions.Sinks; the built-in
// sinks of packages jira, email and dryrun implement it the same way.
// Deliver's error tells the queue what to do next: nil when the event was
// delivered, [Permanent](err) when a retry cannot help, a
// [*RetryAfterError] when the destination asked for a delay ([RetryAfter]
// reads it from the answer's Retry-After), any other error for a transient
// failure. [Classed] gives an error a short reason
// class that the server may show the sender; [ReasonClass] reads it back.
// [Note] tells the receiver what a delivery made (a Jira issue, a
// message's id), for its console.
//
// The package imports only the standard library and package event: a sink
// depends on neither the receiver nor its queue.
package sink
