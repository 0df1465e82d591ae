package membus

import (
	"errors"
	"fmt"
)

// Config is the user configuration of the in-process bus (YAML key
// `membus`).
type Config struct {
	// Partitions is the partition count of topics whose spec leaves it
	// zero. Default 6.
	Partitions int32 `yaml:"partitions"`
	// MaxRecordsPerPartition caps the records one partition holds. A
	// full partition blocks producers while a group lags, or drops its
	// oldest record when no group has subscribed. Default 100000.
	MaxRecordsPerPartition int `yaml:"max_records_per_partition"`
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{Partitions: 6, MaxRecordsPerPartition: 100000}
}

// Validate reports every problem of the configuration, joined, without
// changing it.
func (c Config) Validate() error {
	var errs []error
	if c.Partitions <= 0 || c.Partitions > 10000 {
		errs = append(errs, fmt.Errorf("partitions: %d must be between 1 and 10000", c.Partitions))
	}
	if c.MaxRecordsPerPartition <= 0 {
		errs = append(errs, fmt.Errorf("max_records_per_partition: %d must be positive", c.MaxRecordsPerPartition))
	}
	return errors.Join(errs...)
}
