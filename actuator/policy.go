package actuator

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/confutil"
)

// Policy modes.
const (
	// ModeOff ignores matching events.
	ModeOff = "off"
	// ModeDryRun records the plan and changes nothing.
	ModeDryRun = "dry_run"
	// ModeApprove plans the action and waits for an operator's approval.
	ModeApprove = "approve"
	// ModeAuto plans and executes the action within the safety rails.
	ModeAuto = "auto"
)

var modes = []string{ModeOff, ModeDryRun, ModeApprove, ModeAuto}

// EventAlert is the kind of events made from Alertmanager webhook alerts.
const EventAlert = "alert"

// Policy matches events and names the action to take, with bounds.
type Policy struct {
	// Name identifies the policy in actions, the audit log and the API.
	// Required; letters, digits, '_' and '-'.
	Name string `yaml:"name" json:"name"`
	// Mode is off, dry_run, approve or auto. Default (empty): the
	// actuator's default_mode.
	Mode string `yaml:"mode" json:"mode,omitempty"`
	// Match selects the events the policy acts on.
	Match Match `yaml:"match" json:"match"`
	// Action is what to do to the event's VM.
	Action ActionSpec `yaml:"action" json:"action"`
	// Verify is how to tell whether the action helped. Default (empty
	// query): the action succeeds once the driver shows the desired state.
	Verify VerifySpec `yaml:"verify" json:"verify"`
}

// Match selects events. Every non-empty field must match.
type Match struct {
	// Kinds are event kinds (forecast_breach, anomaly_opened, incident,
	// recommendation, alert, ...). Required.
	Kinds []string `yaml:"kinds" json:"kinds"`
	// Labels must all equal the event's labels. The event's vm_id, host,
	// severity and source count as labels too; "alertname" is an alert's
	// label. A value starting with "~" is a regular expression, anchored.
	Labels map[string]string `yaml:"labels" json:"labels,omitempty"`
	// Within, when set, requires the event's details.time_to_breach_seconds
	// (or details.eta_seconds) to be at most this long: "saturation within
	// 2h". Default 0: no such condition.
	Within time.Duration `yaml:"within" json:"within,omitempty"`
	// For, when set, requires details.duration_seconds to be at least this
	// long: "idle for 7 days". Default 0: no such condition.
	For time.Duration `yaml:"for" json:"for,omitempty"`
}

// ActionSpec names an action and its bounds.
type ActionSpec struct {
	// Kind is resize, migrate, stop, start or reboot. Required.
	Kind novacron.ActionKind `yaml:"kind" json:"kind"`
	// AddVCPUs is how many vCPUs a resize adds. Default 0; a resize needs
	// add_vcpus or vcpus.
	AddVCPUs int `yaml:"add_vcpus" json:"add_vcpus,omitempty"`
	// VCPUs is the absolute vCPU count of a resize. Default 0: use add_vcpus.
	VCPUs int `yaml:"vcpus" json:"vcpus,omitempty"`
	// MaxVCPUs bounds a resize: a VM already at the bound gets no action,
	// and one below it is resized at most to it. Default 0: no bound.
	MaxVCPUs int `yaml:"max_vcpus" json:"max_vcpus,omitempty"`
	// Target picks a migration's destination: "least_loaded" (default),
	// the host with the lowest vCPU allocation and room for the VM, or a
	// host ID.
	Target string `yaml:"target" json:"target,omitempty"`
	// Subject picks the VM of a host-level event (an incident without
	// vm_id): "noisiest" (default), the VM on the host using the most CPU.
	Subject string `yaml:"subject" json:"subject,omitempty"`
}

