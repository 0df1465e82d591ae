package alerting

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/catalog"
)

// Threshold is an alert without PromQL: a metric, a label selector, a
// comparison and a duration, such as "novacron_vm_cpu_usage_ratio above
// 0.9 for 10m on tenant=prod". Thresholds live in the state database, are
// edited through the API and are compiled into one alerting rule each, in
// the rule group "thresholds".
type Threshold struct {
	// ID is the threshold's identifier: lower-case letters, digits and
	// dashes, at most 64. Generated on creation when empty.
	ID string `json:"id"`
	// Name is the alertname. Default "ThresholdExceeded".
	Name string `json:"name"`
	// Metric is the metric name (see docs/metrics.md). Required.
	Metric string `json:"metric"`
	// Selector narrows the series with PromQL label matchers, braces
	// optional: `tenant="prod", host=~"host-0[1-3]"`. Default all series.
	Selector string `json:"selector,omitempty"`
	// Op is the comparison: >, >=, <, <=, == or !=. Required.
	Op string `json:"op"`
	// Value is what the metric is compared with, in the metric's unit
	// (ratios are 0..1: 90% is 0.9).
	Value float64 `json:"value"`
	// For is how long the condition must hold before the alert fires, a
	// Prometheus duration ("10m"). Default "0s": at once.
	For model.Duration `json:"for,omitempty"`
	// Severity is "info", "warning" (default) or "critical".
	Severity string `json:"severity,omitempty"`
	// Summary is the alert's summary annotation; it may use Prometheus
	// template syntax ({{ $labels.vm }}, {{ $value }}). Default a sentence
	// naming the metric, the comparison and the VM or host.
	Summary string `json:"summary,omitempty"`
	// Labels are added to the alert.
	Labels map[string]string `json:"labels,omitempty"`
	// CreatedAt and UpdatedAt are set by the server.
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// thresholdsIdentifier is the rule "file" of the compiled thresholds.
const thresholdsIdentifier = "novacron:thresholds"

// ThresholdGroup is the name of the rule group thresholds compile into.
const ThresholdGroup = "thresholds"

var thresholdID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

var thresholdOps = map[string]bool{">": true, ">=": true, "<": true, "<=": true, "==": true, "!=": true}

// Expr returns the PromQL expression the threshold compiles to.
func (t Threshold) Expr() string {
	sel := strings.TrimSpace(t.Selector)
	sel = strings.TrimSuffix(strings.TrimPrefix(sel, "{"), "}")
	return fmt.Sprintf("%s{%s} %s %s", t.Metric, strings.TrimSpace(sel), t.Op, strconv.FormatFloat(t.Value, 'g', -1, 64))
}

// withDefaults returns t with empty optional fields filled in.
func (t Threshold) withDefaults() Threshold {
	if t.Name == "" {
		t.Name = "ThresholdExceeded"
	}
	if t.Severity == "" {
		t.Severity = "warning"
	}
	return t
}

// Validate returns every problem with t (after defaults), as one
// novacron EINVALID error naming the fields.
func (t Threshold) Validate() error {
	var errs []string
	if t.ID != "" && !thresholdID.MatchString(t.ID) {
		errs = append(errs, fmt.Sprintf("id %q: must be lower-case letters, digits and dashes, at most 64", t.ID))
	}
	if !model.UTF8Validation.IsValidMetricName(t.Name) || !model.LegacyValidation.IsValidMetricName(t.Name) {
		errs = append(errs, fmt.Sprintf("name %q: must be a valid alert name ([a-zA-Z_][a-zA-Z0-9_]*)", t.Name))
	}
	if t.Metric == "" {
		errs = append(errs, "metric is required")
	} else if !model.LegacyValidation.IsValidMetricName(t.Metric) {
		errs = append(errs, fmt.Sprintf("metric %q: not a valid metric name", t.Metric))
	}
	if !thresholdOps[t.Op] {
		errs = append(errs, fmt.Sprintf("op %q: must be one of >, >=, <, <=, ==, !=", t.Op))
	}
	switch t.Severity {
	case "info", "warning", "critical":
	default:
		errs = append(errs, fmt.Sprintf("severity %q: must be info, warning or critical", t.Severity))
	}
	if t.For < 0 {
		errs = append(errs, "for: must be >= 0")
	}
	for k := range t.Labels {
		if !model.LabelName(k).IsValid() || strings.HasPrefix(k, "__") || k == "alertname" || k == "severity" || k == "threshold_id" {
			errs = append(errs, fmt.Sprintf("labels: %q cannot be set", k))
		}
	}
	if len(errs) == 0 {
		p := parser.NewParser(parser.Options{})
		if _, err := p.ParseExpr(t.Expr()); err != nil {
			errs = append(errs, fmt.Sprintf("selector %q: %v", t.Selector, err))
		}
	}
	if len(errs) > 0 {
		return novacron.Errorf(novacron.EINVALID, "invalid threshold: %s", strings.Join(errs, "; "))
	}
	return nil
}

// rule returns the alerting rule the threshold compiles to.
func (t Threshold) rule() rulefmt.Rule {
	lbls := map[string]string{"severity": t.Severity, "threshold_id": t.ID}
	for k, v := range t.Labels {
		lbls[k] = v
	}
	summary := t.Summary
	if summary == "" {
		subject := `{{ with $labels.vm }}VM {{ . }}{{ else }}{{ with $labels.vm_id }}VM {{ . }}{{ else }}{{ with $labels.host }}host {{ . }}{{ else }}{{ $labels }}{{ end }}{{ end }}{{ end }}`
		summary = fmt.Sprintf("%s: %s is {{ $value | humanize }} (threshold %s %s)", subject, t.Metric, t.Op, strconv.FormatFloat(t.Value, 'g', -1, 64))
	}
	return rulefmt.Rule{
		Alert:  t.Name,
		Expr:   t.Expr(),
		For:    t.For,
		Labels: lbls,
		Annotations: map[string]string{
			"summary":   summary,
			"threshold": fmt.Sprintf("%s %s %s for %s", t.Metric, t.Op, strconv.FormatFloat(t.Value, 'g', -1, 64), t.For),
			"evidence":  t.Expr(),
		},
	}
}

// compileThresholds renders thresholds as a Prometheus rule file.
func compileThresholds(ts []Threshold) ([]byte, error) {
	g := rulefmt.RuleGroup{Name: ThresholdGroup}
	for _, t := range ts {
		g.Rules = append(g.Rules, t.rule())
	}
	b, err := yaml.Marshal(rulefmt.RuleGroups{Groups: []rulefmt.RuleGroup{g}})
	if err != nil {
		return nil, fmt.Errorf("render thresholds: %w", err)
	}
	return b, nil
}

// KnownMetric reports whether name is in NovaCron's metric catalogue, for
// clients that want to warn about thresholds on unknown metrics.
func KnownMetric(name string) bool {
	_, ok := catalog.Lookup(name)
	return ok
}

func newThresholdID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t-" + hex.EncodeToString(b[:])
}

