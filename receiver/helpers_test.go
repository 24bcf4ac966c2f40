package receiver

import "strings"

// minimalEvent is the smallest body event.Decode accepts.
const minimalEvent = `{"id":"evt_1","type":"churn_risk","account":{"id":"acc_1"}}`

// withField returns minimalEvent with extra top-level JSON members.
func withField(members string) string {
	return strings.TrimSuffix(minimalEvent, "}") + "," + members + "}"
}

// nested returns JSON arrays nested depth deep.
func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}
