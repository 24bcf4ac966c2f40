package testenv

import (
	"fmt"
	"os"
	"time"
)

// Snapshot describes what exists of paths: size and modification time by
// name. A TestMain compares one taken before m.Run with one taken after to
// catch a test that wrote where it must not, such as a default database
// in the package folder.
func Snapshot(paths ...string) map[string]string {
	out := map[string]string{}
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil {
			out[p] = fmt.Sprintf("%d bytes, %s", st.Size(), st.ModTime().Format(time.RFC3339Nano))
		}
	}
	return out
}
