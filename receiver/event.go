package receiver

import (
	"encoding/json"
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

// KnownTypes lists the documented signal types, in SPEC.md order.
var KnownTypes = []string{
	TypeAccountPersonnelChange, TypeOrganizationPersonnelChange, TypeCommercialDiscussion,
	TypeRenewal, TypeChurnNotification, TypeChurnRisk, TypeHighlyPositiveMessage,
	TypeExtremelyNegativeMessage, TypeStakeholderTitleChanged, TypeNoReachOut,
	TypeStakeholderRolesUndefined,
}

// Event is one signal as the sender posts it (the envelope in SPEC.md). The
// sender builds payloads from the same types.
type Event struct {
	ID           string       `json:"id"`
	Type         string       `json:"type"`
	CreatedAt    time.Time    `json:"created_at"`
	Test         bool         `json:"test"`
	Webhook      Webhook      `json:"webhook"`
	Notification Notification `json:"notification"`
	Account      Account      `json:"account"`
	Signal       Signal       `json:"signal"`
	People       []Person     `json:"people,omitempty"`

	// Raw is the body exactly as received, so templates can reach fields
	// this type does not know (through .Fields) and nothing is lost.
	Raw json.RawMessage `json:"-"`
	// Fields is Raw decoded into generic maps, for templates.
	Fields map[string]any `json:"-"`
}

// Webhook names the webhook registration that sent the event.
type Webhook struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// Notification names the admin's notification rule that chose this webhook.
type Notification struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Account is the customer account the signal is about.
type Account struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Domain       string `json:"domain"`
	Status       string `json:"status"`
	StaircaseURL string `json:"staircase_url"`
}

// Signal is what Staircase detected.
type Signal struct {
	Title      string    `json:"title"`
	Summary    string    `json:"summary"`
	Severity   string    `json:"severity"`
	Sentiment  string    `json:"sentiment"`
	Category   string    `json:"category"`
	DetectedAt time.Time `json:"detected_at"`
}

// Person is a contact the signal concerns.
type Person struct {
	Name          string `json:"name"`
	Email         string `json:"email"`
	Title         string `json:"title"`
	Role          string `json:"role"`
	Change        string `json:"change"`
	PreviousTitle string `json:"previous_title"`
}
