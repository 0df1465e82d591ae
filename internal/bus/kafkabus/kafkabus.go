package kafkabus

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/bus/internal/busmetrics"
)

// Settings are what the program injects into the bus.
type Settings struct {
	// Logger receives the bus's and franz-go's logs. Nil discards them.
	Logger *slog.Logger
	// Registerer receives the novacron_bus_* metrics. Nil registers none.
	Registerer prometheus.Registerer
}

// Bus is a novacron.Bus on Apache Kafka. It is safe for concurrent use.
type Bus struct {
	cfg     Config
	logger  *slog.Logger
	metrics *busmetrics.Metrics
	opts    []kgo.Opt // connection options shared with consumers

	client *kgo.Client // producer and metadata
	adm    *kadm.Client

	closed atomic.Bool
}

var _ novacron.Bus = (*Bus)(nil)

// New connects a bus to the brokers of cfg. It does not wait for the
// brokers to answer; use Ping for that.
func New(cfg Config, set Settings) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka config: %w", err)
	}
	logger := set.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "kafkabus")
	opts, err := connOpts(cfg, logger)
	if err != nil {
		return nil, err
	}
	var codec kgo.CompressionCodec
	switch cfg.Compression {
	case CompressionZstd:
		codec = kgo.ZstdCompression()
	case CompressionLZ4:
		codec = kgo.Lz4Compression()
	case CompressionSnappy:
		codec = kgo.SnappyCompression()
	default:
		codec = kgo.NoCompression()
	}
	popts := append(append([]kgo.Opt(nil), opts...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is on by default and needs acks=all
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(cfg.Linger),
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords),
		kgo.ProducerBatchMaxBytes(cfg.ProducerBatchMaxBytes),
		kgo.RecordPartitioner(partitioner{kgo.StickyKeyPartitioner(nil)}),
	)
	client, err := kgo.NewClient(popts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client (brokers=%v): %w", cfg.Brokers, err)
	}
	return &Bus{
		cfg:     cfg,
		logger:  logger,
		metrics: busmetrics.New(set.Registerer),
		opts:    opts,
		client:  client,
		adm:     kadm.NewClient(client),
	}, nil
}

