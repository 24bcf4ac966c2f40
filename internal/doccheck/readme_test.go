// Package doccheck holds tests of the repository's documents: the Go code
// blocks of the READMEs must compile against the current API, as Example
// functions do.
package doccheck

import (
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// documents are the files whose ```go blocks are checked, from the
// repository root.
var documents = []string{
	"README.md",
	"examples/lambda/README.md",
	"examples/receiver/README.md",
}

// prelude wraps a code block that is a fragment (statements, not a file):
// every import a block may use (an unused one is a soft error, ignored)
// and the names a fragment takes as given.
const prelude = `package readme

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/mux"
	"github.com/stairhook/stairhook/lambda"
	"github.com/stairhook/stairhook/receiver"
	"github.com/stairhook/stairhook/receiver/event"
	"github.com/stairhook/stairhook/sender"
	"github.com/stairhook/stairhook/verify"
)

// Given by the surrounding text of a fragment.
var (
	ctx  context.Context
	url  string
	body []byte
)

func fragment() {
`

var goBlock = regexp.MustCompile("(?ms)^```go\n(.*?)^```")

func TestReadmeCodeCompiles(t *testing.T) {
	root := filepath.Join("..", "..")
	imp := exportImporter(t)
	checked := 0
	for _, doc := range documents {
		text, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goBlock.FindAllSubmatchIndex(text, -1) {
			code := string(text[m[2]:m[3]])
			line := 1 + strings.Count(string(text[:m[2]]), "\n")
			src, offset := code, 0
			if !strings.HasPrefix(strings.TrimSpace(code), "package ") {
				src = prelude + code + "\n}\n"
				offset = strings.Count(prelude, "\n")
			}
			for _, e := range typeCheck(src, imp) {
				t.Errorf("%s:%d: %s", doc, line+e.line-1-offset, e.msg)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no ```go block found: the pattern or the documents changed")
	}
}

// exportImporter returns an importer that reads the compiler's export
// data of every package the prelude imports, as `go list -export` builds
// it (from the build cache when nothing changed).
func exportImporter(t *testing.T) types.Importer {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "prelude.go", prelude+"}\n", parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}"}
	for _, is := range f.Imports {
		args = append(args, strings.Trim(is.Path.Value, `"`))
	}
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	exports := map[string]string{}
	for line := range strings.Lines(string(out)) {
		path, file, _ := strings.Cut(strings.TrimSpace(line), "\t")
		exports[path] = file
	}
	return importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok || file == "" {
			return nil, fmt.Errorf("no export data for %s: add it to the prelude's imports", path)
		}
		return os.Open(file)
	})
}

type codeError struct {
	line int
	msg  string
}

// typeCheck parses and type-checks src, returning its hard errors (an
// unused variable or import is a soft error: fragments leave some unused).
func typeCheck(src string, imp types.Importer) []codeError {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "block.go", src, parser.AllErrors)
	if err != nil {
		var list scanner.ErrorList
		if errors.As(err, &list) {
			errs := make([]codeError, 0, len(list))
			for _, e := range list {
				errs = append(errs, codeError{e.Pos.Line, e.Msg})
			}
			return errs
		}
		return []codeError{{1, err.Error()}}
	}
	var errs []codeError
	conf := types.Config{Importer: imp, Error: func(err error) {
		var te types.Error
		if errors.As(err, &te) && !te.Soft {
			errs = append(errs, codeError{te.Fset.Position(te.Pos).Line, te.Msg})
		}
	}}
	_, _ = conf.Check("readme", fset, []*ast.File{f}, nil)
	return errs
}
