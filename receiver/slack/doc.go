// Package slack is the Slack sink: one Block Kit message per event, posted
// with github.com/slack-go/slack through an incoming webhook or with a bot
// token (chat.postMessage).
//
// [New] builds the sink of one route from the workspace's [Config] and the
// route's [Route]. [NewMessageBuilder] makes the exact message for an
// event, whose JSON ([MessageBuilder.Build]) the dry run (package dryrun)
// writes instead of posting; it pastes into Slack's Block Kit Builder.
// [Config.Check], [Config.CheckRoute] and [Route.Check] report every
// problem of the settings, each under its config path.
//
// A message has a header (the title and the severity, [TEST] for a test
// event), the account linked to its Staircase page, its facts (severity,
// type, sentiment, category, status, detection time), the body (the
// summary by default), one section per person and a context line with the
// event id. It keeps within Slack's limits: 50 blocks, 3,000 characters in
// a section's text, 2,000 in a field, 150 in the header, 255 in a link's
// URL (a longer URL is left out, never cut) and 12,000 in all, beyond
// which Slack answers msg_blocks_too_long. Past them people are left out
// first, then the body is cut, and a note says so. Text is cut between
// code points and between escapes, never inside one.
//
// Errors follow package sink. A 429 is [ErrRateLimited]: with Retry-After
// it is a *sink.RetryAfterError for the queue to wait exactly that long.
// 5xx answers, 408, timeouts, network failures and Slack's internal_error
// are [ErrUnavailable], transient. Errors a retry cannot fix are
// [ErrRejected] and permanent, naming Slack's reason: channel_not_found,
// not_in_channel, is_archived, invalid_auth, token_revoked, missing_scope,
// a deleted webhook (no_service, invalid_token, channel_is_archived), a
// refused message (invalid_blocks, msg_too_long) and the others listed in
// permanentCodes, every other 4xx, and a redirect, which is never
// followed. An error code Slack adds later is transient until then.
//
// # Security
//
// Payload text never becomes markup: &, < and > are escaped wherever it
// lands (so it cannot open a link, a mention such as <!channel> or
// <!here>, or a date), mrkdwn text is sent verbatim (so Slack does not
// link or mention plain text), "@channel", "@here" and "@everyone" get an
// invisible word joiner after the "@", and control and format characters
// (such as the U+202E override) are dropped. A route's Text template
// writes markup of its own; the event's strings reach it escaped. Only
// https links are made.
//
// The incoming webhook URL and the token are secrets: neither is logged,
// and no error holds them (an error names the webhook's host only, and a
// net/http error naming the URL is rebuilt without it). Slack's answers are
// read up to 64 KiB, and only an error code of Slack's shape is quoted
// from them.
package slack