func (s *store) thresholds(ctx context.Context) ([]Threshold, error) {
	rows, err := s.db.Query(ctx, `SELECT id, spec, created_at, updated_at FROM alerting_thresholds ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list thresholds: %w", err)
	}
	defer rows.Close()
	var out []Threshold
	for rows.Next() {
		var id, spec string
		var c, u int64
		if err := rows.Scan(&id, &spec, &c, &u); err != nil {
			return nil, fmt.Errorf("list thresholds: %w", err)
		}
		var t Threshold
		if err := json.Unmarshal([]byte(spec), &t); err != nil {
			return nil, fmt.Errorf("decode threshold %s: %w", id, err)
		}
		t.ID, t.CreatedAt, t.UpdatedAt = id, fromMillis(c), fromMillis(u)
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *store) threshold(ctx context.Context, id string) (Threshold, error) {
	var spec string
	var c, u int64
	err := s.db.QueryRow(ctx, `SELECT spec, created_at, updated_at FROM alerting_thresholds WHERE id = ?`, id).Scan(&spec, &c, &u)
	if errors.Is(err, sql.ErrNoRows) {
		return Threshold{}, novacron.Errorf(novacron.ENOTFOUND, "threshold %q not found", id)
	}
	if err != nil {
		return Threshold{}, fmt.Errorf("read threshold %s: %w", id, err)
	}
	var t Threshold
	if err := json.Unmarshal([]byte(spec), &t); err != nil {
		return Threshold{}, fmt.Errorf("decode threshold %s: %w", id, err)
	}
	t.ID, t.CreatedAt, t.UpdatedAt = id, fromMillis(c), fromMillis(u)
	return t, nil
}

func thresholdSpec(t Threshold) string {
	t.CreatedAt, t.UpdatedAt = time.Time{}, time.Time{}
	b, _ := json.Marshal(t)
	return string(b)
}

// insertThreshold stores a new threshold; ECONFLICT when the ID exists.
func (s *store) insertThreshold(ctx context.Context, t Threshold, now time.Time) error {
	res, err := s.db.Exec(ctx, `INSERT INTO alerting_thresholds (id, spec, created_at, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		t.ID, thresholdSpec(t), now.UnixMilli(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("store threshold %s: %w", t.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return novacron.Errorf(novacron.ECONFLICT, "threshold %q already exists", t.ID)
	}
	return nil
}

func (s *store) updateThreshold(ctx context.Context, t Threshold, now time.Time) error {
	res, err := s.db.Exec(ctx, `UPDATE alerting_thresholds SET spec = ?, updated_at = ? WHERE id = ?`, thresholdSpec(t), now.UnixMilli(), t.ID)
	if err != nil {
		return fmt.Errorf("update threshold %s: %w", t.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return novacron.Errorf(novacron.ENOTFOUND, "threshold %q not found", t.ID)
	}
	return nil
}

func (s *store) deleteThreshold(ctx context.Context, id string) error {
	res, err := s.db.Exec(ctx, `DELETE FROM alerting_thresholds WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete threshold %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return novacron.Errorf(novacron.ENOTFOUND, "threshold %q not found", id)
	}
	return nil
}

// Thresholds returns every threshold, by ID.
func (a *Alerting) Thresholds(ctx context.Context) ([]Threshold, error) { return a.st.thresholds(ctx) }

// Threshold returns one threshold; not_found when there is none.
func (a *Alerting) Threshold(ctx context.Context, id string) (Threshold, error) {
	return a.st.threshold(ctx, id)
}

// CreateThreshold validates and stores t, then reloads the rules so it is
// evaluated from the next interval on.
func (a *Alerting) CreateThreshold(ctx context.Context, t Threshold) (Threshold, error) {
	t = t.withDefaults()
	if t.ID == "" {
		t.ID = newThresholdID()
	}
	if err := t.Validate(); err != nil {
		return Threshold{}, err
	}
	if err := a.st.insertThreshold(ctx, t, a.now()); err != nil {
		return Threshold{}, err
	}
	if err := a.reloadRules(ctx); err != nil {
		return Threshold{}, err
	}
	return a.st.threshold(ctx, t.ID)
}

// UpdateThreshold replaces the threshold with t's ID and reloads the
// rules.
func (a *Alerting) UpdateThreshold(ctx context.Context, t Threshold) (Threshold, error) {
	t = t.withDefaults()
	if err := t.Validate(); err != nil {
		return Threshold{}, err
	}
	if err := a.st.updateThreshold(ctx, t, a.now()); err != nil {
		return Threshold{}, err
	}
	if err := a.reloadRules(ctx); err != nil {
		return Threshold{}, err
	}
	return a.st.threshold(ctx, t.ID)
}

// DeleteThreshold removes a threshold and reloads the rules; its alerts
// resolve.
func (a *Alerting) DeleteThreshold(ctx context.Context, id string) error {
	if err := a.st.deleteThreshold(ctx, id); err != nil {
		return err
	}
	return a.reloadRules(ctx)
}
