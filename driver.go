package novacron

import (
	"context"
	"time"
)

// ActionKind names a VM action a driver can perform.
type ActionKind string

// Action kinds.
const (
	ActionStart   ActionKind = "start"
	ActionStop    ActionKind = "stop"
	ActionReboot  ActionKind = "reboot"
	ActionResize  ActionKind = "resize"
	ActionMigrate ActionKind = "migrate"
)

// Driver performs VM actions on one provider. Every method is idempotent:
// starting a running VM succeeds and does nothing. Errors are *Error with
// ENOTFOUND (no such VM), ECONFLICT (invalid state for the action),
// EUNSUPPORTED (this driver cannot do it), EINVALID (bad request) or
// EUNAVAILABLE (transient, retry). Methods are safe for concurrent use on
// different VMs.
type Driver interface {
	// Provider returns the provider name this driver acts on ("sim").
	Provider() string
	// VM returns the observed state of one VM.
	VM(ctx context.Context, id string) (VM, error)
	// Start powers the VM on.
	Start(ctx context.Context, id string) error
	// Stop shuts the VM down gracefully, forcing it off after timeout.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Reboot restarts the VM's guest.
	Reboot(ctx context.Context, id string) error
	// Resize changes the VM's size.
	Resize(ctx context.Context, id string, size Size) error
	// Migrate moves the VM to another host.
	Migrate(ctx context.Context, id, host string) error
}
