package alerting

import (
	"errors"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	amconfig "github.com/prometheus/alertmanager/config"
	"github.com/prometheus/common/model"

	"github.com/novacron/novacron/internal/confutil"
)

// Config configures alerting: rule evaluation, event alerts, thresholds,
// notifications and forwarding. YAML section `alerting`.
type Config struct {
	// Enabled turns alerting on. Default true.
	Enabled bool `yaml:"enabled"`
	// RuleFiles are paths or globs of Prometheus rule files (alerting and
	// recording rules). Default none.
	RuleFiles []string `yaml:"rule_files"`
	// DefaultRules loads the rule set shipped in alerting/rules (VM and
	// host health, anomaly and forecast alerts). Default true.
	DefaultRules bool `yaml:"default_rules"`
	// EvaluationInterval is how often rule groups without their own
	// interval are evaluated. Default 30s; must be > 0.
	EvaluationInterval time.Duration `yaml:"evaluation_interval"`
	// OutageTolerance is how long NovaCron may have been down for the
	// `for` state of alerts to be restored at start. Default 1h; must be
	// >= 0.
	OutageTolerance time.Duration `yaml:"outage_tolerance"`
	// ForGracePeriod is the least time a restored pending alert still
	// waits before firing. Default 10m; must be >= 0.
	ForGracePeriod time.Duration `yaml:"for_grace_period"`
	// ResendDelay is how often firing alerts are re-sent to the
	// notification pipeline and to forwarded Alertmanagers. Default 1m;
	// must be > 0.
	ResendDelay time.Duration `yaml:"resend_delay"`
	// ExternalURL is NovaCron's URL as people reach it, used in alert
	// generator links and {{ $externalURL }}. Default
	// "http://127.0.0.1:8090".
	ExternalURL string `yaml:"external_url"`
	// ExternalLabels are added to every alert. Default none.
	ExternalLabels map[string]string `yaml:"external_labels"`
	// DashboardURL is a Go template for the dashboard link annotation of
	// event alerts, with fields .VMID, .Host, .Metric and .ExternalURL.
	// Default the Grafana VM dashboard on localhost; "" adds no link.
	DashboardURL string `yaml:"dashboard_url"`
	// EventResolveTimeout resolves an event alert that no event has
	// refreshed for this long: forecast breaches and incidents, which have
	// no closing event, and anomalies whose closing event was lost.
	// Default 1h; must be > 0.
	EventResolveTimeout time.Duration `yaml:"event_resolve_timeout"`
	// HistoryRetention is how long alert state changes are kept. Default
	// 30 days; 0 keeps them forever.
	HistoryRetention time.Duration `yaml:"history_retention"`
	// RemediationInhibit adds an inhibition rule muting every alert of a
	// VM while an action runs on it (an alert with
	// remediation="in_progress" and the same vm_id). Default true.
	RemediationInhibit bool `yaml:"remediation_inhibit"`
	// Notifications configures routing and receivers.
	Notifications NotificationsConfig `yaml:"notifications"`
	// Forward sends every alert to external Alertmanagers as well.
	Forward ForwardConfig `yaml:"forward"`
}

// NotificationsConfig configures the embedded Alertmanager pipeline.
type NotificationsConfig struct {
	// ConfigFile is an Alertmanager configuration file (route, receivers,
	// inhibit_rules, templates, time_intervals). Default "": use Config,
	// or the built-in configuration, which routes to a receiver that
	// sends nothing.
	ConfigFile string `yaml:"config_file"`
	// Config is the same configuration inline, as a YAML string; only one
	// of config_file and config may be set. Default "".
	Config string `yaml:"config"`
	// Retention is how long expired silences and the notification log are
	// kept. Default 120h; must be > 0.
	Retention time.Duration `yaml:"retention"`
	// MaintenanceInterval is how often silences and the notification log
	// are garbage-collected and saved to the state database. Default 15m;
	// must be > 0.
	MaintenanceInterval time.Duration `yaml:"maintenance_interval"`
}