// VerifySpec says how to verify an action.
type VerifySpec struct {
	// Query is a PromQL expression returning one number; "$vm_id" and
	// "$host" are replaced with the action's VM and host. Default empty: no
	// verification beyond the driver's observed state.
	Query string `yaml:"query" json:"query,omitempty"`
	// Below is the value the query must drop below (and below the value
	// seen when the action was planned) for the action to count as
	// helping. Required with query.
	Below float64 `yaml:"below" json:"below,omitempty"`
	// Window is how long after the step the signal is watched. Default 0:
	// the actuator's verify_window.
	Window time.Duration `yaml:"window" json:"window,omitempty"`
	// Guards are other expressions that must not rise by more than 10%
	// (and 0.05 absolute) over the window: "nothing else regressed".
	Guards []string `yaml:"guards" json:"guards,omitempty"`
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate returns every problem with p, worded with YAML keys under
// prefix (such as "policies[0]").
func (p Policy) Validate(prefix string) error {
	var errs []error
	f := func(key, format string, args ...any) {
		errs = append(errs, confutil.Errorf(prefix+"."+key, format, args...))
	}
	if !nameRE.MatchString(p.Name) {
		f("name", "must be letters, digits, '_' or '-', got %q", p.Name)
	}
	if p.Mode != "" && !slices.Contains(modes, p.Mode) {
		f("mode", "must be one of %s, got %q", strings.Join(modes, ", "), p.Mode)
	}
	if len(p.Match.Kinds) == 0 {
		f("match.kinds", "must name at least one event kind")
	}
	for k, v := range p.Match.Labels {
		if strings.HasPrefix(v, "~") {
			if _, err := regexp.Compile("^(?:" + v[1:] + ")$"); err != nil {
				f("match.labels."+k, "bad regular expression %q: %v", v[1:], err)
			}
		}
	}
	if p.Match.Within < 0 || p.Match.For < 0 {
		f("match", "within and for must not be negative")
	}
	a := p.Action
	switch a.Kind {
	case novacron.ActionResize:
		if a.AddVCPUs <= 0 && a.VCPUs <= 0 {
			f("action.add_vcpus", "a resize needs add_vcpus or vcpus > 0")
		}
		if a.AddVCPUs < 0 || a.VCPUs < 0 || a.MaxVCPUs < 0 {
			f("action", "add_vcpus, vcpus and max_vcpus must not be negative")
		}
	case novacron.ActionMigrate:
		if a.Subject != "" && a.Subject != "noisiest" {
			f("action.subject", "must be noisiest or empty, got %q", a.Subject)
		}
	case novacron.ActionStop, novacron.ActionStart, novacron.ActionReboot:
	default:
		f("action.kind", "must be resize, migrate, stop, start or reboot, got %q", a.Kind)
	}
	if p.Verify.Query != "" && p.Verify.Below == 0 {
		f("verify.below", "is required with verify.query")
	}
	if p.Verify.Window < 0 {
		f("verify.window", "must not be negative, got %s", p.Verify.Window)
	}
	return errors.Join(errs...)
}

// DefaultPolicies returns the policies a new installation ships with,
// all in the default mode (dry_run unless configured otherwise):
//
//   - cpu-saturation-forecast: a forecast says CPU saturates within 2h →
//     add 2 vCPUs, at most 16;
//   - idle-vm: a VM idle for 7 days → stop it;
//   - host-contention: a host contention incident → migrate the noisiest
//     VM to the least loaded host with room;
//   - vm-runaway: a runaway CPU incident (a VM's CPU far above its
//     baseline with nothing else to explain it) → reboot the VM, verified
//     by its CPU falling below 0.85. A runaway pins the CPU above the
//     forecast's saturation threshold, so no forecast breach announces it.
func DefaultPolicies() []Policy {
	return []Policy{
		{
			Name:   "cpu-saturation-forecast",
			Match:  Match{Kinds: []string{novacron.EventForecastBreach}, Labels: map[string]string{"metric": "novacron_vm_cpu_usage_ratio"}, Within: 2 * time.Hour},
			Action: ActionSpec{Kind: novacron.ActionResize, AddVCPUs: 2, MaxVCPUs: 16},
			Verify: VerifySpec{Query: `max(novacron_vm_cpu_usage_ratio{vm_id="$vm_id"})`, Below: 0.85},
		},
		{
			Name:   "idle-vm",
			Match:  Match{Kinds: []string{novacron.EventRecommendation}, Labels: map[string]string{"recommendation": "idle"}, For: 7 * 24 * time.Hour},
			Action: ActionSpec{Kind: novacron.ActionStop},
		},
		{
			Name:   "host-contention",
			Match:  Match{Kinds: []string{novacron.EventIncident}, Labels: map[string]string{"cause": "host_contention", "state": "open"}},
			Action: ActionSpec{Kind: novacron.ActionMigrate, Target: "least_loaded", Subject: "noisiest"},
		},
		{
			Name:   "vm-runaway",
			Match:  Match{Kinds: []string{novacron.EventIncident}, Labels: map[string]string{"cause": "vm_runaway", "state": "open"}},
			Action: ActionSpec{Kind: novacron.ActionReboot},
			Verify: VerifySpec{Query: `max(novacron_vm_cpu_usage_ratio{vm_id="$vm_id"})`, Below: 0.85},
		},
	}
}

// eventLabels returns the labels a policy matches against: the event's
// labels plus vm_id, host, severity, source and kind.
func eventLabels(ev novacron.Event) map[string]string {
	ls := make(map[string]string, len(ev.Labels)+5)
	for k, v := range ev.Labels {
		ls[k] = v
	}
	set := func(k, v string) {
		if v != "" {
			ls[k] = v
		}
	}
	set("vm_id", ev.VMID)
	set("host", ev.Host)
	set("severity", ev.Severity)
	set("source", ev.Source)
	set("kind", ev.Kind)
	if _, ok := ls["metric"]; !ok {
		set("metric", ls["__name__"])
	}
	for k, v := range ev.Details {
		if s, ok := v.(string); ok {
			if _, taken := ls[k]; !taken {
				ls[k] = s
			}
		}
	}
	return ls
}

// Matches reports whether the policy applies to ev.
func (p Policy) Matches(ev novacron.Event) bool {
	if !slices.Contains(p.Match.Kinds, ev.Kind) {
		return false
	}
	ls := eventLabels(ev)
	for k, want := range p.Match.Labels {
		got, ok := ls[k]
		if strings.HasPrefix(want, "~") {
			re, err := regexp.Compile("^(?:" + want[1:] + ")$")
			if err != nil || !re.MatchString(got) {
				return false
			}
			continue
		}
		if !ok || got != want {
			return false
		}
	}
	if p.Match.Within > 0 {
		eta, ok := detailSeconds(ev, "time_to_breach_seconds", "eta_seconds")
		if !ok || eta > p.Match.Within.Seconds() {
			return false
		}
	}
	if p.Match.For > 0 {
		d, ok := detailSeconds(ev, "duration_seconds")
		if !ok || d < p.Match.For.Seconds() {
			return false
		}
	}
	return true
}

func detailSeconds(ev novacron.Event, keys ...string) (float64, bool) {
	for _, k := range keys {
		switch v := ev.Details[k].(type) {
		case float64:
			return v, true
		case int:
			return float64(v), true
		case int64:
			return float64(v), true
		case time.Duration:
			return v.Seconds(), true
		}
	}
	return 0, false
}

func (p Policy) String() string { return fmt.Sprintf("policy %s", p.Name) }
