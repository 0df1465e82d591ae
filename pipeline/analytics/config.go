package analytics

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/novacron/novacron/internal/confutil"
	"github.com/novacron/novacron/pipeline/analytics/correlate"
)

// Checkpoint store types.
const (
	// CheckpointTopic keeps checkpoints on a compacted bus topic, so any
	// processor on any machine can take over a partition.
	CheckpointTopic = "topic"
	// CheckpointDir keeps checkpoints as files under a directory: for one
	// processor (embedded mode), or processors sharing a file system.
	CheckpointDir = "dir"
)

// Config configures the analytics stage. YAML keys are snake_case.
type Config struct {
	// Enabled runs the stage in the processor role. Default true.
	Enabled bool `yaml:"enabled"`
	// Group is the consumer group on the samples topic. Default
	// "novacron-analytics"; must not be empty and must differ from the
	// ingest group.
	Group string `yaml:"group"`
	// MaxPollRecords caps the records handled per poll. Default 2000; at
	// least 1.
	MaxPollRecords int `yaml:"max_poll_records"`
	// MaxSeries bounds the series modelled by one processor; samples of
	// further series are counted as dropped (reason "series_limit").
	// Default 2000000; at least 1.
	MaxSeries int `yaml:"max_series"`
	// DerivedInterval is the sample time between two points of a derived
	// series (baseline, band, score): the score written is the largest
	// since the previous point. Default 1m; 0 writes one point per sample.
	DerivedInterval time.Duration `yaml:"derived_interval"`
	// MaxClockSkew drops samples stamped later than now plus this
	// (reason "future"). Default 1h; 0 disables the check.
	MaxClockSkew time.Duration `yaml:"max_clock_skew"`
	// MaxSampleAge drops samples older than now minus this (reason
	// "too_old"): a live stage should not learn from a replay of old
	// data. Default 0: disabled (history is welcome, see Backfill).
	MaxSampleAge time.Duration `yaml:"max_sample_age"`
	// Anomaly configures anomaly events.
	Anomaly AnomalyConfig `yaml:"anomaly"`
	// Forecast configures capacity forecasts.
	Forecast ForecastConfig `yaml:"forecast"`
	// Checkpoint configures where model state is kept.
	Checkpoint CheckpointConfig `yaml:"checkpoint"`
	// Correlation groups anomalies into incidents (package correlate): a
	// consumer group of its own on the events topic, run beside the stage.
	Correlation correlate.Config `yaml:"correlation"`
	// Rules choose the models for each series: the first rule whose
	// selector matches wins; a series no rule matches is not modelled.
	// Default: DefaultRules. An empty list models nothing.
	Rules []Rule `yaml:"rules"`
}

// AnomalyConfig is the hysteresis that turns scores into events.
type AnomalyConfig struct {
	// OpenScore opens an anomaly when a sample scores at least this and
	// lies at least MinDeviation from the expected value. Default 0.9; in
	// (0, 1].
	OpenScore float64 `yaml:"open_score"`
	// MinDeviation is how far from the expected value a sample must lie
	// to open an anomaly, in widths of the model's band on that side (1:
	// on the band's edge). The score says how unusual a sample is; this
	// says it is far enough from normal to be worth a person's attention,
	// so a high score on a sample inside or just outside the band (a
	// brief burst of I/O, a weekend dip starting) opens nothing. Default
	// 2.5; 0 opens on the score alone.
	MinDeviation float64 `yaml:"min_deviation"`
	// OpenDeviation opens an anomaly whatever the score when a sample lies
	// at least this many band widths from the expected value (once the
	// detector has warmed up): a jump that far is an anomaly even when
	// the detector rests after an earlier alarm or has learnt that the
	// series is noisy. Default 10; 0 disables; otherwise at least
	// min_deviation.
	OpenDeviation float64 `yaml:"open_deviation"`
	// CloseAfter closes an open anomaly once this much sample time has
	// passed with every sample inside the model's band and scoring below
	// OpenScore. Default 10m; positive.
	CloseAfter time.Duration `yaml:"close_after"`
	// UpdateInterval is the least sample time between two updated events
	// of one anomaly, sent only when its peak score grew. Default 15m;
	// 0 sends no updated events.
	UpdateInterval time.Duration `yaml:"update_interval"`
}

