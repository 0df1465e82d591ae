package novacron

import (
	"context"
	"errors"
	"time"
)

// Record is one message on the bus.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Headers   []RecordHeader
	Timestamp time.Time
}

// RecordHeader is a key/value header of a Record.
type RecordHeader struct {
	Key   string
	Value []byte
}

// TopicSpec describes a topic to create when it is missing.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	// Configs are topic configs such as "cleanup.policy": "compact".
	Configs map[string]string
}

// ErrBusClosed is returned by bus operations after Close.
var ErrBusClosed = errors.New("bus closed")

// Bus carries records between roles: Kafka in production, an in-process
// bus on embedded defaults. Implementations are safe for concurrent use.
type Bus interface {
	// EnsureTopics creates the topics that do not exist yet. Existing
	// topics are left as they are.
	EnsureTopics(ctx context.Context, topics []TopicSpec) error
	// Produce publishes the records and returns once every one of them is
	// acknowledged (acks=all on Kafka), or with the first error. A record
	// with Partition 0 is partitioned by a hash of its Key (Kafka's murmur2,
	// as the Java client does), so all records with one key land on one
	// partition in order; keyless records are spread. A non-zero Partition
	// is used as given (an out-of-range one is an error), so partition 0
	// is reachable only through a key. Produce does not retain the records
	// after it returns.
	Produce(ctx context.Context, recs ...*Record) error
	// Consumer joins the consumer group for the topics. Records are
	// delivered at least once: offsets are committed only for records
	// passed to Consumer.Ack.
	Consumer(group string, topics []string, opts ...ConsumerOption) (Consumer, error)
	// Ping checks that the bus answers, for readiness.
	Ping(ctx context.Context) error
	// Close releases the bus. Consumers must be closed first.
	Close() error
}

// Consumer is one member of a consumer group. Poll and Ack may be called
// from different goroutines; Poll must not be called concurrently with
// itself.
type Consumer interface {
	// Poll blocks until records are available or ctx is done, when it
	// returns ctx.Err(). The caller owns the returned records. Poll returns
	// at most the configured max records. Records of one partition come in
	// offset order.
	Poll(ctx context.Context) ([]*Record, error)
	// Ack marks records as durably processed. Records may be acked in any
	// order; for each partition the consumer commits up to the highest
	// offset below which every polled record has been acked. Acks for
	// partitions this member no longer owns are ignored (the new owner
	// re-reads them: at-least-once).
	Ack(recs ...*Record)
	// Lag returns the number of records in owned partitions not yet
	// committed, for metrics; -1 when unknown.
	Lag() int64
	// Close commits what was acked and leaves the group.
	Close(ctx context.Context) error
}

// ConsumerOption configures a consumer.
type ConsumerOption func(*ConsumerOptions)

// ConsumerOptions are the options a Bus implementation honours.
type ConsumerOptions struct {
	// MaxPollRecords caps the records returned by one Poll. Default 10000.
	MaxPollRecords int
	// StartAtEnd starts a group with no committed offsets at the newest
	// records instead of the oldest. Default false (oldest).
	StartAtEnd bool
	// Assigned and Revoked, when set, are called as the member gains and
	// loses partitions (see WithRebalanceListener). Default nil.
	Assigned, Revoked func(ctx context.Context, topic string, partitions []int32)
}

// WithMaxPollRecords caps how many records one Poll returns.
func WithMaxPollRecords(n int) ConsumerOption {
	return func(o *ConsumerOptions) { o.MaxPollRecords = n }
}

// WithStartAtEnd makes a new group start at the newest records.
func WithStartAtEnd() ConsumerOption {
	return func(o *ConsumerOptions) { o.StartAtEnd = true }
}

// WithRebalanceListener calls assigned when the member gains partitions of
// a topic, before Poll returns any record of them, and revoked when it
// loses partitions, before the bus commits what was acknowledged on them
// and before another member can read them: a revoked callback that acks
// records has them committed, so the next owner starts after them. Either
// function may be nil. They run on a goroutine of the bus, possibly
// concurrently with Poll and Ack on another goroutine, never concurrently
// with each other for one member, and must return promptly (a rebalance
// waits for them). A member that is closed gets revoked for everything it
// still owns. Partitions taken away without a clean revoke (a member that
// missed its session timeout) get no callback: the new owner's assigned
// call is then the only notice.
func WithRebalanceListener(assigned, revoked func(ctx context.Context, topic string, partitions []int32)) ConsumerOption {
	return func(o *ConsumerOptions) { o.Assigned, o.Revoked = assigned, revoked }
}

// ApplyConsumerOptions returns the options with defaults filled in.
func ApplyConsumerOptions(opts []ConsumerOption) ConsumerOptions {
	o := ConsumerOptions{MaxPollRecords: 10000}
	for _, f := range opts {
		f(&o)
	}
	if o.MaxPollRecords <= 0 {
		o.MaxPollRecords = 10000
	}
	return o
}
