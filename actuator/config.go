package actuator

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/novacron/novacron/internal/confutil"
)

// Config configures the actuator. YAML keys are snake_case.
type Config struct {
	// DefaultMode is the mode of policies that name none: off, dry_run,
	// approve or auto. Default dry_run, so a new installation only records
	// plans.
	DefaultMode string `yaml:"default_mode"`
	// Policies are the policies in force. Default: DefaultPolicies. Policies
	// changed through the API are stored in the state database and take
	// precedence over these by name.
	Policies []Policy `yaml:"policies"`
	// PoliciesFile, when set, is a YAML file with a list of policies that
	// replaces policies. Default empty.
	PoliciesFile string `yaml:"policies_file"`
	// PolicyReloadInterval is how often each replica checks the
	// generation of the policies stored through the API and reloads them
	// when another replica changed them. Default 10s; 0 disables the
	// check, so other replicas' changes apply only after a restart.
	PolicyReloadInterval time.Duration `yaml:"policy_reload_interval"`
	// Workers is how many VMs are reconciled at once. Default 4; at least 1.
	Workers int `yaml:"workers"`
	// ReconcileTimeout bounds one reconcile pass of one VM. Default 2m.
	ReconcileTimeout time.Duration `yaml:"reconcile_timeout"`
	// StepTimeout bounds one driver call. Default 1m.
	StepTimeout time.Duration `yaml:"step_timeout"`
	// RetryMin and RetryMax bound the exponential backoff of a failed
	// reconcile. Defaults 1s and 5m.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// MaxAttempts is how many failed steps an action may take before it
	// fails. Default 5.
	MaxAttempts int `yaml:"max_attempts"`
	// PollInterval is how often an action that is running, verifying or
	// waiting for a safety rail is looked at again. Default 15s.
	PollInterval time.Duration `yaml:"poll_interval"`
	// ApprovalTTL is how long a proposed action waits for approval before
	// it expires. Default 24h.
	ApprovalTTL time.Duration `yaml:"approval_ttl"`
	// VerifyWindow is how long the triggering signal is watched after a
	// step, for policies that set no window. Default 10m.
	VerifyWindow time.Duration `yaml:"verify_window"`
	// Budgets limit how much the actuator does.
	Budgets Budgets `yaml:"budgets"`
	// Cooldown is the least time between two actions started on one VM.
	// Default 1h; 0 disables it.
	Cooldown time.Duration `yaml:"cooldown"`
	// FreezeWindows are periods in which no action starts (a release
	// freeze). Default none.
	FreezeWindows []Window `yaml:"freeze_windows"`
	// MaintenanceWindows, when set, are the only daily periods in which
	// automatic actions start; approved ones start at any time. Default
	// none: any time.
	MaintenanceWindows []DailyWindow `yaml:"maintenance_windows"`
	// KillSwitch stops every action from starting when true. It can also be
	// flipped through the API, which stores it for every replica. Default
	// false.
	KillSwitch bool `yaml:"kill_switch"`
	// OperatorToken guards approving, rejecting, executing, cancelling and
	// rolling back actions, changing policies and the kill switch: requests
	// must carry it in the X-NovaCron-Operator-Token header, besides the
	// API's bearer token. Default empty: read operator_token_file; when
	// both are empty, those routes answer 403.
	OperatorToken string `yaml:"operator_token"`
	// OperatorTokenFile is a file holding the operator token. Default empty.
	OperatorTokenFile string `yaml:"operator_token_file"`
	// Lease elects the one actuator that executes.
	Lease LeaseConfig `yaml:"lease"`
	// EventRetention is how long input events are kept for what-if runs.
	// Default 30 days.
	EventRetention time.Duration `yaml:"event_retention"`
}

// Budgets limit actions globally and per tenant.
type Budgets struct {
	// ActionsPerHour caps the actions started in any hour. Default 20; 0
	// means no cap.
	ActionsPerHour int `yaml:"actions_per_hour"`
	// Concurrent caps the actions running or verifying at once. Default 3;
	// 0 means no cap.
	Concurrent int `yaml:"concurrent"`
	// TenantShare caps the share (0..1) of a tenant's VMs with an action
	// running or verifying at once, never below one VM. Default 0.1; 0
	// means no cap.
	TenantShare float64 `yaml:"tenant_share"`
}

