package receiver

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// quoted matches the parts of a YAML parser message that quote something:
// the input (an anchor name, which could be a misplaced secret), or one of
// YAML's indicators (did not find expected ',' or ']'), which is shown.
var quoted = regexp.MustCompile("'[^']*'|\"[^\"]*\"|`[^`]*`")

// indicator is a quoted YAML indicator: one punctuation character.
var indicator = regexp.MustCompile(`^'[[:punct:]]'$`)

// yamlLine is the line number go.yaml.in/yaml/v3 puts before a message.
var yamlLine = regexp.MustCompile(`^line (\d+): `)

// parserProblems are the messages of yaml.v3's parser, as opposed to its
// scanner. For these it reports the line 0-based (the line where the
// construct being parsed starts, such as the "[" of a sequence never
// closed, or where the problem is when that construct starts on line 1),
// and no line at all for line 1: yamlSyntax adds one. Scanner messages
// have the right line.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
}

// yamlSyntax keeps the line and the kind of a YAML syntax error in data,
// with the line counted from 1 as an editor does and YAML's indicators
// shown, but without the input text the parser may quote.
func yamlSyntax(err error, data []byte) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line, problem := 0, msg
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		problem = msg[len(m[0]):]
	}
	if parserProblems[problem] {
		// A construct left open at the end is found at the end of the
		// stream, past the last line: name the last line.
		lines := bytes.Count(data, []byte("\n"))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			lines++
		}
		msg = "line " + strconv.Itoa(min(line+1, max(lines, 1))) + ": " + problem
	}
	return "YAML syntax: " + quoted.ReplaceAllStringFunc(msg, func(q string) string {
		if indicator.MatchString(q) {
			return q
		}
		return "(not shown)"
	})
}

// shownKey is the shape of a key that errors may quote: the snake_case of
// configuration keys, or anything short. Longer keys of other shapes could
// be a secret expanded in the wrong place.
var shownKey = regexp.MustCompile(`^(?:[a-z0-9_-]{1,40}|[A-Za-z0-9_-]{1,16})$`)

// maxEnvName bounds the NAME of a ${NAME} reference.
const maxEnvName = 256

// envName is the shape of a ${NAME} reference.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandEnv replaces ${NAME} references outside comments, line by line. A
// value goes into the YAML text escaped for where the reference stands: in
// a double-quoted scalar with YAML escapes, in a single-quoted one with each
// quote doubled, and outside quotes only when it holds no character YAML
// would read as structure (otherwise the error asks for double quotes). So
// a secret can never add a key or end a string early. Quotes are tracked
// per line: a reference on the continuation line of a multi-line quoted
// scalar is treated as unquoted, the strictest case.
func expandEnv(data []byte, lookup func(string) (string, bool)) ([]byte, []error) {
	if !bytes.Contains(data, []byte("$")) {
		return data, nil
	}
	var out bytes.Buffer
	out.Grow(len(data))
	var errs []error
	lines := bytes.SplitAfter(data, []byte("\n"))
	for n, line := range lines {
		lineNo := n + 1
		bad := func(msg string) {
			errs = append(errs, &configError{msg: "line " + strconv.Itoa(lineNo) + ": " + msg, line: lineNo})
		}
		var quote byte // 0, '"' or '\''
		lastSig := byte(0)
		for i := 0; i < len(line); i++ {
			c := line[i]
			switch {
			case quote == 0 && c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
				out.Write(line[i:])
				i = len(line)
				continue
			case c == '$' && i+1 < len(line) && line[i+1] == '$':
				out.WriteByte('$')
				i++
				continue
			case c == '$' && i+1 < len(line) && line[i+1] == '{':
				// NAME is bounded, so a line of unclosed "${" costs
				// linear time.
				end := bytes.IndexByte(line[i+2:min(len(line), i+3+maxEnvName)], '}')
				if end < 0 || !envName.Match(line[i+2:i+2+end]) {
					bad("malformed ${...} reference: write ${NAME} with NAME of letters, digits and _, or $$ for a literal $")
					out.WriteByte(c)
					continue
				}
				name := string(line[i+2 : i+2+end])
				i += 2 + end
				lastSig = '}'
				val, ok := lookup(name)
				if !ok {
					bad("environment variable " + name + " is not set (referenced as ${" + name + "})")
					continue
				}
				esc, msg := escapeYAML(val, quote)
				if msg != "" {
					bad("the value of ${" + name + "} " + msg)
					continue
				}
				out.WriteString(esc)
				continue
			}
			switch {
			case quote == '"' && c == '\\' && i+1 < len(line):
				out.WriteByte(c)
				i++
				c = line[i]
			case quote == '"' && c == '"', quote == '\'' && c == '\'' && (i+1 >= len(line) || line[i+1] != '\''):
				quote = 0
			case quote == '\'' && c == '\'':
				out.WriteByte(c) // '' inside single quotes
				i++
				c = line[i]
			case quote == 0 && (c == '"' || c == '\'') && startsScalar(lastSig):
				quote = c
			}
			out.WriteByte(c)
			if c != ' ' && c != '\t' {
				lastSig = c
			}
		}
	}
	return out.Bytes(), errs
}

// startsScalar reports whether a quote after the significant character
// prev (0 at the start of a line) opens a quoted scalar.
func startsScalar(prev byte) bool {
	return prev == 0 || strings.IndexByte(":-[{,?", prev) >= 0
}

