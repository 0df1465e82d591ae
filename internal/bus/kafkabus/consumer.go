package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/bus/internal/acktrack"
	"github.com/novacron/novacron/internal/bus/internal/busmetrics"
)

type tp struct {
	topic     string
	partition int32
}

// partState is what a consumer knows of one partition it owns.
type partState struct {
	track acktrack.Partition
	hwm   int64 // high watermark from the last fetch; -1 unknown
}

// Consumer is one member of a Kafka consumer group. See novacron.Consumer.
type Consumer struct {
	group   string
	opts    novacron.ConsumerOptions
	client  *kgo.Client
	logger  *slog.Logger
	metrics *busmetrics.Metrics
	bus     *Bus

	mu     sync.Mutex
	owned  map[tp]*partState // nil entries never; absent = not owned
	lag    *busmetrics.LagReporter
	closed bool

	closing   atomic.Bool // Close has notified the revoke listener
	closeOnce sync.Once
	closeErr  error
}

var _ novacron.Consumer = (*Consumer)(nil)

// Consumer joins group for topics with the cooperative-sticky balancer.
// Topics that do not exist yet are consumed once they are created.
func (b *Bus) Consumer(group string, topics []string, opts ...novacron.ConsumerOption) (novacron.Consumer, error) {
	if group == "" || len(topics) == 0 {
		return nil, fmt.Errorf("kafka consumer: group and topics are required (group=%q topics=%v)", group, topics)
	}
	if b.isClosed() {
		return nil, novacron.ErrBusClosed
	}
	o := novacron.ApplyConsumerOptions(opts)
	c := &Consumer{
		group:   group,
		opts:    o,
		logger:  b.logger.With("group", group),
		metrics: b.metrics,
		bus:     b,
		owned:   make(map[tp]*partState),
		lag:     b.metrics.NewLagReporter(group),
	}
	reset := kgo.NewOffset().AtStart()
	if o.StartAtEnd {
		reset = kgo.NewOffset().AtEnd()
	}
	copts := append(append([]kgo.Opt(nil), b.opts...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ConsumeResetOffset(reset),
		kgo.SessionTimeout(b.cfg.SessionTimeout),
		kgo.HeartbeatInterval(b.cfg.HeartbeatInterval),
		kgo.RebalanceTimeout(b.cfg.RebalanceTimeout),
		// Commit only what Ack marked, in the background and on
		// revoke and Close.
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(b.cfg.CommitInterval),
		kgo.AutoCommitCallback(c.onCommitted),
		// Rebalances wait until a Poll has registered its records, so
		// ownership and tracking cannot disagree.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
	)
	client, err := kgo.NewClient(copts...)
	if err != nil {
		return nil, fmt.Errorf("kafka consumer (group=%q): %w", group, err)
	}
	c.client = client
	return c, nil
}

// Poll implements novacron.Consumer.
func (c *Consumer) Poll(ctx context.Context) ([]*novacron.Record, error) {
	for {
		if c.isClosed() {
			return nil, novacron.ErrBusClosed
		}
		fetches := c.client.PollRecords(ctx, c.opts.MaxPollRecords)
		recs, err := c.take(fetches)
		c.client.AllowRebalance()
		if ctxErr := ctx.Err(); ctxErr != nil && len(recs) == 0 {
			return nil, ctxErr
		}
		if err != nil {
			return nil, err
		}
		if len(recs) > 0 {
			return recs, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// take registers the fetched records of owned partitions with their ack
// trackers and converts them. It runs while rebalances are blocked.
func (c *Consumer) take(fetches kgo.Fetches) ([]*novacron.Record, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*novacron.Record
	var firstErr error
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Err != nil {
			switch {
			case errors.Is(p.Err, kgo.ErrClientClosed):
				firstErr = novacron.ErrBusClosed
			case errors.Is(p.Err, context.Canceled), errors.Is(p.Err, context.DeadlineExceeded):
				if firstErr == nil {
					firstErr = p.Err
				}
			default:
				// Fetch errors are retried by the client; they are
				// reported but do not stop polling.
				c.logger.Warn("fetch error", "topic", p.Topic, "partition", p.Partition, "err", p.Err)
			}
		}
		st := c.owned[tp{p.Topic, p.Partition}]
		if st == nil {
			return // revoked since the fetch: the new owner reads it
		}
		if p.HighWatermark >= 0 {
			st.hwm = p.HighWatermark
		}
		n := 0
		for _, r := range p.Records {
			if !st.track.Add(r.Offset, r.LeaderEpoch) {
				continue
			}
			out = append(out, toRecord(r))
			n++
		}
		if n > 0 {
			c.metrics.ConsumedRecords.WithLabelValues(p.Topic).Add(float64(n))
		}
	})
	c.lag.Set(c.lagLocked())
	if len(out) > 0 {
		return out, nil
	}
	return nil, firstErr
}

func toRecord(r *kgo.Record) *novacron.Record {
	out := &novacron.Record{
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Key:       r.Key,
		Value:     r.Value,
		Timestamp: r.Timestamp,
	}
	if len(r.Headers) > 0 {
		out.Headers = make([]novacron.RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			out.Headers[i] = novacron.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	return out
}

// Ack implements novacron.Consumer: it marks the contiguous acknowledged
// prefix of each partition for the next commit.
func (c *Consumer) Ack(recs ...*novacron.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	var marks map[string]map[int32]kgo.EpochOffset
	for _, r := range recs {
		st := c.owned[tp{r.Topic, r.Partition}]
		if st == nil || !st.track.Ack(r.Offset) {
			continue
		}
		off, epoch, _ := st.track.Committable()
		if marks == nil {
			marks = make(map[string]map[int32]kgo.EpochOffset)
		}
		if marks[r.Topic] == nil {
			marks[r.Topic] = make(map[int32]kgo.EpochOffset)
		}
		marks[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: epoch, Offset: off}
	}
	if marks != nil {
		c.client.MarkCommitOffsets(marks)
	}
	c.lag.Set(c.lagLocked())
}

// Lag implements novacron.Consumer: the records between the committable
// offset and the high watermark of every owned partition, as of the last
// fetch. It is -1 before this member has seen a fetch for any owned
// partition; partitions without a fetch yet count as zero.
func (c *Consumer) Lag() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lagLocked()
}

func (c *Consumer) lagLocked() int64 {
	var lag int64
	known := false
	for _, st := range c.owned {
		if st.hwm < 0 {
			continue
		}
		known = true
		if off, _, ok := st.track.Committable(); ok {
			lag += max(st.hwm-off, 0)
		}
	}
	if !known {
		return -1
	}
	return lag
}

func (c *Consumer) onAssigned(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
	c.mu.Lock()
	for topic, parts := range assigned {
		for _, p := range parts {
			c.owned[tp{topic, p}] = &partState{hwm: -1}
		}
	}
	c.mu.Unlock()
	c.logger.Debug("partitions assigned", "partitions", assigned)
	// franz-go fetches the partitions only after this returns, so the
	// listener hears of them before Poll returns their records.
	notify(ctx, c.opts.Assigned, assigned)
}

// notify calls a rebalance listener once per topic, partitions sorted.
func notify(ctx context.Context, f func(context.Context, string, []int32), parts map[string][]int32) {
	if f == nil {
		return
	}
	topics := make([]string, 0, len(parts))
	for t := range parts {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		if len(parts[t]) > 0 {
			f(ctx, t, slices.Sorted(slices.Values(parts[t])))
		}
	}
}

// onRevoked tells the listener, commits what was acknowledged on the
// revoked partitions (the listener's acks included), then forgets them:
// later acks for them are ignored.
func (c *Consumer) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	if !c.closing.Load() { // Close has told the listener already
		notify(ctx, c.opts.Revoked, revoked)
	}
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		c.metrics.CommitErrors.Inc()
		c.logger.Warn("commit on revoke failed", "err", err)
	}
	c.drop(revoked)
	c.logger.Debug("partitions revoked", "partitions", revoked)
}

// onLost forgets partitions the group took away without a clean revoke;
// committing them would fail (or overwrite the new owner's commits).
func (c *Consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.drop(lost)
	c.logger.Warn("partitions lost", "partitions", lost)
}

func (c *Consumer) drop(parts map[string][]int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			delete(c.owned, tp{topic, p})
		}
	}
	c.lag.Set(c.lagLocked())
}

