package teams

import (
	"time"

	"github.com/stairhook/stairhook/receiver/internal/render"
	"github.com/stairhook/stairhook/receiver/internal/secreturl"
)

// Config is the Microsoft Teams workflow the teams routes post to. Without
// it, teams routes write their cards to the outbox instead (dry run).
type Config struct {
	// WebhookURL is the URL of a Teams workflow started by "When a Teams
	// webhook request is received" (Workflows, Power Automate), which
	// posts the card to the channel or chat the workflow names. It is a
	// secret (its sig parameter signs it): it is never logged nor quoted
	// in an error, which names its host only. It must be https (http only
	// for a loopback test server). A route may name another.
	WebhookURL string `yaml:"webhook_url"`
	// Timeout bounds each HTTP request. Default 10 s.
	Timeout time.Duration `yaml:"timeout"`
}

// Route says where one route posts its cards.
type Route struct {
	// WebhookURL, when set, is used instead of Config.WebhookURL: another
	// workflow, for another channel. The same rules apply.
	WebhookURL string `yaml:"webhook_url"`
}

const defaultTimeout = 10 * time.Second

// Check reports every problem of c, each error naming its field under
// path, such as "teams.webhook_url: must be an absolute https URL". It
// never quotes the webhook URL.
func (c *Config) Check(path string) []error {
	var errs []error
	bad := func(field, msg string) { errs = append(errs, render.FieldError(path, field, msg)) }
	if c.WebhookURL != "" {
		if err := secreturl.Check(c.WebhookURL); err != nil {
			bad("webhook_url", err.Error())
		}
	}
	if c.Timeout < 0 {
		bad("timeout", "must not be negative")
	}
	return errs
}

// CheckRoute reports the problems of r under c that Route.Check cannot
// see alone: a card needs a webhook URL, the route's or c's.
func (c *Config) CheckRoute(path string, r *Route) []error {
	if r.WebhookURL == "" && c.WebhookURL == "" {
		return []error{render.FieldError(path, "webhook_url", "required: set teams.webhook_url, or this route's webhook_url")}
	}
	return nil
}

// Check reports every problem of r, each error naming its field under
// path. It never quotes the webhook URL.
func (r *Route) Check(path string) []error {
	if r.WebhookURL != "" {
		if err := secreturl.Check(r.WebhookURL); err != nil {
			return []error{render.FieldError(path, "webhook_url", err.Error())}
		}
	}
	return nil
}
