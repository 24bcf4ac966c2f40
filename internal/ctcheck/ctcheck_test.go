// Package ctcheck holds a static check over the module's sources: every
// comparison of secret-derived bytes must go through hmac.Equal or
// subtle.ConstantTimeCompare, never ==, !=, bytes.Equal, bytes.Compare,
// strings.EqualFold or string comparison, whose running time leaks how many
// leading bytes matched.
package ctcheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// secretish matches identifiers that hold MACs, signatures, digests or keys.
var secretish = regexp.MustCompile(`(?i)(mac|sig|signature|digest|hmac|secret|key|token|sum)`)

// allowed lists comparisons that look secret-derived by name but are not:
// file:identifier pairs, with the reason.
var allowed = map[string]string{
	"verify/store.go:token": "reservation tokens are per-store counters, not secrets",
	"verify/store.go:Token": "reservation tokens are per-store counters, not secrets",
	// verifytest's store contract compares the reservations a store under
	// test returned, in a test: nothing there is a secret.
	"verify/verifytest/store.go:Token": "a store under test's reservation tokens, compared by its contract test",
	"verify/verifytest/store.go:Key":   "a store under test's reservation keys (event ids), compared by its contract test",
	"verify/verifytest/store.go:key":   "a store under test's reservation keys (event ids), compared by its contract test",
}

// moduleRoot walks up from the package folder to go.mod.
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

func TestSecretComparisonsAreConstantTime(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	var checked int
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", "node_modules", ".git", "bench":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		checked++
		rel, _ := filepath.Rel(root, path)
		for _, msg := range inspect(fset, f, rel) {
			t.Error(msg)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("only %d source files checked; the walk is broken", checked)
	}
}

// inspect returns one message per variable-time comparison of what looks
// like secret-derived bytes in f: ==, != or bytes.Equal-like calls on
// identifiers named like MACs, signatures, digests or keys, and, in a file
// that imports crypto/hmac or crypto/sha256, any bytes.Equal or
// bytes.Compare at all (whatever the names: got, want, expected…).
func inspect(fset *token.FileSet, f *ast.File, rel string) []string {
	crypto := false
	for _, imp := range f.Imports {
		switch strings.Trim(imp.Path.Value, `"`) {
		case "crypto/hmac", "crypto/sha256":
			crypto = true
		}
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BinaryExpr:
			if n.Op != token.EQL && n.Op != token.NEQ {
				return true
			}
			for _, side := range []ast.Expr{n.X, n.Y} {
				if name, ok := suspicious(side); ok && !isAllowed(rel, name) && !comparesToLiteral(n) {
					out = append(out, fmt.Sprintf("%s: %s compared with %s; use hmac.Equal or subtle.ConstantTimeCompare", fset.Position(n.Pos()), name, n.Op))
				}
			}
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			fn := pkg.Name + "." + sel.Sel.Name
			switch fn {
			case "bytes.Equal", "bytes.Compare":
				if crypto {
					out = append(out, fmt.Sprintf("%s: %s in a file that computes MACs or digests; use hmac.Equal", fset.Position(n.Pos()), fn))
					return true
				}
			case "strings.EqualFold", "strings.Compare":
			default:
				return true
			}
			for _, arg := range n.Args {
				if name, ok := suspicious(arg); ok && !isAllowed(rel, name) {
					out = append(out, fmt.Sprintf("%s: %s passed to %s; use hmac.Equal or subtle.ConstantTimeCompare", fset.Position(n.Pos()), name, fn))
				}
			}
		}
		return true
	})
	return out
}

// suspicious reports the identifier of e when its name suggests secret
// material: a plain identifier, a field selector, or a slice or index of one.
func suspicious(e ast.Expr) (string, bool) {
	for {
		switch x := e.(type) {
		case *ast.SliceExpr:
			e = x.X
			continue
		case *ast.IndexExpr:
			e = x.X
			continue
		case *ast.ParenExpr:
			e = x.X
			continue
		case *ast.CallExpr:
			// string(mac) and similar conversions.
			if len(x.Args) == 1 {
				if id, ok := x.Fun.(*ast.Ident); ok && (id.Name == "string" || id.Name == "[]byte") {
					e = x.Args[0]
					continue
				}
			}
			return "", false
		case *ast.Ident:
			return x.Name, secretish.MatchString(x.Name) && !benign(x.Name)
		case *ast.SelectorExpr:
			return x.Sel.Name, secretish.MatchString(x.Sel.Name) && !benign(x.Sel.Name)
		default:
			return "", false
		}
	}
}

// benign names match the pattern but never hold secret bytes: counts,
// lengths, header names and flags.
func benign(name string) bool {
	l := strings.ToLower(name)
	for _, s := range []string{"len", "count", "n", "name", "header", "ok", "err", "key" + "label", "label", "keys", "monkey", "keyword"} {
		if l == s {
			return true
		}
	}
	for _, prefix := range []string{"max", "min", "default"} {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	for _, suffix := range []string{"label", "len", "count", "name", "header", "state", "kind", "scheme", "missing", "path", "env", "id", "ids", "file", "format", "summary"} {
		if strings.HasSuffix(l, suffix) {
			return true
		}
	}
	return false
}

// comparesToLiteral is true for comparisons with nil, a number or a string
// literal: checks of presence or shape, not of content.
func comparesToLiteral(b *ast.BinaryExpr) bool {
	for _, side := range []ast.Expr{b.X, b.Y} {
		switch x := side.(type) {
		case *ast.BasicLit:
			return true
		case *ast.Ident:
			if x.Name == "nil" || x.Name == "true" || x.Name == "false" {
				return true
			}
		}
	}
	return false
}

func isAllowed(file, name string) bool {
	_, ok := allowed[file+":"+name]
	return ok
}

// TestCheckerCatchesVariableTimeComparisons runs the same inspection on
// samples, proving the check is not vacuous.
func TestCheckerCatchesVariableTimeComparisons(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want int
	}{
		{"names", `package p
import "bytes"
func f(mac, got []byte, sig string, want string) bool {
	if bytes.Equal(mac, got) { return true }
	if sig == want { return true }
	return string(mac[:4]) != "abcd" // a shape check against a literal: not flagged
}`, 2},
		{"any bytes.Equal beside crypto", `package p
import ("bytes"; "crypto/hmac"; "crypto/sha256")
func f(key, body, got []byte) bool {
	h := hmac.New(sha256.New, key)
	h.Write(body)
	want := h.Sum(nil)
	return bytes.Equal(got, want)
}`, 1},
		{"constant time is fine", `package p
import ("crypto/hmac"; "crypto/subtle")
func f(mac, sig []byte) bool { return hmac.Equal(mac, sig) || subtle.ConstantTimeCompare(mac, sig) == 1 }`, 0},
		{"lengths and labels are fine", `package p
func f(sig []byte, keyLabel, label string, maxSigLen int) bool { return len(sig) == maxSigLen && keyLabel == label }`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "p.go", tc.src, 0)
			if err != nil {
				t.Fatal(err)
			}
			got := inspect(fset, f, "p.go")
			if len(got) != tc.want {
				t.Fatalf("found %d comparisons, want %d: %q", len(got), tc.want, got)
			}
		})
	}
}
