package novacron

import "time"

// EventSchemaVersion is the schema_version written on every Event. Bump it
// when a field changes meaning; adding fields does not need a bump.
const EventSchemaVersion = 1

// Event kinds published on the events topic.
const (
	EventVMLifecycle       = "vm_lifecycle"
	EventAnomalyOpened     = "anomaly_opened"
	EventAnomalyUpdated    = "anomaly_updated"
	EventAnomalyClosed     = "anomaly_closed"
	EventForecastBreach    = "forecast_breach"
	EventIncident          = "incident"
	EventRecommendation    = "recommendation"
	EventActionStateChange = "action_state"
)

// Event is something NovaCron noticed or did, published as JSON on the
// events topic.
type Event struct {
	SchemaVersion int `json:"schema_version"`
	// ID is deterministic for the thing described, so duplicates delivered
	// by an at-least-once bus are recognisable downstream.
	ID       string            `json:"id"`
	Kind     string            `json:"kind"`
	Time     time.Time         `json:"time"`
	Source   string            `json:"source"`
	VMID     string            `json:"vm_id,omitempty"`
	Host     string            `json:"host,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Summary  string            `json:"summary,omitempty"`
	Severity string            `json:"severity,omitempty"`
	// Evidence is a PromQL expression that shows what the event is about.
	Evidence string         `json:"evidence,omitempty"`
	Details  map[string]any `json:"details,omitempty"`
}
