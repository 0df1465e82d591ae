package tsdbstore

import (
	"errors"
	"fmt"
	"time"
)

// Config configures the embedded store.
type Config struct {
	// Path is the data directory, created when missing. Default
	// "data/tsdb"; required.
	Path string `yaml:"path"`
	// Retention is how long samples are kept. Default 15 days; must be >
	// 0.
	Retention time.Duration `yaml:"retention"`
	// OutOfOrderWindow accepts samples up to this much older than the
	// newest sample of the store, for collectors that deliver late or
	// out of order. Default 1h; 0 rejects (and counts) every sample older
	// than its series' newest.
	OutOfOrderWindow time.Duration `yaml:"out_of_order_window"`
	// QueryTimeout bounds each PromQL query. Default 2m; must be > 0.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// QueryMaxSamples caps the samples one query may load into memory.
	// Default 50000000; must be > 0.
	QueryMaxSamples int `yaml:"query_max_samples"`
	// LookbackDelta is how far back an instant selector looks for a
	// sample. Default 5m; must be > 0.
	LookbackDelta time.Duration `yaml:"lookback_delta"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{
		Path:             "data/tsdb",
		Retention:        15 * 24 * time.Hour,
		OutOfOrderWindow: time.Hour,
		QueryTimeout:     2 * time.Minute,
		QueryMaxSamples:  50_000_000,
		LookbackDelta:    5 * time.Minute,
	}
}

// Validate returns every problem with cfg, joined, worded with the YAML
// keys. It never changes cfg.
func (cfg Config) Validate() error {
	var errs []error
	if cfg.Path == "" {
		errs = append(errs, errors.New("path is required"))
	}
	if cfg.Retention <= 0 {
		errs = append(errs, fmt.Errorf("retention must be > 0, got %s", cfg.Retention))
	}
	if cfg.OutOfOrderWindow < 0 {
		errs = append(errs, fmt.Errorf("out_of_order_window must be >= 0, got %s", cfg.OutOfOrderWindow))
	}
	if cfg.QueryTimeout <= 0 {
		errs = append(errs, fmt.Errorf("query_timeout must be > 0, got %s", cfg.QueryTimeout))
	}
	if cfg.QueryMaxSamples <= 0 {
		errs = append(errs, fmt.Errorf("query_max_samples must be > 0, got %d", cfg.QueryMaxSamples))
	}
	if cfg.LookbackDelta <= 0 {
		errs = append(errs, fmt.Errorf("lookback_delta must be > 0, got %s", cfg.LookbackDelta))
	}
	return errors.Join(errs...)
}