func (c *Consumer) onCommitted(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err == nil && resp != nil {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					err = fmt.Errorf("topic %q partition %d: error code %d", t.Topic, p.Partition, p.ErrorCode)
				}
			}
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		c.metrics.CommitErrors.Inc()
		c.logger.Warn("offset commit failed", "err", err)
	}
}

// Close commits what was acknowledged and leaves the group. It is safe
// to call more than once; later calls return the first result.
func (c *Consumer) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		if c.opts.Revoked != nil {
			// The listener gets its revoke while acks still count, so
			// what it acknowledges is in the commit below.
			c.mu.Lock()
			owned := map[string][]int32{}
			for k := range c.owned {
				owned[k.topic] = append(owned[k.topic], k.partition)
			}
			c.mu.Unlock()
			notify(ctx, c.opts.Revoked, owned)
		}
		c.closing.Store(true)
		if err := c.client.CommitMarkedOffsets(ctx); err != nil {
			c.metrics.CommitErrors.Inc()
			c.closeErr = fmt.Errorf("commit offsets (group=%q): %w", c.group, err)
		}
		c.mu.Lock()
		c.closed = true
		c.lag.Clear()
		c.mu.Unlock()
		// Leaving revokes everything, which commits again through
		// onRevoked (a no-op when nothing was acked since).
		if err := c.client.LeaveGroupContext(ctx); err != nil && c.closeErr == nil && !errors.Is(err, kgo.ErrClientClosed) {
			c.closeErr = fmt.Errorf("leave group %q: %w", c.group, err)
		}
		c.client.CloseAllowingRebalance()
	})
	return c.closeErr
}

func (c *Consumer) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
