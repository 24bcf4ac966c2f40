// Package queue is the receiver's durable inbox: one database (SQLite by
// default, Postgres for several instances) holding the accepted events,
// one River job per (event, sink), the signed ids of the verify
// middleware, and the dead letters.
//
// [Open] opens the database and brings its schema up to date (River's
// migrations and ours, safe when several instances start at once).
// [Queue.Accept] records an event and queues its jobs in one transaction;
// [Queue.Start] runs the workers, which call [Options.Work] for each job
// and act on its [Result]: done, retried with backoff (FirstRetry,
// doubling, up to MaxRetry, with jitter), a wait the destination asked for
// (River snoozes the job: not an attempt), or dead — at once for a
// permanent failure, or once GiveUpAfter has passed. [Queue.DeadLetters]
// streams the dead letters; [Queue.Replay] and [Queue.ReplayAll] queue
// them again.
//
// The package knows neither the sinks nor the HTTP side: the receiver
// gives it a WorkFunc. River gives it retries, snoozing, the rescue of
// jobs whose process died (about a minute after the attempt could have
// timed out), leader election for that maintenance across instances, and
// the clean-up of finished jobs (a day after they succeed; dead letters
// stay until replayed).
//
// # Delivery semantics
//
// At least once per (event, sink): a job runs until a sink reports
// success, and a process that dies between the sink's success and the
// job's record leaves the job to be worked again. At most one attempt of
// a job runs at a time across every instance (River locks the job row for
// its attempt). Jobs carry no order: two events are delivered in whatever
// order their attempts succeed.
package queue
