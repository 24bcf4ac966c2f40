package dryrun_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/stairhook/stairhook/receiver/dryrun"
)

// A program that builds dry-run sinks can check the outbox first, to refuse
// at start a folder other users could read or replace files in.
func ExampleCheckOutbox() {
	outbox, err := os.MkdirTemp("", "outbox")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(outbox)
	fmt.Println(dryrun.CheckOutbox(outbox))

	_ = os.Chmod(outbox, 0o777) // writable by everyone
	err = dryrun.CheckOutbox(outbox)
	fmt.Println(errors.Is(err, dryrun.ErrUnsafeOutbox))
	// Output:
	// <nil>
	// true
}
