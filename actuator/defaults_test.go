package actuator_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/actuator"
	"github.com/novacron/novacron/pipeline/analytics/correlate"
)

// TestDefaultHostContentionMatchesCorrelator: the shipped host-contention
// policy matches the incident events the correlator makes (the cause and
// state in their details), while open, and nothing else.
func TestDefaultHostContentionMatchesCorrelator(t *testing.T) {
	var p actuator.Policy
	for _, q := range actuator.DefaultPolicies() {
		if q.Name == "host-contention" {
			p = q
		}
	}
	require.Equal(t, "host-contention", p.Name)
	ev := func(cause, state string) novacron.Event {
		return novacron.Event{Kind: novacron.EventIncident, Host: "host-03", Source: correlate.Source,
			Details: map[string]any{"cause": cause, "state": state, "incident_id": "incident-1"}}
	}
	require.True(t, p.Matches(ev(correlate.CauseHostContention, correlate.StateOpen)))
	require.False(t, p.Matches(ev(correlate.CauseHostContention, correlate.StateClosed)), "a closed incident needs no migration")
	require.False(t, p.Matches(ev(correlate.CauseVMRunaway, correlate.StateOpen)))
}

// TestDefaultRunawayMatchesCorrelator: the shipped vm-runaway policy
// reboots the VM of an open runaway incident.
func TestDefaultRunawayMatchesCorrelator(t *testing.T) {
	var p actuator.Policy
	for _, q := range actuator.DefaultPolicies() {
		if q.Name == "vm-runaway" {
			p = q
		}
	}
	require.Equal(t, novacron.ActionReboot, p.Action.Kind)
	ev := func(cause, state string) novacron.Event {
		return novacron.Event{Kind: novacron.EventIncident, VMID: "vm-0015", Host: "host-02", Source: correlate.Source,
			Details: map[string]any{"cause": cause, "state": state, "incident_id": "incident-2"}}
	}
	require.True(t, p.Matches(ev(correlate.CauseVMRunaway, correlate.StateOpen)))
	require.False(t, p.Matches(ev(correlate.CauseVMRunaway, correlate.StateClosed)))
	require.False(t, p.Matches(ev(correlate.CauseHostContention, correlate.StateOpen)))
}
