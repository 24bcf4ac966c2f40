// Package dryrun holds the sinks that stand in for Jira, SMTP, Slack and
// Teams when the configuration has no jira, smtp, slack or teams section:
// they write the exact request body, MIME message or chat payload that
// would be sent into the outbox folder, one file per event and sink,
// replaced on redelivery:
//
//	<outbox>/jira/<event id>-<sink>.json
//	<outbox>/email/<event id>-<sink>.eml
//	<outbox>/slack/<event id>-<sink>.json
//	<outbox>/teams/<event id>-<sink>.json
//
// [NewJira], [NewEmail], [NewSlack] and [NewTeams] build them from the same
// route settings as the real sinks, through the builders of those
// packages, so a dry run shows what the real sink would do. Both parts of a file name are
// reduced to [A-Za-z0-9._-], the event id without "-" (each with a hash
// when that changed it), so no event id can name a file outside the
// folder, and the first "-" ends the event id: the sinks of two webhooks,
// whose names start with the webhook's, never share a file.
//
// # Security
//
// The files hold customer data: the folders are created 0700 and the files
// 0600, each written to a temporary file and renamed, so a reader never
// sees half of one. [CheckOutbox] refuses, with [ErrUnsafeOutbox], an
// outbox that another user owns or that group or others may write to, and
// kind folders that are symbolic links: the sinks check when
// they are built and again at every delivery, on the folders they open.
// Below the outbox no symbolic link is followed (the folders are opened
// relative to it, with os.Root, and checked to be the ones Lstat saw). What
// remains: the outbox path itself is resolved at each delivery, so a user
// who can write to a folder above it can point it at another folder of
// this user's; keep the folders above the outbox unwritable by others.
package dryrun
