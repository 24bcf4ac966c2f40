package receiver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParseConfig(f *testing.F) {
	paths, _ := filepath.Glob("testdata/config/*.yaml")
	paths = append(paths, "../examples/receiver/config.yaml")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(minimalConfig))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte(`v: "${X}" # ${Y}` + "\n$$ '${X}'"))
	env := map[string]string{
		"SECRET": testSecret, "STAIRHOOK_SECRET": testSecret,
		"JIRA_EMAIL": "bot@example.com", "JIRA_API_TOKEN": "t", "SMTP_USER": "u",
		"SMTP_PASSWORD": "p\"'\\\n#: x", "X": "x: y\n- z",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data, lookup)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error does not wrap ErrInvalidConfig: %v", err)
			}
			// The receiver's own errors never quote a value (the sinks'
			// checks, such as a template's parse error, may).
			var joined interface{ Unwrap() []error }
			errs := []error{err}
			if errors.As(err, &joined) {
				errs = joined.Unwrap()
			}
			for _, e := range errs {
				var sinkErr *sinkConfigError
				if !errors.As(e, &sinkErr) && strings.Contains(e.Error(), strings.TrimPrefix(testSecret, "whsec_")) {
					t.Fatalf("error quotes the secret: %v", e)
				}
			}
			return
		}
		if len(cfg.Webhooks) == 0 || cfg.Listen == "" || cfg.Outbox == "" {
			t.Fatal("accepted config without webhooks or defaults")
		}
		if errs := cfg.validate(); len(errs) > 0 {
			t.Fatalf("accepted config fails validation: %v", errs)
		}
	})
}
