// Package e2e holds the cross-package tests of the module.
//
// The real `stairhook serve` binary on its queued path, the durable inbox
// (inbox_test.go): a Jira that answers after 12 s, a Jira outage, kill -9
// during a run, two instances on one Postgres, the database gone, a 429
// with Retry-After; with the Jira test server, Mailpit and the SMTP test
// server (serve_e2e_test.go also runs serve end to end, and stops it with
// SIGTERM in both modes). A soak test behind the build tag soak
// (soak_test.go) drives serve on the queued path and reports the rates at
// which it accepts and delivers events, and its peak RSS.
//
// The real binary's edges too: 200 connections stalling their bodies one
// byte short of 1 MiB against serve and examples/nethttp, bounding the
// RSS and the time to close them (slowbody_test.go); one serve forwarding
// to another, signed with the hop's secret (forward_test.go); and the
// operator console in Chromium (console_browser_test.go: logging in, an
// event's sinks turning delivered, a dead letter replayed, a test
// notification; hostile content rendered inert under the CSP; every admin
// route behind the token and CSRF; no secret, MAC or signature on any page;
// 375 px wide), its screenshot behind STAIRHOOK_SCREENSHOT=1.
//
// The receiver in this process, in inline mode (the sinks inside the
// request, as the AWS Lambda bootstrap runs it) with the memory store or
// Redis: the sender under injected sink faults (faults_test.go). Both
// modes: the leak checks over every failure path of the middleware, the
// receiver and the CLI (leak_test.go), and every size and count bound one
// past its limit (bounds_test.go). It has no code of its own.
//
// Run them with
//
//	go test ./internal/e2e
//	STAIRHOOK_SOAK_N=300 go test -tags soak -run Soak ./internal/e2e
//
// Tests that need redis-server, mailpit, Postgres or the ADF JSON Schema
// (STAIRHOOK_ADF_SCHEMA) skip when it is missing, and fail instead when
// STAIRHOOK_E2E is set.
package e2e