// escapeYAML escapes v for the quoting context quote, or explains why it
// cannot go there.
func escapeYAML(v string, quote byte) (string, string) {
	switch quote {
	case '"':
		var b strings.Builder
		for _, r := range v {
			switch {
			case r == '"' || r == '\\':
				b.WriteByte('\\')
				b.WriteRune(r)
			case r < 0x20 || r == 0x7f:
				fmt.Fprintf(&b, "\\x%02x", r)
			case r == utf8.RuneError:
				return "", "is not valid UTF-8"
			default:
				b.WriteRune(r)
			}
		}
		return b.String(), ""
	case '\'':
		if strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			return "", "contains a line break or control character; put the reference in double quotes"
		}
		return strings.ReplaceAll(v, "'", "''"), ""
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("._~+/=:-", c) >= 0
		if !ok || (i == 0 && c == ':') {
			return "", "has characters YAML would misread outside quotes; write \"${NAME}\" in double quotes"
		}
	}
	return v, ""
}

// nodeDecoder decodes a YAML node tree into a Go value strictly, collecting
// one error per problem with its path, never quoting a scalar's text (a
// secret may sit in the wrong key).
type nodeDecoder struct {
	errs   []error
	failed []string // the paths of errs, which keep their zero value
	nodes  int
	// scalars holds the paths of the scalar values on each line, so a
	// ${NAME} problem, known by its line, can name its field.
	scalars map[int][]string
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	timeType        = reflect.TypeFor[time.Time]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

func (d *nodeDecoder) bad(path, msg string) {
	d.errs = append(d.errs, configErr(displayConfigPath(path), msg))
	d.failed = append(d.failed, path)
}

func displayConfigPath(p string) string {
	if p == "" {
		return "(top level)"
	}
	return p
}

func (d *nodeDecoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.nodes++
	if d.nodes > maxConfigNodes {
		if d.nodes == maxConfigNodes+1 {
			d.bad(path, fmt.Sprintf("more than %d YAML nodes (aliases expanded)", maxConfigNodes))
		}
		return
	}
	if n.Kind == yaml.ScalarNode {
		if d.scalars == nil {
			d.scalars = map[int][]string{}
		}
		d.scalars[n.Line] = append(d.scalars[n.Line], path)
	}
	if n.Kind == yaml.AliasNode {
		d.decode(n.Alias, v, path)
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.bad(path, "invalid value")
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		if v.Type() == timeType {
			d.scalar(n, v, path, "a date-time such as 2026-12-31T00:00:00Z")
			return
		}
		d.mapping(n, path, func(key string, val *yaml.Node, kp string) {
			idx, ok := yamlFields(v.Type())[key]
			if !ok {
				d.bad(kp, "unknown key")
				return
			}
			d.decode(val, v.FieldByIndex(idx), kp)
		})
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			d.bad(path, "unsupported map type")
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		d.mapping(n, path, func(key string, val *yaml.Node, kp string) {
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e, kp)
			v.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), e)
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.bad(path, "expected a list, found "+kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), path+"["+strconv.Itoa(i)+"]")
		}
		v.Set(s)
	case reflect.String:
		d.scalar(n, v, path, "a string")
	case reflect.Bool:
		d.scalar(n, v, path, "true or false")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Type() == durationType {
			d.scalar(n, v, path, "a duration such as 30s or 5m")
			return
		}
		d.scalar(n, v, path, "an integer")
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		d.scalar(n, v, path, "a non-negative integer")
	case reflect.Float32, reflect.Float64:
		d.scalar(n, v, path, "a number")
	default:
		d.bad(path, "unsupported type "+v.Type().String())
	}
}

// mapping walks a mapping node, rejecting repeated keys and merge keys.
func (d *nodeDecoder) mapping(n *yaml.Node, path string, each func(key string, val *yaml.Node, keyPath string)) {
	if n.Kind != yaml.MappingNode {
		d.bad(path, "expected a mapping (key: value), found "+kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.bad(path, "a key must be a plain string")
			continue
		}
		key := k.Value
		if !shownKey.MatchString(key) {
			// A long or odd key may be a misplaced secret: do not echo it.
			key = "(key not shown)"
		}
		kp := key
		if path != "" {
			kp = path + "." + key
		}
		if k.ShortTag() == "!!merge" {
			d.bad(kp, "merge keys (<<) are not supported")
			continue
		}
		if seen[k.Value] {
			d.bad(kp, "repeated key")
			continue
		}
		seen[k.Value] = true
		each(k.Value, val, kp)
	}
}

// scalar decodes a scalar with yaml's own rules and replaces its error,
// which would quote the text, with what was expected.
func (d *nodeDecoder) scalar(n *yaml.Node, v reflect.Value, path, want string) {
	if n.Kind != yaml.ScalarNode {
		d.bad(path, "expected "+want+", found "+kindName(n))
		return
	}
	p := reflect.New(v.Type())
	if err := n.Decode(p.Interface()); err != nil {
		d.bad(path, "expected "+want)
		return
	}
	v.Set(p.Elem())
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return "a single value"
}

// yamlFields maps the yaml key of each field of struct type t (inline
// structs flattened) to its index.
func yamlFields(t reflect.Type) map[string][]int {
	m := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			for k, idx := range yamlFields(f.Type) {
				m[k] = append([]int{i}, idx...)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = []int{i}
	}
	return m
}
