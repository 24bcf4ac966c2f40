package jiratest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Schema is a compiled ADF JSON Schema.
type Schema struct {
	sch *jsonschema.Schema
}

// LoadSchema compiles the ADF JSON Schema file (json-schema/v1/full.json of
// the npm package @atlaskit/adf-schema; draft-04, with internal
// "#/definitions/…" references).
func LoadSchema(path string) (*Schema, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("ADF schema: %w", err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, fmt.Errorf("ADF schema %s: %w", path, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	url := "file://" + filepath.ToSlash(abs)
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("ADF schema %s: %w", path, err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("ADF schema %s: %w", path, err)
	}
	return &Schema{sch: sch}, nil
}

// Validate checks an ADF document (JSON) against the schema; the error wraps
// ErrInvalidADF.
func (s *Schema) Validate(doc []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidADF, err)
	}
	if err := s.sch.Validate(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidADF, err)
	}
	return nil
}

// CheckADF makes the checks that hold whatever the schema version: the root
// is a doc node of version 1 with a content array, every node has a type,
// every text node has non-empty text without a raw line break (Jira would
// show it literally or drop it; line breaks are hardBreak nodes), and
// nesting stays under 64 levels. The error wraps ErrInvalidADF and names
// the JSON path of the first bad node.
func CheckADF(doc []byte) error {
	var root map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil || root == nil {
		return fmt.Errorf("%w: not a JSON object", ErrInvalidADF)
	}
	if root["type"] != "doc" {
		return fmt.Errorf("%w: root type must be \"doc\"", ErrInvalidADF)
	}
	if v, ok := root["version"].(json.Number); !ok || v.String() != "1" {
		return fmt.Errorf("%w: root version must be 1", ErrInvalidADF)
	}
	if _, ok := root["content"].([]any); !ok {
		return fmt.Errorf("%w: root content must be an array", ErrInvalidADF)
	}
	return checkNode(root, "$", 0)
}

func checkNode(n map[string]any, path string, depth int) error {
	if depth > 64 {
		return fmt.Errorf("%w: %s: nested too deeply", ErrInvalidADF, path)
	}
	typ, ok := n["type"].(string)
	if !ok || typ == "" {
		return fmt.Errorf("%w: %s: node without a type", ErrInvalidADF, path)
	}
	if typ == "text" {
		text, ok := n["text"].(string)
		switch {
		case !ok || text == "":
			return fmt.Errorf("%w: %s: empty text node", ErrInvalidADF, path)
		case strings.ContainsAny(text, "\r\n"):
			return fmt.Errorf("%w: %s: raw line break in a text node", ErrInvalidADF, path)
		}
	}
	content, has := n["content"]
	if !has {
		return nil
	}
	list, ok := content.([]any)
	if !ok {
		return fmt.Errorf("%w: %s.content: not an array", ErrInvalidADF, path)
	}
	for i, c := range list {
		child, ok := c.(map[string]any)
		p := fmt.Sprintf("%s.content[%d]", path, i)
		if !ok {
			return fmt.Errorf("%w: %s: not an object", ErrInvalidADF, p)
		}
		if err := checkNode(child, p, depth+1); err != nil {
			return err
		}
	}
	return nil
}