// Window is an absolute period.
type Window struct {
	// Start and End are RFC 3339 times; End must be after Start.
	Start time.Time `yaml:"start"`
	End   time.Time `yaml:"end"`
}

// DailyWindow is a period of every day (UTC), such as 22:00 to 04:00.
type DailyWindow struct {
	// Start and End are "HH:MM" in UTC; a window may wrap midnight.
	Start string `yaml:"start"`
	End   string `yaml:"end"`
	// Days limits the window to these weekdays ("mon", "tue", ...) of its
	// start. Default empty: every day.
	Days []string `yaml:"days"`
}

// LeaseConfig configures the single-executor lease.
type LeaseConfig struct {
	// Name is the lease row shared by the actuators that exclude each
	// other. Default "actuator".
	Name string `yaml:"name"`
	// TTL is how long a lease lasts without renewal; a failed actuator's
	// lease is taken over after it. Default 15s.
	TTL time.Duration `yaml:"ttl"`
	// RenewInterval is how often the holder renews and others try to take
	// the lease. Default 5s; must be below ttl.
	RenewInterval time.Duration `yaml:"renew_interval"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{
		DefaultMode:          ModeDryRun,
		Policies:             DefaultPolicies(),
		PolicyReloadInterval: 10 * time.Second,
		Workers:              4,
		ReconcileTimeout:     2 * time.Minute,
		StepTimeout:          time.Minute,
		RetryMin:             time.Second,
		RetryMax:             5 * time.Minute,
		MaxAttempts:          5,
		PollInterval:         15 * time.Second,
		ApprovalTTL:          24 * time.Hour,
		VerifyWindow:         10 * time.Minute,
		Budgets:              Budgets{ActionsPerHour: 20, Concurrent: 3, TenantShare: 0.1},
		Cooldown:             time.Hour,
		Lease:                LeaseConfig{Name: "actuator", TTL: 15 * time.Second, RenewInterval: 5 * time.Second},
		EventRetention:       30 * 24 * time.Hour,
	}
}

// Validate returns every problem with cfg, joined, worded with the YAML
// keys. It never changes cfg.
func (cfg Config) Validate() error {
	var errs []error
	f := func(key, format string, args ...any) { errs = append(errs, confutil.Errorf(key, format, args...)) }
	if !slices.Contains(modes, cfg.DefaultMode) {
		f("default_mode", "must be one of %s, got %q", strings.Join(modes, ", "), cfg.DefaultMode)
	}
	seen := map[string]bool{}
	for i, p := range cfg.Policies {
		if err := p.Validate(fmt.Sprintf("policies[%d]", i)); err != nil {
			errs = append(errs, err)
		}
		if seen[p.Name] {
			f(fmt.Sprintf("policies[%d].name", i), "duplicate policy name %q", p.Name)
		}
		seen[p.Name] = true
	}
	if cfg.PolicyReloadInterval < 0 {
		f("policy_reload_interval", "must not be negative, got %s", cfg.PolicyReloadInterval)
	}
	if cfg.Workers < 1 {
		f("workers", "must be at least 1, got %d", cfg.Workers)
	}
	pos := func(key string, d time.Duration) {
		if d <= 0 {
			f(key, "must be positive, got %s", d)
		}
	}
	pos("reconcile_timeout", cfg.ReconcileTimeout)
	pos("step_timeout", cfg.StepTimeout)
	pos("retry_min", cfg.RetryMin)
	pos("poll_interval", cfg.PollInterval)
	pos("approval_ttl", cfg.ApprovalTTL)
	pos("verify_window", cfg.VerifyWindow)
	pos("event_retention", cfg.EventRetention)
	pos("lease.ttl", cfg.Lease.TTL)
	pos("lease.renew_interval", cfg.Lease.RenewInterval)
	if cfg.RetryMax < cfg.RetryMin {
		f("retry_max", "must be at least retry_min (%s), got %s", cfg.RetryMin, cfg.RetryMax)
	}
	if cfg.MaxAttempts < 1 {
		f("max_attempts", "must be at least 1, got %d", cfg.MaxAttempts)
	}
	if cfg.Lease.RenewInterval >= cfg.Lease.TTL && cfg.Lease.TTL > 0 {
		f("lease.renew_interval", "must be below lease.ttl (%s), got %s", cfg.Lease.TTL, cfg.Lease.RenewInterval)
	}
	if cfg.Lease.Name == "" {
		f("lease.name", "must not be empty")
	}
	if cfg.Budgets.ActionsPerHour < 0 || cfg.Budgets.Concurrent < 0 {
		f("budgets", "actions_per_hour and concurrent must not be negative")
	}
	if cfg.Budgets.TenantShare < 0 || cfg.Budgets.TenantShare > 1 {
		f("budgets.tenant_share", "must be between 0 and 1, got %g", cfg.Budgets.TenantShare)
	}
	if cfg.Cooldown < 0 {
		f("cooldown", "must not be negative, got %s", cfg.Cooldown)
	}
	for i, w := range cfg.FreezeWindows {
		if !w.End.After(w.Start) {
			f(fmt.Sprintf("freeze_windows[%d].end", i), "must be after start")
		}
	}
	for i, w := range cfg.MaintenanceWindows {
		if _, _, err := w.parse(); err != nil {
			f(fmt.Sprintf("maintenance_windows[%d]", i), "%v", err)
		}
	}
	if cfg.OperatorToken != "" && cfg.OperatorTokenFile != "" {
		f("operator_token_file", "set operator_token or operator_token_file, not both")
	}
	return errors.Join(errs...)
}

var weekdays = map[string]time.Weekday{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

func parseHM(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("bad time of day %q, want HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

func (w DailyWindow) parse() (int, int, error) {
	s, err := parseHM(w.Start)
	if err != nil {
		return 0, 0, fmt.Errorf("start: %w", err)
	}
	e, err := parseHM(w.End)
	if err != nil {
		return 0, 0, fmt.Errorf("end: %w", err)
	}
	if s == e {
		return 0, 0, errors.New("start and end must differ")
	}
	for _, d := range w.Days {
		if _, ok := weekdays[strings.ToLower(d)]; !ok {
			return 0, 0, fmt.Errorf("days: unknown weekday %q", d)
		}
	}
	return s, e, nil
}

// contains reports whether t (UTC) is inside the window.
func (w DailyWindow) contains(t time.Time) bool {
	s, e, err := w.parse()
	if err != nil {
		return false
	}
	t = t.UTC()
	m := t.Hour()*60 + t.Minute()
	day := t.Weekday()
	in := false
	if s < e {
		in = m >= s && m < e
	} else if m >= s {
		in = true
	} else if m < e {
		in, day = true, (day+6)%7 // the window started the day before
	}
	if !in || len(w.Days) == 0 {
		return in
	}
	for _, d := range w.Days {
		if weekdays[strings.ToLower(d)] == day {
			return true
		}
	}
	return false
}

// loadPolicies returns the policies of cfg: policies_file's when set.
func (cfg Config) loadPolicies() ([]Policy, error) {
	if cfg.PoliciesFile == "" {
		return cfg.Policies, nil
	}
	b, err := os.ReadFile(cfg.PoliciesFile)
	if err != nil {
		return nil, fmt.Errorf("read policies (policies_file=%q): %w", cfg.PoliciesFile, err)
	}
	var ps []Policy
	if err := yaml.Unmarshal(b, &ps); err != nil {
		return nil, fmt.Errorf("parse policies (policies_file=%q): %w", cfg.PoliciesFile, err)
	}
	var errs []error
	for i, p := range ps {
		if err := p.Validate(fmt.Sprintf("policies_file[%d]", i)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("policies_file=%q: %w", cfg.PoliciesFile, err)
	}
	return ps, nil
}

// operatorToken returns the operator token of cfg.
func (cfg Config) operatorToken() (string, error) {
	if cfg.OperatorTokenFile == "" {
		return cfg.OperatorToken, nil
	}
	b, err := os.ReadFile(cfg.OperatorTokenFile)
	if err != nil {
		return "", fmt.Errorf("read operator token (operator_token_file=%q): %w", cfg.OperatorTokenFile, err)
	}
	return strings.TrimSpace(string(b)), nil
}
