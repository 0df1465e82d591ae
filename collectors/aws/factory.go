package aws

import novacron "github.com/novacron/novacron"

// TypeName is the collector type in configuration and metrics.
const TypeName = Provider

// Factory builds AWS collectors: the type name, the default config and the
// create function, as every component package offers.
type Factory struct{}

// NewFactory returns the AWS collector's factory.
func NewFactory() Factory { return Factory{} }

// Type returns "aws".
func (Factory) Type() string { return TypeName }

// NewDefaultConfig returns the default configuration.
func (Factory) NewDefaultConfig() *Config { return NewDefaultConfig() }

// Create builds a collector; see New.
func (Factory) Create(cfg *Config, set Settings, sink novacron.Sink) (*Collector, error) {
	return New(*cfg, set, sink)
}
