package membus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/bus/bustest"
)

func newBus(t *testing.T, cfg Config, reg prometheus.Registerer) *Bus {
	t.Helper()
	b, err := New(cfg, Settings{Registerer: reg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	bustest.RunConformance(t, func(t *testing.T) novacron.Bus {
		return newBus(t, NewDefaultConfig(), nil)
	})
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, NewDefaultConfig().Validate())
	err := Config{Partitions: 0, MaxRecordsPerPartition: -1}.Validate()
	require.ErrorContains(t, err, "partitions: 0")
	require.ErrorContains(t, err, "max_records_per_partition: -1")
	_, err = New(Config{}, Settings{})
	require.Error(t, err)
}

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	b := newBus(t, NewDefaultConfig(), reg)
	require.NoError(t, b.EnsureTopics(t.Context(), []novacron.TopicSpec{{Name: "t", Partitions: 1}}))
	require.NoError(t, b.Produce(t.Context(), &novacron.Record{Topic: "t", Value: []byte("v")}))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
	n, err := testutil.GatherAndCount(reg, "novacron_bus_stored_records", "novacron_bus_produced_records_total")
	require.NoError(t, err)
	require.Equal(t, 2, n)
}

// TestKeyPartitionMatchesKafka checks membus places keys where Kafka's
// default partitioner (franz-go's sticky key partitioner) does.
func TestKeyPartitionMatchesKafka(t *testing.T) {
	tp := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for i := range 1000 {
		key := fmt.Appendf(nil, "series-%d-%x", i, i*7919)
		for _, n := range []int{1, 3, 6, 64} {
			require.Equal(t, tp.Partition(&kgo.Record{Key: key}, n), int(partitionForKey(key, n)), "key %s, %d partitions", key, n)
		}
	}
	require.Equal(t, tp.Partition(&kgo.Record{Key: []byte{}}, 7), int(partitionForKey([]byte{}, 7)))
}

func TestProduceUnknownTopic(t *testing.T) {
	b := newBus(t, NewDefaultConfig(), nil)
	err := b.Produce(t.Context(), &novacron.Record{Topic: "missing", Value: []byte("v")})
	require.ErrorIs(t, err, ErrUnknownTopic)
}

