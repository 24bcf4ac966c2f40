package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/stairhook/stairhook/verify"
)

// runSecret implements "stairhook secret new".
func runSecret(_ context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] != "new" {
		fs := newFlagSet("secret", "secret new [--json]", secretHelp)
		switch {
		case len(args) == 0:
		case strings.HasPrefix(args[0], "-"):
			if code, ok := parseFlags(e, fs, args); !ok {
				return code
			}
		default:
			return unknownSubcommand(e, fs, args[0], "new")
		}
		return usageError(e, fs, `missing subcommand: "new"`)
	}
	fs := newFlagSet("secret new", "secret new [--json]", secretHelp)
	asJSON := fs.Bool("json", false, `print {"secret": …, "sha256": …} where sha256 is the hex SHA-256 of the secret text (the legacy digest mode)`)
	if code, ok := parseFlags(e, fs, args[1:]); !ok {
		return code
	}
	sec, err := verify.NewSecret()
	if err != nil {
		return failf(e, "secret new", "%v", err)
	}
	if !*asJSON {
		fmt.Fprintln(e.stdout, sec.Encode())
		return exitOK
	}
	d := sec.Digest()
	out, _ := json.Marshal(struct {
		Secret string `json:"secret"`
		SHA256 string `json:"sha256"`
	}{sec.Encode(), hex.EncodeToString(d[:])})
	fmt.Fprintf(e.stdout, "%s\n", out)
	return exitOK
}

const secretHelp = `Print a fresh webhook secret: whsec_ and the base64 of 32 random bytes.
Give it to the sender once and keep it in the receiver's configuration.`