// ForecastConfig configures the capacity forecasts of rules with forecast
// set.
type ForecastConfig struct {
	// Step is the resolution of the history a forecast is fitted on:
	// samples are averaged into points this far apart. Default 5m;
	// positive.
	Step time.Duration `yaml:"step"`
	// History is how many points of history are kept per series (memory:
	// 4 bytes each), at least trend_window's. Before a day has taught the
	// daily profile the trend is fitted to all of it. Default 48 (4h at
	// 5m); at least 12.
	History int `yaml:"history"`
	// Interval is the sample time between two forecasts of a series.
	// Default 15m; at least step.
	Interval time.Duration `yaml:"interval"`
	// Horizons are the lead times written as forecast series, each with a
	// horizon label. Default [1h, 6h]; each a positive multiple of step,
	// at most horizon.
	Horizons []time.Duration `yaml:"horizons"`
	// Horizon is how far ahead the time to threshold is sought; a breach
	// predicted within it raises a forecast_breach event. Default 12h; a
	// positive multiple of step.
	Horizon time.Duration `yaml:"horizon"`
	// TrendWindow is the span of recent history the trend is fitted to
	// once a day of history has taught the series' daily profile (before
	// that, the whole history is used, so the daily swing weighs less).
	// Shorter reacts sooner to a leak or a filling disk; longer is
	// steadier. Default 3h; a positive multiple of step, at least 3 steps.
	TrendWindow time.Duration `yaml:"trend_window"`
}

// CheckpointConfig configures the model-state checkpoints.
type CheckpointConfig struct {
	// Store is "topic" (a compacted bus topic: processors anywhere can take
	// over a partition) or "dir" (files under dir). Default "topic".
	Store string `yaml:"store"`
	// Topic is the compacted topic of store "topic". Default
	// "novacron.analytics.state".
	Topic string `yaml:"topic"`
	// Dir is the directory of store "dir". Default "" : the binary uses
	// <data_dir>/analytics.
	Dir string `yaml:"dir"`
	// Interval is the wall-clock time between checkpoints. Records are
	// acknowledged on the bus only when a checkpoint covering them is
	// saved, so this bounds what a crash re-reads. Default 30s; positive.
	Interval time.Duration `yaml:"interval"`
	// MaxRecords forces a checkpoint once this many records are waiting
	// for one (each costs about 100 bytes meanwhile: its payload is
	// released once processed). A checkpoint costs time in proportion to
	// the series held, not to the records, so at high rates this must
	// leave seconds between checkpoints: at 100,000 records/s the
	// default makes one every 10s. On the in-process bus, whose
	// partitions hold the unacknowledged records, the binary lowers it to
	// half of bus.memory.max_records_per_partition. Default 1000000; at
	// least 1.
	MaxRecords int `yaml:"max_records"`
}

// Rule selects series and says which models run on them.
type Rule struct {
	// Metric is a regular expression (RE2, anchored) the metric name must
	// match. Required.
	Metric string `yaml:"metric"`
	// Labels are regular expressions (anchored) that the named labels must
	// match; an absent label is the empty string. Default: none.
	Labels map[string]string `yaml:"labels"`
	// Rate converts a cumulative counter into a per-second rate before
	// modelling (resets handled as rate() does). Default false.
	Rate bool `yaml:"rate"`
	// Detect runs the default streaming anomaly detector and writes
	// baseline, band and score series. Default false.
	Detect bool `yaml:"detect"`
	// Forecast keeps history, writes forecast series and, when Threshold
	// is set, time to threshold. Default false.
	Forecast bool `yaml:"forecast"`
	// Threshold is the capacity limit forecast against (a ratio of 0.95:
	// "disk full"); 0 means none.
	Threshold float64 `yaml:"threshold"`
	// Skip makes matching series unmodelled (to carve exceptions out of
	// later rules). Default false.
	Skip bool `yaml:"skip"`
}

