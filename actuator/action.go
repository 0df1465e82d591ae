package actuator

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	novacron "github.com/novacron/novacron"
)

// Action states. proposed → approved → running → verifying → succeeded,
// with failed, rolling_back → rolled_back, rejected, expired and
// cancelled as the other ends.
const (
	StateProposed    = "proposed"
	StateApproved    = "approved"
	StateRunning     = "running"
	StateVerifying   = "verifying"
	StateRollingBack = "rolling_back"
	StateSucceeded   = "succeeded"
	StateFailed      = "failed"
	StateRolledBack  = "rolled_back"
	StateRejected    = "rejected"
	StateExpired     = "expired"
	StateCancelled   = "cancelled"
)

// Terminal reports whether an action in state s is finished.
func Terminal(s string) bool {
	switch s {
	case StateSucceeded, StateFailed, StateRolledBack, StateRejected, StateExpired, StateCancelled:
		return true
	}
	return false
}

// inFlight reports whether an action in state s counts against the
// concurrency budgets and inhibits the VM's alerts.
func inFlight(s string) bool {
	return s == StateRunning || s == StateVerifying || s == StateRollingBack
}

// Target is a VM shape an action drives towards: the fields that are set
// are compared with the observed VM.
type Target struct {
	VCPUs       int   `json:"vcpus,omitempty"`
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	// InstanceType is the provider's size name ("t3.xlarge"). When set, it
	// alone decides whether the VM has the target size (the type fixes
	// its vCPUs and memory), and a resize asks the driver for it: the
	// original shape of a resize records it, so that a rollback restores
	// the very type the VM had.
	InstanceType string              `json:"instance_type,omitempty"`
	Host         string              `json:"host,omitempty"`
	Power        novacron.PowerState `json:"power,omitempty"`
}

// matches reports whether vm already has the target shape.
func (t Target) matches(vm novacron.VM) bool {
	if t.InstanceType != "" {
		if vm.Size.InstanceType != t.InstanceType {
			return false
		}
	} else if t.VCPUs != 0 && vm.Size.VCPUs != t.VCPUs {
		return false
	}
	if t.Host != "" && vm.Host != t.Host {
		return false
	}
	if t.Power != "" && vm.State != t.Power {
		return false
	}
	return true
}

// Evidence is an input that led to an action.
type Evidence struct {
	EventID  string    `json:"event_id"`
	Kind     string    `json:"kind"`
	Time     time.Time `json:"time"`
	Summary  string    `json:"summary,omitempty"`
	Severity string    `json:"severity,omitempty"`
	// Query is the event's PromQL evidence.
	Query string `json:"query,omitempty"`
}

// Action is one planned change to one VM, as kept in the ledger.
type Action struct {
	// ID is deterministic: a hash of the VM, the action kind and the VM's
	// generation when planned (ActionID).
	ID         string              `json:"id"`
	VMID       string              `json:"vm_id"`
	Provider   string              `json:"provider"`
	Tenant     string              `json:"tenant,omitempty"`
	Host       string              `json:"host,omitempty"`
	Policy     string              `json:"policy"`
	Mode       string              `json:"mode"`
	Kind       novacron.ActionKind `json:"kind"`
	State      string              `json:"state"`
	Generation int64               `json:"generation"`
	// Desired is the shape the action drives the VM to; Original the shape
	// it had, which a rollback restores.
	Desired  Target `json:"desired"`
	Original Target `json:"original"`
	// Evidence and Explanation say why the action was planned.
	Evidence    []Evidence `json:"evidence"`
	Explanation string     `json:"explanation"`
	// Verify is the policy's verification, with the value of its query
	// when the action was planned (Baseline) and after (Observed).
	Verify   VerifySpec `json:"verify"`
	Baseline *float64   `json:"baseline,omitempty"`
	Observed *float64   `json:"observed,omitempty"`
	// ApprovedBy and Comment record the decision: "policy:<name>" for
	// automatic approval, else the operator's name.
	ApprovedBy string `json:"approved_by,omitempty"`
	Comment    string `json:"comment,omitempty"`
	// Blocked says which safety rail holds an approved action back.
	Blocked   string `json:"blocked,omitempty"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
	// Result is a short description of how the action ended.
	Result     string    `json:"result,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	VerifyFrom time.Time `json:"verify_from,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// ActionID returns the deterministic id of an action: the same VM, kind
// and generation always give the same id, so a replayed event or a
// restart finds the action already in the ledger.
func ActionID(vmID string, kind novacron.ActionKind, generation int64) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", vmID, kind, generation))
	return "act-" + hex.EncodeToString(h[:10])
}

// undoable reports whether the action can be rolled back.
func (a *Action) undoable() bool {
	return a.Kind == novacron.ActionResize || a.Kind == novacron.ActionMigrate
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	Seq      int64     `json:"seq"`
	ActionID string    `json:"action_id"`
	VMID     string    `json:"vm_id"`
	Time     time.Time `json:"time"`
	// Actor is who did it: "actuator", "policy:<name>" or an operator.
	Actor string `json:"actor"`
	// Event is plan, approve, reject, start, step, verify, rollback,
	// cancel, expire, fail, succeed or block.
	Event     string `json:"event"`
	FromState string `json:"from_state"`
	ToState   string `json:"to_state"`
	Message   string `json:"message"`
}
