package kafkabus

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/novacron/novacron"
)

func TestDefaultConfigNeedsOnlyBrokers(t *testing.T) {
	cfg := NewDefaultConfig()
	require.ErrorContains(t, cfg.Validate(), "brokers: at least one broker is required")
	cfg.Brokers = []string{"127.0.0.1:9092"}
	require.NoError(t, cfg.Validate())
}

func TestConfigGoodYAML(t *testing.T) {
	data, err := os.ReadFile("testdata/full.good.yaml")
	require.NoError(t, err)
	cfg := NewDefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	require.NoError(t, cfg.Validate())
	require.Equal(t, CompressionLZ4, cfg.Compression)
	require.Equal(t, 10*time.Millisecond, cfg.Linger)
	require.Equal(t, SASLScramSHA512, cfg.SASL.Mechanism)
	require.True(t, cfg.TLS.Enabled)
}

func TestConfigValidate(t *testing.T) {
	f := func(mutate func(*Config), wantErrs ...string) {
		t.Helper()
		cfg := NewDefaultConfig()
		cfg.Brokers = []string{"localhost:9092"}
		mutate(&cfg)
		err := cfg.Validate()
		require.Error(t, err)
		for _, w := range wantErrs {
			require.ErrorContains(t, err, w)
		}
	}
	f(func(c *Config) { c.Brokers = []string{"nohost", ":9092", "host:"} },
		`brokers[0]: "nohost" is not host:port`, `brokers[1]`, `brokers[2]`)
	f(func(c *Config) { c.Compression = "gzip" }, `compression: "gzip"`)
	f(func(c *Config) { c.Linger = -time.Second }, "linger:")
	f(func(c *Config) { c.MaxBufferedRecords = 0 }, "max_buffered_records:")
	f(func(c *Config) { c.ProducerBatchMaxBytes = 10 }, "producer_batch_max_bytes:")
	f(func(c *Config) { c.HeartbeatInterval = c.SessionTimeout }, "heartbeat_interval: 45s must be below session_timeout")
	f(func(c *Config) { c.SessionTimeout, c.RebalanceTimeout, c.CommitInterval = 0, 0, 0 },
		"session_timeout:", "rebalance_timeout:", "commit_interval:")
	f(func(c *Config) { c.TLS.CAFile = "ca.pem" }, "tls.enabled is false")
	f(func(c *Config) { c.TLS = TLSConfig{Enabled: true, CertFile: "c.pem"} }, "tls.cert_file and tls.key_file")
	f(func(c *Config) { c.SASL.Username = "u" }, "sasl.mechanism is empty")
	f(func(c *Config) { c.SASL = SASLConfig{Mechanism: "gssapi"} },
		`sasl.mechanism: "gssapi"`, "sasl.username: required", "exactly one of sasl.password_file and sasl.password_env")
	f(func(c *Config) {
		c.SASL = SASLConfig{Mechanism: SASLPlain, Username: "u", PasswordFile: "f", PasswordEnv: "E"}
	},
		"exactly one of")
	// Every problem is reported at once.
	f(func(c *Config) { c.Brokers = nil; c.Compression = "x"; c.Linger = -1 }, "brokers:", "compression:", "linger:")
}

func TestValidateIsPure(t *testing.T) {
	cfg := Config{Brokers: []string{"h:1"}}
	before := cfg
	_ = cfg.Validate()
	require.Equal(t, before, cfg)
}