// DefaultRules returns the default model selection for the metric
// catalogue: baselines and anomaly detection on the usage ratios and on
// the rates of the I/O and steal counters, forecasts with a capacity
// threshold on memory and disk usage (and CPU, whose threshold is a
// saturation level rather than a hard limit).
func DefaultRules() []Rule {
	return []Rule{
		{Metric: `novacron_(vm|host)_cpu_usage_ratio`, Detect: true, Forecast: true, Threshold: 0.95},
		{Metric: `novacron_(vm|host)_memory_usage_ratio`, Detect: true, Forecast: true, Threshold: 0.95},
		{Metric: `novacron_vm_disk_usage_ratio`, Detect: true, Forecast: true, Threshold: 0.95},
		{Metric: `novacron_vm_cpu_steal_seconds_total`, Rate: true, Detect: true},
		{Metric: `novacron_vm_(disk_(read|write)_(bytes|ops)|network_(receive|transmit)_(bytes|packets))_total`, Rate: true, Detect: true},
	}
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{
		Enabled:         true,
		Group:           "novacron-analytics",
		MaxPollRecords:  2000,
		MaxSeries:       2_000_000,
		DerivedInterval: time.Minute,
		MaxClockSkew:    time.Hour,
		Anomaly: AnomalyConfig{
			OpenScore:      0.9,
			MinDeviation:   2.5,
			OpenDeviation:  10,
			CloseAfter:     10 * time.Minute,
			UpdateInterval: 15 * time.Minute,
		},
		Forecast: ForecastConfig{
			Step:        5 * time.Minute,
			History:     48,
			Interval:    15 * time.Minute,
			Horizons:    []time.Duration{time.Hour, 6 * time.Hour},
			Horizon:     12 * time.Hour,
			TrendWindow: 3 * time.Hour,
		},
		Checkpoint: CheckpointConfig{
			Store:      CheckpointTopic,
			Topic:      "novacron.analytics.state",
			Interval:   30 * time.Second,
			MaxRecords: 1_000_000,
		},
		Correlation: correlate.NewDefaultConfig(),
		Rules:       DefaultRules(),
	}
}

