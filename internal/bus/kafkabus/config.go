package kafkabus

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is the user configuration of the Kafka bus (YAML key `kafka`).
// Topic settings are not here: roles declare their topics with
// novacron.TopicSpec.
type Config struct {
	// Brokers are the seed brokers, host:port. Required; no default.
	Brokers []string `yaml:"brokers"`
	// ClientID is sent to the brokers to name this client in their logs
	// and quotas. Default "novacron".
	ClientID string `yaml:"client_id"`
	// Compression is the producer batch codec: zstd, lz4, snappy or none.
	// Default zstd. Empty means none.
	Compression string `yaml:"compression"`
	// Linger is how long the producer waits to fill a batch before
	// sending it. Default 5ms; zero sends as soon as possible.
	Linger time.Duration `yaml:"linger"`
	// MaxBufferedRecords caps the records buffered in the producer; a
	// Produce beyond it blocks until space frees up. Default 100000.
	MaxBufferedRecords int `yaml:"max_buffered_records"`
	// ProducerBatchMaxBytes caps one partition's batch in bytes, before
	// compression. Must not exceed the topic's max.message.bytes.
	// Default 1000000 (the broker's default limit minus overhead).
	ProducerBatchMaxBytes int32 `yaml:"producer_batch_max_bytes"`
	// SessionTimeout is how long the group coordinator waits for a
	// heartbeat before it drops a consumer. Default 45s; must lie within
	// the broker's group.min/max.session.timeout.ms.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// HeartbeatInterval is how often a consumer heartbeats, which is also
	// how quickly it notices a rebalance. Default 3s; must be below
	// session_timeout.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// RebalanceTimeout bounds how long a rebalance may take before slow
	// members are dropped. Default 60s.
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	// CommitInterval is how often acknowledged offsets are committed in
	// the background; they are also committed on revoke and Close.
	// Default 5s.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// TLS configures encryption to the brokers. Default off.
	TLS TLSConfig `yaml:"tls"`
	// SASL configures authentication. Default none.
	SASL SASLConfig `yaml:"sasl"`
}

// TLSConfig configures TLS to the brokers.
type TLSConfig struct {
	// Enabled turns TLS on. Default false.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of CAs to trust. Empty uses the system pool.
	CAFile string `yaml:"ca_file"`
	// CertFile is the PEM client certificate for mutual TLS. Empty means
	// none; requires key_file.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of cert_file.
	KeyFile string `yaml:"key_file"`
	// ServerName overrides the name checked in the broker certificates.
	// Empty uses the broker host.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate verification. Default
	// false; for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SASL mechanisms.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// SASLConfig configures SASL authentication. The password is read from a
// file or an environment variable, never from the YAML itself, and is
// never logged.
type SASLConfig struct {
	// Mechanism is plain, scram-sha-256 or scram-sha-512. Empty (the
	// default) disables SASL.
	Mechanism string `yaml:"mechanism"`
	// Username is the SASL user. Required with a mechanism.
	Username string `yaml:"username"`
	// PasswordFile is a file holding the password (trailing newlines are
	// trimmed). Exactly one of password_file and password_env is
	// required with a mechanism.
	PasswordFile string `yaml:"password_file"`
	// PasswordEnv names an environment variable holding the password.
	PasswordEnv string `yaml:"password_env"`
}

// Compression codec names accepted by Config.Compression.
const (
	CompressionZstd   = "zstd"
	CompressionLZ4    = "lz4"
	CompressionSnappy = "snappy"
	CompressionNone   = "none"
)

// NewDefaultConfig returns the defaults. Brokers must still be set.
func NewDefaultConfig() Config {
	return Config{
		ClientID:              "novacron",
		Compression:           CompressionZstd,
		Linger:                5 * time.Millisecond,
		MaxBufferedRecords:    100000,
		ProducerBatchMaxBytes: 1000000,
		SessionTimeout:        45 * time.Second,
		HeartbeatInterval:     3 * time.Second,
		RebalanceTimeout:      60 * time.Second,
		CommitInterval:        5 * time.Second,
	}
}

// Validate reports every problem of the configuration, joined. It neither
// changes the configuration nor reads files.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one broker is required"))
	}
	for i, b := range c.Brokers {
		if c := strings.LastIndexByte(b, ':'); c <= 0 || c == len(b)-1 {
			errs = append(errs, fmt.Errorf("brokers[%d]: %q is not host:port", i, b))
		}
	}
	switch c.Compression {
	case CompressionZstd, CompressionLZ4, CompressionSnappy, CompressionNone, "":
	default:
		errs = append(errs, fmt.Errorf("compression: %q is not one of zstd, lz4, snappy, none", c.Compression))
	}
	if c.Linger < 0 {
		errs = append(errs, fmt.Errorf("linger: %s must not be negative", c.Linger))
	}
	if c.MaxBufferedRecords <= 0 {
		errs = append(errs, fmt.Errorf("max_buffered_records: %d must be positive", c.MaxBufferedRecords))
	}
	if c.ProducerBatchMaxBytes < 1024 {
		errs = append(errs, fmt.Errorf("producer_batch_max_bytes: %d must be at least 1024", c.ProducerBatchMaxBytes))
	}
	if c.SessionTimeout <= 0 {
		errs = append(errs, fmt.Errorf("session_timeout: %s must be positive", c.SessionTimeout))
	}
	if c.HeartbeatInterval <= 0 {
		errs = append(errs, fmt.Errorf("heartbeat_interval: %s must be positive", c.HeartbeatInterval))
	} else if c.SessionTimeout > 0 && c.HeartbeatInterval >= c.SessionTimeout {
		errs = append(errs, fmt.Errorf("heartbeat_interval: %s must be below session_timeout %s", c.HeartbeatInterval, c.SessionTimeout))
	}
	if c.RebalanceTimeout <= 0 {
		errs = append(errs, fmt.Errorf("rebalance_timeout: %s must be positive", c.RebalanceTimeout))
	}
	if c.CommitInterval <= 0 {
		errs = append(errs, fmt.Errorf("commit_interval: %s must be positive", c.CommitInterval))
	}
	errs = append(errs, c.TLS.validate()...)
	errs = append(errs, c.SASL.validate()...)
	return errors.Join(errs...)
}

func (t TLSConfig) validate() []error {
	var errs []error
	if !t.Enabled {
		if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify {
			errs = append(errs, errors.New("tls: settings given but tls.enabled is false"))
		}
		return errs
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("tls.cert_file and tls.key_file must be set together"))
	}
	return errs
}

func (s SASLConfig) validate() []error {
	var errs []error
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.PasswordFile != "" || s.PasswordEnv != "" {
			errs = append(errs, errors.New("sasl: credentials given but sasl.mechanism is empty"))
		}
		return errs
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		errs = append(errs, fmt.Errorf("sasl.mechanism: %q is not one of plain, scram-sha-256, scram-sha-512", s.Mechanism))
	}
	if s.Username == "" {
		errs = append(errs, errors.New("sasl.username: required with sasl.mechanism"))
	}
	if (s.PasswordFile == "") == (s.PasswordEnv == "") {
		errs = append(errs, errors.New("sasl: exactly one of sasl.password_file and sasl.password_env is required"))
	}
	return errs
}