// ForwardConfig configures forwarding to external Alertmanagers through
// their API v2.
type ForwardConfig struct {
	// URLs are the Alertmanagers' base URLs (http://alertmanager:9093);
	// every alert goes to each. Default none.
	URLs []string `yaml:"urls"`
	// Timeout bounds each request. Default 10s; must be > 0.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultDashboardURL is the default of dashboard_url: the Grafana VM
// detail dashboard shipped in grafana/dashboards.
const DefaultDashboardURL = "http://127.0.0.1:3000/d/novacron-vm-detail/vm-detail?var-vm_id={{ .VMID }}"

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{
		Enabled:             true,
		DefaultRules:        true,
		EvaluationInterval:  30 * time.Second,
		OutageTolerance:     time.Hour,
		ForGracePeriod:      10 * time.Minute,
		ResendDelay:         time.Minute,
		ExternalURL:         "http://127.0.0.1:8090",
		DashboardURL:        DefaultDashboardURL,
		EventResolveTimeout: time.Hour,
		HistoryRetention:    30 * 24 * time.Hour,
		RemediationInhibit:  true,
		Notifications:       NotificationsConfig{Retention: 120 * time.Hour, MaintenanceInterval: 15 * time.Minute},
		Forward:             ForwardConfig{Timeout: 10 * time.Second},
	}
}

// Validate returns every problem with cfg, joined, worded with the YAML
// keys. It never changes cfg and reads no files.
func (cfg Config) Validate() error {
	var errs []error
	for i, p := range cfg.RuleFiles {
		if p == "" {
			errs = append(errs, confutil.Errorf("rule_files", "entry %d is empty", i))
		} else if _, err := filepath.Match(p, ""); err != nil {
			errs = append(errs, confutil.Errorf("rule_files", "bad pattern %q: %v", p, err))
		}
	}
	if cfg.EvaluationInterval <= 0 {
		errs = append(errs, confutil.Errorf("evaluation_interval", "must be > 0, got %s", cfg.EvaluationInterval))
	}
	if cfg.OutageTolerance < 0 {
		errs = append(errs, confutil.Errorf("outage_tolerance", "must be >= 0, got %s", cfg.OutageTolerance))
	}
	if cfg.ForGracePeriod < 0 {
		errs = append(errs, confutil.Errorf("for_grace_period", "must be >= 0, got %s", cfg.ForGracePeriod))
	}
	if cfg.ResendDelay <= 0 {
		errs = append(errs, confutil.Errorf("resend_delay", "must be > 0, got %s", cfg.ResendDelay))
	}
	if err := checkHTTPURL(cfg.ExternalURL); err != nil {
		errs = append(errs, confutil.Errorf("external_url", "%v", err))
	}
	for k := range cfg.ExternalLabels {
		if !model.LegacyValidation.IsValidLabelName(k) || strings.HasPrefix(k, "__") {
			errs = append(errs, confutil.Errorf("external_labels", "invalid label name %q", k))
		}
	}
	if cfg.DashboardURL != "" {
		if _, err := template.New("dashboard_url").Option("missingkey=error").Parse(cfg.DashboardURL); err != nil {
			errs = append(errs, confutil.Errorf("dashboard_url", "%v", err))
		}
	}
	if cfg.EventResolveTimeout <= 0 {
		errs = append(errs, confutil.Errorf("event_resolve_timeout", "must be > 0, got %s", cfg.EventResolveTimeout))
	}
	if cfg.HistoryRetention < 0 {
		errs = append(errs, confutil.Errorf("history_retention", "must be >= 0, got %s", cfg.HistoryRetention))
	}
	n := cfg.Notifications
	if n.ConfigFile != "" && n.Config != "" {
		errs = append(errs, confutil.Errorf("notifications.config", "only one of config_file and config may be set"))
	}
	if n.Config != "" {
		if _, err := amconfig.Load(n.Config); err != nil {
			errs = append(errs, confutil.Errorf("notifications.config", "%v", err))
		}
	}
	if n.Retention <= 0 {
		errs = append(errs, confutil.Errorf("notifications.retention", "must be > 0, got %s", n.Retention))
	}
	if n.MaintenanceInterval <= 0 {
		errs = append(errs, confutil.Errorf("notifications.maintenance_interval", "must be > 0, got %s", n.MaintenanceInterval))
	}
	for _, u := range cfg.Forward.URLs {
		if err := checkHTTPURL(u); err != nil {
			errs = append(errs, confutil.Errorf("forward.urls", "%v", err))
		}
	}
	if cfg.Forward.Timeout <= 0 {
		errs = append(errs, confutil.Errorf("forward.timeout", "must be > 0, got %s", cfg.Forward.Timeout))
	}
	return errors.Join(errs...)
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an http or https URL with a host, got " + strconv.Quote(s))
	}
	return nil
}
