package storage

import (
	"errors"
	"fmt"
	"time"
)

// SenderConfig configures the sender chain in front of a Writer.
type SenderConfig struct {
	// QueueCapacity is the most batches waiting to be written; Enqueue
	// blocks while the queue holds this many. Default 64; must be > 0.
	QueueCapacity int `yaml:"queue_capacity"`
	// QueueMaxSamples bounds the samples held by queued batches, so memory
	// stays bounded whatever the batch size; a single batch larger than
	// this is admitted only into an empty queue. Default 1000000; 0 means
	// no bound beyond queue_capacity.
	QueueMaxSamples int `yaml:"queue_max_samples"`
	// Concurrency is the number of batches written at once. Default 4;
	// must be > 0.
	Concurrency int `yaml:"concurrency"`
	// MinBackoff is the wait before the first retry; it doubles with each
	// further retry, with jitter. Default 100ms; must be > 0.
	MinBackoff time.Duration `yaml:"min_backoff"`
	// MaxBackoff caps the wait between retries. Default 10s; must be >=
	// min_backoff. Retryable failures are retried until they succeed or
	// the sender shuts down: the data stays unacknowledged on the bus
	// meanwhile, and the full queue pushes back on the producer.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// Timeout bounds each write attempt. Default 30s; 0 means no timeout
	// beyond the Writer's own.
	Timeout time.Duration `yaml:"timeout"`
}

// NewDefaultSenderConfig returns the default sender configuration.
func NewDefaultSenderConfig() SenderConfig {
	return SenderConfig{
		QueueCapacity:   64,
		QueueMaxSamples: 1_000_000,
		Concurrency:     4,
		MinBackoff:      100 * time.Millisecond,
		MaxBackoff:      10 * time.Second,
		Timeout:         30 * time.Second,
	}
}

// Validate returns every problem with cfg, joined, worded with the YAML
// keys. It never changes cfg.
func (cfg SenderConfig) Validate() error {
	var errs []error
	if cfg.QueueCapacity <= 0 {
		errs = append(errs, fmt.Errorf("queue_capacity must be > 0, got %d", cfg.QueueCapacity))
	}
	if cfg.QueueMaxSamples < 0 {
		errs = append(errs, fmt.Errorf("queue_max_samples must be >= 0, got %d", cfg.QueueMaxSamples))
	}
	if cfg.Concurrency <= 0 {
		errs = append(errs, fmt.Errorf("concurrency must be > 0, got %d", cfg.Concurrency))
	}
	if cfg.MinBackoff <= 0 {
		errs = append(errs, fmt.Errorf("min_backoff must be > 0, got %s", cfg.MinBackoff))
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		errs = append(errs, fmt.Errorf("max_backoff (%s) must be >= min_backoff (%s)", cfg.MaxBackoff, cfg.MinBackoff))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout must be >= 0, got %s", cfg.Timeout))
	}
	return errors.Join(errs...)
}
