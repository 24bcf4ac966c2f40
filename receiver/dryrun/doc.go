// Package dryrun holds the sinks that stand in for Jira and SMTP when the
// configuration has no jira or smtp section: they write the exact request
// body and the exact MIME message that would be sent into the outbox
// folder, one file per event and sink, replaced on redelivery:
//
//	<outbox>/jira/<event id>-<sink>.json
//	<outbox>/email/<event id>-<sink>.eml
//
// [NewJira] and [NewEmail] build them from the same route settings as
// jira.New and email.New, through the builders of those packages, so a dry
// run shows what the real sink would do. Both parts of a file name are
// reduced to [A-Za-z0-9._-] (with a hash when that changed them), so no
// event id can name a file outside the folder.
//
// # Security
//
// The files hold customer data: the folders are created 0700 and the files
// 0600, each written to a temporary file and renamed, so a reader never
// sees half of one.
package dryrun