// TestUnsubscribedTopicKeepsNewest: with no group, a full partition drops
// its oldest records and a later group sees only the newest ones.
func TestUnsubscribedTopicKeepsNewest(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := NewDefaultConfig()
	cfg.MaxRecordsPerPartition = 10
	b := newBus(t, cfg, reg)
	require.NoError(t, b.EnsureTopics(t.Context(), []novacron.TopicSpec{{Name: "t", Partitions: 1}}))
	for i := range 25 {
		require.NoError(t, b.Produce(t.Context(), &novacron.Record{Topic: "t", Value: fmt.Appendf(nil, "%d", i)}))
	}
	require.Equal(t, 15.0, testutil.ToFloat64(b.metrics.dropped.WithLabelValues(reasonNoSubscriber)))
	require.Equal(t, 10.0, b.storedRecords())

	c, err := b.Consumer("g", []string{"t"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	recs, err := c.Poll(ctx)
	require.NoError(t, err)
	require.Len(t, recs, 10)
	require.Equal(t, "15", string(recs[0].Value))
	require.Equal(t, int64(15), recs[0].Offset, "offsets keep counting across drops")
}

// TestBackpressure: a full partition blocks Produce while a subscribed
// group lags; an ack frees space; a cancelled context ends the wait.
func TestBackpressure(t *testing.T) {
	cfg := NewDefaultConfig()
	cfg.MaxRecordsPerPartition = 4
	b := newBus(t, cfg, nil)
	ctx := t.Context()
	require.NoError(t, b.EnsureTopics(ctx, []novacron.TopicSpec{{Name: "t", Partitions: 1}}))
	c, err := b.Consumer("g", []string{"t"})
	require.NoError(t, err)
	for i := range 4 {
		require.NoError(t, b.Produce(ctx, &novacron.Record{Topic: "t", Value: fmt.Appendf(nil, "%d", i)}))
	}

	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err = b.Produce(short, &novacron.Record{Topic: "t", Value: []byte("x")})
	require.ErrorIs(t, err, context.DeadlineExceeded, "partition full, group lags")

	done := make(chan error, 1)
	go func() { done <- b.Produce(ctx, &novacron.Record{Topic: "t", Value: []byte("4")}) }()
	select {
	case err := <-done:
		t.Fatalf("produce returned %v while the partition is full", err)
	case <-time.After(50 * time.Millisecond):
	}
	recs, err := c.Poll(ctx)
	require.NoError(t, err)
	require.Len(t, recs, 4)
	select {
	case err := <-done:
		t.Fatalf("polling without ack freed space: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	c.Ack(recs[1]) // not contiguous: still full
	select {
	case err := <-done:
		t.Fatalf("a non-contiguous ack freed space: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	c.Ack(recs[0])
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("produce still blocked after the group committed")
	}
	require.Equal(t, 3.0, b.storedRecords(), "offsets 2, 3 and 4 are kept")

	// Closing the bus releases a blocked producer. Offset 4 is kept
	// (not polled), so three more fill the partition.
	c.Ack(recs[2:]...)
	require.Equal(t, 1.0, b.storedRecords())
	for i := range 3 {
		require.NoError(t, b.Produce(ctx, &novacron.Record{Topic: "t", Value: fmt.Appendf(nil, "more-%d", i)}))
	}
	go func() { done <- b.Produce(ctx, &novacron.Record{Topic: "t", Value: []byte("last")}) }()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, c.Close(ctx))
	require.NoError(t, b.Close())
	require.ErrorIs(t, <-done, novacron.ErrBusClosed)
}

// TestRetentionFollowsSlowestGroup: records stay until every subscribed
// group committed them, even a group with no member left.
func TestRetentionFollowsSlowestGroup(t *testing.T) {
	b := newBus(t, NewDefaultConfig(), nil)
	ctx := t.Context()
	require.NoError(t, b.EnsureTopics(ctx, []novacron.TopicSpec{{Name: "t", Partitions: 2}}))
	fast, err := b.Consumer("fast", []string{"t"})
	require.NoError(t, err)
	slow, err := b.Consumer("slow", []string{"t"})
	require.NoError(t, err)
	for i := range 100 {
		require.NoError(t, b.Produce(ctx, &novacron.Record{Topic: "t", Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}))
	}
	recs, err := fast.Poll(ctx)
	require.NoError(t, err)
	require.Len(t, recs, 100)
	fast.Ack(recs...)
	require.Equal(t, 100.0, b.storedRecords(), "slow has not committed")
	require.NoError(t, slow.Close(ctx))
	require.Equal(t, 100.0, b.storedRecords(), "slow stays subscribed without members")

	slow, err = b.Consumer("slow", []string{"t"})
	require.NoError(t, err)
	recs, err = slow.Poll(ctx)
	require.NoError(t, err)
	require.Len(t, recs, 100)
	slow.Ack(recs[:60]...)
	require.Less(t, b.storedRecords(), 100.0)
	slow.Ack(recs...)
	require.Equal(t, 0.0, b.storedRecords())
}

// TestStaticAssignment: partition p goes to member p mod n in join order,
// and leaving hands partitions to the rest.
func TestStaticAssignment(t *testing.T) {
	b := newBus(t, NewDefaultConfig(), nil)
	ctx := t.Context()
	require.NoError(t, b.EnsureTopics(ctx, []novacron.TopicSpec{{Name: "t", Partitions: 5}}))
	var members []novacron.Consumer
	for range 3 {
		c, err := b.Consumer("g", []string{"t"})
		require.NoError(t, err)
		members = append(members, c)
	}
	for p := range int32(5) {
		require.NoError(t, b.Produce(ctx, &novacron.Record{Topic: "t", Partition: p, Value: fmt.Appendf(nil, "%d", p)}))
	}
	got := func(c novacron.Consumer) []int32 {
		pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		var parts []int32
		for {
			recs, err := c.Poll(pctx)
			if err != nil {
				return parts
			}
			for _, r := range recs {
				parts = append(parts, r.Partition)
			}
		}
	}
	require.ElementsMatch(t, []int32{0, 3}, got(members[0]))
	require.ElementsMatch(t, []int32{1, 4}, got(members[1]))
	require.ElementsMatch(t, []int32{2}, got(members[2]))

	require.NoError(t, members[0].Close(ctx))
	// Now 0, 2, 4 -> member 1 and 1, 3 -> member 2. Nothing was acked:
	// the new owners re-read from the committed offsets, and a member
	// keeping a partition (4) keeps its position.
	require.ElementsMatch(t, []int32{0, 2}, got(members[1]))
	require.ElementsMatch(t, []int32{1, 3}, got(members[2]))
}

// TestConsumerBeforeTopic: a group may subscribe before the topic exists.
func TestConsumerBeforeTopic(t *testing.T) {
	b := newBus(t, NewDefaultConfig(), nil)
	ctx := t.Context()
	c, err := b.Consumer("g", []string{"later"})
	require.NoError(t, err)
	got := make(chan []*novacron.Record, 1)
	go func() {
		recs, _ := c.Poll(ctx)
		got <- recs
	}()
	require.NoError(t, b.EnsureTopics(ctx, []novacron.TopicSpec{{Name: "later"}}))
	require.NoError(t, b.Produce(ctx, &novacron.Record{Topic: "later", Key: []byte("k"), Value: []byte("v")}))
	select {
	case recs := <-got:
		require.Len(t, recs, 1)
		require.Equal(t, "v", string(recs[0].Value))
	case <-time.After(5 * time.Second):
		t.Fatal("no record")
	}
}

// BenchmarkProduceConsume measures one producer and one consumer group
// through the in-process bus with 200-byte records.
//
//	go test -run=^$ -bench=ProduceConsume -count 6 ./internal/bus/membus | benchstat -
func BenchmarkProduceConsume(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			bus, err := New(NewDefaultConfig(), Settings{})
			require.NoError(b, err)
			defer bus.Close()
			ctx := context.Background()
			require.NoError(b, bus.EnsureTopics(ctx, []novacron.TopicSpec{{Name: "t"}}))
			c, err := bus.Consumer("g", []string{"t"})
			require.NoError(b, err)
			recs := make([]*novacron.Record, batch)
			for i := range recs {
				recs[i] = &novacron.Record{Topic: "t", Key: fmt.Appendf(nil, "key-%d", i), Value: make([]byte, 200)}
			}
			b.ReportAllocs()
			b.SetBytes(int64(200 * batch))
			for b.Loop() {
				require.NoError(b, bus.Produce(ctx, recs...))
				for got := 0; got < batch; {
					out, err := c.Poll(ctx)
					require.NoError(b, err)
					c.Ack(out...)
					got += len(out)
				}
			}
		})
	}
}
