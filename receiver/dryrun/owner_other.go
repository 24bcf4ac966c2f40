//go:build !unix

package dryrun

import "io/fs"

// checkOwnerAndMode checks nothing where folders have no Unix owner and
// mode bits (Windows keeps access control lists): only the symbolic link
// checks of CheckOutbox apply there.
func checkOwnerAndMode(string, fs.FileInfo) error { return nil }
