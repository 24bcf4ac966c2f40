//go:build unix

package dryrun

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwnerAndMode refuses a folder that another user owns, or that group
// or others may write to: either could read or replace the dry run's
// files.
func checkOwnerAndMode(path string, st fs.FileInfo) error {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		if uid := os.Geteuid(); int64(sys.Uid) != int64(uid) {
			return fmt.Errorf("%w: %s belongs to uid %d, not to this process's user (uid %d): choose a folder of this user's, or chown it", ErrUnsafeOutbox, path, sys.Uid, uid)
		}
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%w: %s is writable by group or others (mode %#o): chmod go-w it, or choose another folder", ErrUnsafeOutbox, path, perm)
	}
	return nil
}