// connOpts builds the client options every client of the bus shares:
// brokers, identity, TLS, SASL and logging.
func connOpts(cfg Config, logger *slog.Logger) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.WithLogger(kgoLogger{logger}),
	}
	if cfg.ClientID != "" {
		opts = append(opts, kgo.ClientID(cfg.ClientID))
	}
	if cfg.TLS.Enabled {
		tc, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if cfg.SASL.Mechanism != "" {
		m, err := saslMechanism(cfg.SASL)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func tlsConfig(c TLSConfig) (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // opt-in, documented as tests only
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %q: no PEM certificate found", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/tls.key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// saslMechanism reads the password from its file or environment variable.
// The password never enters an error message.
func saslMechanism(c SASLConfig) (sasl.Mechanism, error) {
	var password string
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("sasl.password_file: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	} else {
		v, ok := os.LookupEnv(c.PasswordEnv)
		if !ok {
			return nil, fmt.Errorf("sasl.password_env: environment variable %s is not set", c.PasswordEnv)
		}
		password = v
	}
	switch c.Mechanism {
	case SASLPlain:
		return plain.Auth{User: c.Username, Pass: password}.AsMechanism(), nil
	case SASLScramSHA256:
		return scram.Auth{User: c.Username, Pass: password}.AsSha256Mechanism(), nil
	case SASLScramSHA512:
		return scram.Auth{User: c.Username, Pass: password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("sasl.mechanism: %q is not supported", c.Mechanism)
}

// EnsureTopics creates the missing topics and waits until the brokers
// report every one of them with leaders. Existing topics are left alone,
// even if their partition count differs from the spec. A zero
// Partitions or ReplicationFactor uses the broker's default.
func (b *Bus) EnsureTopics(ctx context.Context, topics []novacron.TopicSpec) error {
	if b.isClosed() {
		return novacron.ErrBusClosed
	}
	names := make([]string, 0, len(topics))
	for _, t := range topics {
		names = append(names, t.Name)
		partitions, rf := t.Partitions, t.ReplicationFactor
		if partitions <= 0 {
			partitions = -1
		}
		if rf <= 0 {
			rf = -1
		}
		var configs map[string]*string
		if len(t.Configs) > 0 {
			configs = make(map[string]*string, len(t.Configs))
			for k, v := range t.Configs {
				configs[k] = kadm.StringPtr(v)
			}
		}
		_, err := b.adm.CreateTopic(ctx, partitions, rf, configs, t.Name)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %q: %w", t.Name, err)
		}
	}
	return b.waitTopics(ctx, names)
}

// waitTopics polls metadata until every topic exists with a leader for
// each partition, so a Produce right after EnsureTopics does not race
// the controller.
func (b *Bus) waitTopics(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		details, err := b.adm.ListTopics(ctx, names...)
		ready := err == nil
		if ready {
			for _, n := range names {
				d, ok := details[n]
				if !ok || d.Err != nil || len(d.Partitions) == 0 {
					ready = false
					break
				}
				for _, p := range d.Partitions {
					if p.Leader < 0 || p.Err != nil {
						ready = false
					}
				}
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("wait for topics %v: %w", names, err)
		case <-time.After(wait):
		}
	}
}

// explicitPartition marks, through kgo.Record.Context, a record whose
// Partition was chosen by the caller.
type explicitKey struct{}

var explicitCtx = context.WithValue(context.Background(), explicitKey{}, true)

// Produce implements novacron.Bus: it returns once every record is
// acknowledged by all in-sync replicas, or with the first error.
func (b *Bus) Produce(ctx context.Context, recs ...*novacron.Record) error {
	if b.closed.Load() {
		return novacron.ErrBusClosed
	}
	if len(recs) == 0 {
		return nil
	}
	start := time.Now()
	krs := make([]kgo.Record, len(recs))
	ptrs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		kr := &krs[i]
		kr.Topic, kr.Key, kr.Value, kr.Timestamp = r.Topic, r.Key, r.Value, r.Timestamp
		if r.Partition != 0 {
			kr.Partition, kr.Context = r.Partition, explicitCtx
		}
		if len(r.Headers) > 0 {
			kr.Headers = make([]kgo.RecordHeader, len(r.Headers))
			for j, h := range r.Headers {
				kr.Headers[j] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
			}
		}
		ptrs[i] = kr
	}
	results := b.client.ProduceSync(ctx, ptrs...)
	b.metrics.ProduceDuration.Observe(time.Since(start).Seconds())
	var firstErr error
	for _, res := range results {
		if res.Err != nil {
			b.metrics.ProduceErrors.Inc()
			if firstErr == nil {
				firstErr = res.Err
				if errors.Is(res.Err, kgo.ErrClientClosed) {
					firstErr = novacron.ErrBusClosed
				}
			}
			continue
		}
		b.metrics.ProducedRecords.WithLabelValues(res.Record.Topic).Inc()
		b.metrics.ProducedBytes.WithLabelValues(res.Record.Topic).Add(float64(len(res.Record.Key) + len(res.Record.Value)))
	}
	if firstErr != nil {
		return fmt.Errorf("produce %d records: %w", len(recs), firstErr)
	}
	return nil
}

// Ping asks the brokers for metadata.
func (b *Bus) Ping(ctx context.Context) error {
	if b.isClosed() {
		return novacron.ErrBusClosed
	}
	if err := b.client.Ping(ctx); err != nil {
		return fmt.Errorf("ping kafka (brokers=%v): %w", b.cfg.Brokers, err)
	}
	return nil
}

// Close closes the connections; a Produce still waiting fails with
// novacron.ErrBusClosed. Consumers must be closed first. Close is
// idempotent.
func (b *Bus) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.client.Close()
	return nil
}

func (b *Bus) isClosed() bool { return b.closed.Load() }

// partitioner places records with an explicit partition there and all
// others with franz-go's sticky key partitioner (murmur2 of the key, as
// the Java client).
type partitioner struct{ inner kgo.Partitioner }

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	inner := p.inner.ForTopic(topic)
	onNew, _ := inner.(kgo.TopicPartitionerOnNewBatch)
	return &topicPartitioner{inner: inner, onNew: onNew}
}

type topicPartitioner struct {
	inner kgo.TopicPartitioner
	onNew kgo.TopicPartitionerOnNewBatch
}

func isExplicit(r *kgo.Record) bool { return r.Context == explicitCtx }

func (t *topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return isExplicit(r) || t.inner.RequiresConsistency(r)
}

func (t *topicPartitioner) Partition(r *kgo.Record, n int) int {
	if isExplicit(r) {
		return int(r.Partition) // out of range fails the record
	}
	return t.inner.Partition(r, n)
}

func (t *topicPartitioner) OnNewBatch() {
	if t.onNew != nil {
		t.onNew.OnNewBatch()
	}
}
