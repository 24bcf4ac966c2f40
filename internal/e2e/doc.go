// Package e2e holds the cross-package tests of the module: the receiver
// server driven by the sender under injected faults (faults_test.go), the
// leak checks over every failure path of the middleware, the receiver and
// the CLI (leak_test.go), every size and count bound one past its limit
// (bounds_test.go), the real `stairhook serve` binary against the Jira test
// server and Mailpit (serve_e2e_test.go), and a soak test behind the build
// tag soak (soak_test.go). It has no code of its own.
//
// Run them with
//
//	go test ./internal/e2e
//	STAIRHOOK_SOAK_N=300 go test -tags soak -run Soak ./internal/e2e
//
// Tests that need redis-server, mailpit or the ADF JSON Schema
// (STAIRHOOK_ADF_SCHEMA) skip when it is missing, and fail instead when
// STAIRHOOK_E2E is set.
package e2e