func TestSASLPasswordSources(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pw, []byte("s3cret\n"), 0o600))
	m, err := saslMechanism(SASLConfig{Mechanism: SASLPlain, Username: "u", PasswordFile: pw})
	require.NoError(t, err)
	require.Equal(t, "PLAIN", m.Name())
	_, msg, err := m.Authenticate(t.Context(), "h:1")
	require.NoError(t, err)
	require.Equal(t, "\x00u\x00s3cret", string(msg), "trailing newline trimmed")

	t.Setenv("NOVACRON_TEST_KAFKA_PW", "from-env")
	m, err = saslMechanism(SASLConfig{Mechanism: SASLScramSHA256, Username: "u", PasswordEnv: "NOVACRON_TEST_KAFKA_PW"})
	require.NoError(t, err)
	require.Equal(t, "SCRAM-SHA-256", m.Name())

	_, err = saslMechanism(SASLConfig{Mechanism: SASLScramSHA512, Username: "u", PasswordEnv: "NOVACRON_TEST_UNSET_VAR"})
	require.ErrorContains(t, err, "sasl.password_env")
	_, err = saslMechanism(SASLConfig{Mechanism: SASLPlain, Username: "u", PasswordFile: filepath.Join(dir, "missing")})
	require.ErrorContains(t, err, "sasl.password_file")
}

func TestTLSConfigFiles(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	require.NoError(t, os.WriteFile(bad, []byte("not a certificate"), 0o600))
	_, err := tlsConfig(TLSConfig{Enabled: true, CAFile: bad})
	require.ErrorContains(t, err, "no PEM certificate")
	_, err = tlsConfig(TLSConfig{Enabled: true, CAFile: filepath.Join(dir, "missing.pem")})
	require.ErrorContains(t, err, "tls.ca_file")
	tc, err := tlsConfig(TLSConfig{Enabled: true, ServerName: "kafka.internal"})
	require.NoError(t, err)
	require.Equal(t, "kafka.internal", tc.ServerName)
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := New(Config{}, Settings{})
	require.ErrorContains(t, err, "kafka config")
}

func TestMetricsRegisteredAndLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	b, err := New(testConfig(newKfake(t)), Settings{Registerer: reg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.EnsureTopics(t.Context(), []novacron.TopicSpec{{Name: "m", Partitions: 1, ReplicationFactor: 1}}))
	require.NoError(t, b.Produce(t.Context(),
		&novacron.Record{Topic: "m", Key: []byte("k"), Value: []byte("value")},
		&novacron.Record{Topic: "m", Value: []byte("v")}))
	require.Error(t, b.Produce(t.Context(), &novacron.Record{Topic: "m", Partition: 3, Value: []byte("v")}))

	require.Equal(t, 2.0, testutil.ToFloat64(b.metrics.ProducedRecords.WithLabelValues("m")))
	require.Equal(t, 7.0, testutil.ToFloat64(b.metrics.ProducedBytes.WithLabelValues("m")))
	require.Equal(t, 1.0, testutil.ToFloat64(b.metrics.ProduceErrors))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
	n, err := testutil.GatherAndCount(reg, "novacron_bus_produce_duration_seconds")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

func TestKgoLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := kgoLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	require.Equal(t, kgo.LogLevelWarn, l.Level())
	l.Log(kgo.LogLevelInfo, "hidden")
	l.Log(kgo.LogLevelError, "broken", "broker", "b1")
	require.NotContains(t, buf.String(), "hidden")
	require.Contains(t, buf.String(), "level=ERROR msg=broken broker=b1")
	require.Equal(t, kgo.LogLevelNone, kgoLogger{slog.New(slog.DiscardHandler)}.Level())
}

// FuzzConfig checks decoding and validating arbitrary YAML never panics.
func FuzzConfig(f *testing.F) {
	seed, err := os.ReadFile("testdata/full.good.yaml")
	require.NoError(f, err)
	f.Add(string(seed))
	f.Add("brokers: [a]\ncompression: zstd\n")
	f.Add("sasl: {mechanism: plain}\ntls: {enabled: true, cert_file: x}\n")
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 4096 {
			return
		}
		cfg := NewDefaultConfig()
		if yaml.Unmarshal([]byte(in), &cfg) != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			require.NotEmpty(t, strings.TrimSpace(err.Error()))
		}
	})
}