// Validate reports every problem, worded with the YAML keys. It does not
// change the configuration.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, confutil.Errorf(field, format, args...))
	}
	if strings.TrimSpace(c.Group) == "" {
		add("group", "must not be empty")
	}
	if c.MaxPollRecords < 1 {
		add("max_poll_records", "must be at least 1, got %d", c.MaxPollRecords)
	}
	if c.MaxSeries < 1 {
		add("max_series", "must be at least 1, got %d", c.MaxSeries)
	}
	if c.DerivedInterval < 0 {
		add("derived_interval", "must not be negative, got %s", c.DerivedInterval)
	}
	if c.MaxClockSkew < 0 {
		add("max_clock_skew", "must not be negative, got %s", c.MaxClockSkew)
	}
	if c.MaxSampleAge < 0 {
		add("max_sample_age", "must not be negative, got %s", c.MaxSampleAge)
	}
	a := c.Anomaly
	if !(a.OpenScore > 0 && a.OpenScore <= 1) {
		add("anomaly.open_score", "must be in (0, 1], got %v", a.OpenScore)
	}
	if !(a.MinDeviation >= 0) || math.IsInf(a.MinDeviation, 0) {
		add("anomaly.min_deviation", "must be a finite number at least 0, got %v", a.MinDeviation)
	}
	if !(a.OpenDeviation == 0 || a.OpenDeviation >= a.MinDeviation) || math.IsInf(a.OpenDeviation, 0) {
		add("anomaly.open_deviation", "must be 0 or a finite number at least anomaly.min_deviation (%v), got %v", a.MinDeviation, a.OpenDeviation)
	}
	if a.CloseAfter <= 0 {
		add("anomaly.close_after", "must be positive, got %s", a.CloseAfter)
	}
	if a.UpdateInterval < 0 {
		add("anomaly.update_interval", "must not be negative, got %s", a.UpdateInterval)
	}
	f := c.Forecast
	if f.Step <= 0 || f.Step%time.Millisecond != 0 {
		add("forecast.step", "must be a positive whole number of milliseconds, got %s", f.Step)
	}
	if f.History < 12 {
		add("forecast.history", "must be at least 12 points, got %d", f.History)
	}
	if f.Step > 0 && f.Interval < f.Step {
		add("forecast.interval", "must be at least forecast.step (%s), got %s", f.Step, f.Interval)
	}
	if f.Step > 0 && (f.Horizon <= 0 || f.Horizon%f.Step != 0) {
		add("forecast.horizon", "must be a positive multiple of forecast.step (%s), got %s", f.Step, f.Horizon)
	}
	if f.Step > 0 && (f.TrendWindow < 3*f.Step || f.TrendWindow%f.Step != 0 || int(f.TrendWindow/f.Step) > f.History) {
		add("forecast.trend_window", "must be a multiple of forecast.step (%s) of at least 3 steps and at most forecast.history (%d) steps, got %s", f.Step, f.History, f.TrendWindow)
	}
	for i, h := range f.Horizons {
		if f.Step > 0 && (h <= 0 || h%f.Step != 0 || h > f.Horizon) {
			add(fmt.Sprintf("forecast.horizons[%d]", i), "must be a positive multiple of forecast.step (%s) no longer than forecast.horizon (%s), got %s", f.Step, f.Horizon, h)
		}
	}
	k := c.Checkpoint
	switch k.Store {
	case CheckpointTopic:
		if k.Topic == "" {
			add("checkpoint.topic", "must not be empty when checkpoint.store is %q", CheckpointTopic)
		}
	case CheckpointDir:
	default:
		add("checkpoint.store", "must be %q or %q, got %q", CheckpointTopic, CheckpointDir, k.Store)
	}
	if k.Interval <= 0 {
		add("checkpoint.interval", "must be positive, got %s", k.Interval)
	}
	if k.MaxRecords < 1 {
		add("checkpoint.max_records", "must be at least 1, got %d", k.MaxRecords)
	}
	if c.Correlation.Enabled {
		if err := c.Correlation.Validate(); err != nil {
			errs = append(errs, confutil.Prefix("correlation", err))
		}
	}
	for i, r := range c.Rules {
		if err := r.validate(); err != nil {
			errs = append(errs, confutil.Prefix(fmt.Sprintf("rules[%d]", i), err))
		}
	}
	return errors.Join(errs...)
}

func (r Rule) validate() error {
	var errs []error
	if r.Metric == "" {
		errs = append(errs, confutil.Errorf("metric", "must not be empty"))
	} else if _, err := regexp.Compile("^(?:" + r.Metric + ")$"); err != nil {
		errs = append(errs, confutil.Errorf("metric", "invalid regular expression %q: %v", r.Metric, err))
	}
	for name, re := range r.Labels {
		if _, err := regexp.Compile("^(?:" + re + ")$"); err != nil {
			errs = append(errs, confutil.Errorf("labels."+name, "invalid regular expression %q: %v", re, err))
		}
	}
	if r.Threshold != 0 && !r.Forecast {
		errs = append(errs, confutil.Errorf("threshold", "needs forecast: true"))
	}
	if !r.Skip && !r.Detect && !r.Forecast {
		errs = append(errs, confutil.Errorf("detect", "a rule must set detect, forecast or skip"))
	}
	return errors.Join(errs...)
}
