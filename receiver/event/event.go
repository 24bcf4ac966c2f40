package event

import (
	"encoding/json"
	"slices"
	"time"
)

// Signal types the sender documents. Unknown types are accepted and routed
// like any other.
const (
	TypeAccountPersonnelChange      = "account_personnel_change"
	TypeOrganizationPersonnelChange = "organization_personnel_change"
	TypeCommercialDiscussion        = "commercial_discussion"
	TypeRenewal                     = "renewal"
	TypeChurnNotification           = "churn_notification"
	TypeChurnRisk                   = "churn_risk"
	TypeHighlyPositiveMessage       = "highly_positive_message"
	TypeExtremelyNegativeMessage    = "extremely_negative_message"
	TypeStakeholderTitleChanged     = "stakeholder_title_changed"
	TypeNoReachOut                  = "no_reach_out"
	TypeStakeholderRolesUndefined   = "stakeholder_roles_undefined"
)

// knownTypes is the list KnownTypes copies.
var knownTypes = [...]string{
	TypeAccountPersonnelChange, TypeOrganizationPersonnelChange, TypeCommercialDiscussion,
	TypeRenewal, TypeChurnNotification, TypeChurnRisk, TypeHighlyPositiveMessage,
	TypeExtremelyNegativeMessage, TypeStakeholderTitleChanged, TypeNoReachOut,
	TypeStakeholderRolesUndefined,
}

// KnownTypes returns the documented signal types, in SPEC.md order. The
// slice is the caller's: changing it changes nothing in the package.
func KnownTypes() []string { return slices.Clone(knownTypes[:]) }

// Event is one signal as the sender posts it (the envelope in SPEC.md). The
// sender builds payloads from the same types. Decode reads each field
// from the exact key in its json tag only.
type Event struct {
	// ID is the event id ("evt_…"), required; it equals the signed
	// x-staircase-id and is the same on every redelivery.
	ID string `json:"id"`
	// Type is the signal type, such as churn_risk (see KnownTypes);
	// required, and unknown types are accepted.
	Type string `json:"type"`
	// CreatedAt is when the sender created the event. Decode leaves
	// it zero when created_at is absent or not an RFC 3339 date-time; the
	// raw value is then in Fields["created_at"].
	CreatedAt time.Time `json:"created_at"`
	// Test marks the sender's "Test notification"; sinks add a [TEST]
	// marker.
	Test bool `json:"test"`
	// Webhook is the registration that sent the event.
	Webhook Webhook `json:"webhook"`
	// Notification is the notification rule that chose the webhook.
	Notification Notification `json:"notification"`
	// Account is the customer account the signal is about; its ID is
	// required.
	Account Account `json:"account"`
	// Signal is what was detected.
	Signal Signal `json:"signal"`
	// People are the contacts the signal concerns, if any.
	People []Person `json:"people,omitempty"`

	// Raw is the body exactly as received, so templates can reach fields
	// this type does not know (through .Fields) and nothing is lost.
	Raw json.RawMessage `json:"-"`
	// Fields is Raw decoded into generic maps, for templates.
	Fields map[string]any `json:"-"`
}

// Webhook names the webhook registration that sent the event.
type Webhook struct {
	// ID is the registration's id ("wh_…").
	ID string `json:"id"`
	// Label is the name the admin gave the registration.
	Label string `json:"label"`
}

// Notification names the admin's notification rule that chose this webhook.
type Notification struct {
	// ID is the rule's id ("ntf_…").
	ID string `json:"id"`
	// Name is the name the admin gave the rule.
	Name string `json:"name"`
}

// Account is the customer account the signal is about.
type Account struct {
	// ID is the account's id ("acc_…"), required.
	ID string `json:"id"`
	// Name is the account's display name, such as "Acme Corp".
	Name string `json:"name"`
	// Domain is the account's web domain, such as "acme.com".
	Domain string `json:"domain"`
	// Status is the account's status, such as active.
	Status string `json:"status"`
	// StaircaseURL is the account's page in the Staircase app.
	StaircaseURL string `json:"staircase_url"`
}

// Signal is what Staircase detected.
type Signal struct {
	// Title is a one-line headline of the signal.
	Title string `json:"title"`
	// Summary explains the signal; it may span several lines.
	Summary string `json:"summary"`
	// Severity is how urgent the signal is, such as low, medium, high or
	// critical.
	Severity string `json:"severity"`
	// Sentiment is the tone detected, such as positive or negative.
	Sentiment string `json:"sentiment"`
	// Category groups signal types, such as risk, personnel or renewal.
	Category string `json:"category"`
	// DetectedAt is when Staircase detected the signal. Decode
	// leaves it zero when detected_at is absent or not an RFC 3339
	// date-time; the raw value is then in Fields.
	DetectedAt time.Time `json:"detected_at"`
}

// Person is a contact the signal concerns.
type Person struct {
	// Name is the person's full name.
	Name string `json:"name"`
	// Email is the person's email address, when known.
	Email string `json:"email"`
	// Title is the person's job title.
	Title string `json:"title"`
	// Role is the person's role in the account, such as decision_maker.
	Role string `json:"role"`
	// Change is what happened to the person, such as joined, moved or
	// title_changed; empty when the person is only mentioned.
	Change string `json:"change"`
	// PreviousTitle is the job title before a title change, else empty.
	PreviousTitle string `json:"previous_title"`
}
