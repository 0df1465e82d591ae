package bustest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
)

// Timeout bounds each conformance test; a real broker needs a few seconds
// per group join.
const Timeout = 90 * time.Second

// RunConformance runs the conformance tests as subtests of t. newBus
// returns a fresh, open bus and registers its Close with t.Cleanup; it
// may share a broker between calls, since every test uses topics and
// groups with unique names.
func RunConformance(t *testing.T, newBus func(t *testing.T) novacron.Bus) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b novacron.Bus)
	}{
		{"ProduceConsume", testProduceConsume},
		{"SameKeySamePartitionInOrder", testKeyOrder},
		{"ExplicitPartition", testExplicitPartition},
		{"HeadersAndTimestamp", testHeadersTimestamp},
		{"MaxPollRecords", testMaxPollRecords},
		{"RestartResumesAfterAcked", testRestartResumes},
		{"OutOfOrderAcksCommitContiguousPrefix", testOutOfOrderAcks},
		{"Lag", testLag},
		{"StartAtEnd", testStartAtEnd},
		{"PollHonoursContext", testPollContext},
		{"SecondMemberSharesPartitions", testRebalanceShares},
		{"AcksForRevokedPartitionsIgnored", testRevokedAcksIgnored},
		{"RebalanceListener", testRebalanceListener},
		{"EnsureTopicsIdempotent", testEnsureTopicsIdempotent},
		{"ProduceAfterCloseFails", testProduceAfterClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newBus(t))
		})
	}
}

// Name returns a topic or group name unique to this test and run.
func Name(t testing.TB, what string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := strings.NewReplacer("/", ".", " ", "_", "#", "_").Replace(t.Name())
	if len(n) > 80 {
		n = n[len(n)-80:]
	}
	return fmt.Sprintf("%s.%s.%s", what, n, hex.EncodeToString(b[:]))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

func ensure(t *testing.T, b novacron.Bus, partitions int32) string {
	t.Helper()
	topic := Name(t, "topic")
	require.NoError(t, b.EnsureTopics(testCtx(t), []novacron.TopicSpec{{Name: topic, Partitions: partitions, ReplicationFactor: 1}}))
	return topic
}

func consumer(t *testing.T, b novacron.Bus, group string, topics []string, opts ...novacron.ConsumerOption) novacron.Consumer {
	t.Helper()
	c, err := b.Consumer(group, topics, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

func closeConsumer(t *testing.T, c novacron.Consumer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, c.Close(ctx))
}

// produceN produces n records with values prefix-0.. and keys cycling
// through keys distinct keys (no key when keys is 0).
func produceN(t *testing.T, b novacron.Bus, topic, prefix string, n, keys int) []string {
	t.Helper()
	var recs []*novacron.Record
	var values []string
	for i := range n {
		v := fmt.Sprintf("%s-%d", prefix, i)
		r := &novacron.Record{Topic: topic, Value: []byte(v)}
		if keys > 0 {
			r.Key = fmt.Appendf(nil, "key-%d", i%keys)
		}
		recs = append(recs, r)
		values = append(values, v)
	}
	require.NoError(t, b.Produce(testCtx(t), recs...))
	return values
}

// pollN polls until at least n records arrived, failing after timeout.
func pollN(t *testing.T, c novacron.Consumer, n int, timeout time.Duration) []*novacron.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var got []*novacron.Record
	for len(got) < n {
		recs, err := c.Poll(ctx)
		require.NoError(t, err, "polled %d of %d records", len(got), n)
		got = append(got, recs...)
	}
	return got
}

// pollQuiet polls for d and returns whatever arrived.
func pollQuiet(t *testing.T, c novacron.Consumer, d time.Duration) []*novacron.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var got []*novacron.Record
	for {
		recs, err := c.Poll(ctx)
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			return got
		}
		got = append(got, recs...)
	}
}

func values(recs []*novacron.Record) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, string(r.Value))
	}
	slices.Sort(out)
	return out
}

func offsets(recs []*novacron.Record) []int64 {
	out := make([]int64, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Offset)
	}
	return out
}

func testProduceConsume(t *testing.T, b novacron.Bus) {
	topic := ensure(t, b, 3)
	want := produceN(t, b, topic, "v", 100, 10)
	c := consumer(t, b, Name(t, "group"), []string{topic})
	got := pollN(t, c, len(want), Timeout)
	c.Ack(got...)
	slices.Sort(want)
	require.Equal(t, want, values(got), "every record exactly once to a single member")
	for _, r := range got {
		require.Equal(t, topic, r.Topic)
		require.Contains(t, []int32{0, 1, 2}, r.Partition)
	}
}

func testKeyOrder(t *testing.T, b novacron.Bus) {
	topic := ensure(t, b, 4)
	const keys, perKey = 8, 25
	// Several Produce calls, interleaving keys.
	for round := range perKey {
		var recs []*novacron.Record
		for k := range keys {
			recs = append(recs, &novacron.Record{
				Topic: topic,
				Key:   fmt.Appendf(nil, "vm-%d", k),
				Value: fmt.Appendf(nil, "%d", round),
			})
		}
		require.NoError(t, b.Produce(testCtx(t), recs...))
	}
	c := consumer(t, b, Name(t, "group"), []string{topic})
	got := pollN(t, c, keys*perKey, Timeout)
	c.Ack(got...)

	partOf := map[string]int32{}
	seq := map[string][]string{}
	lastOffset := map[int32]int64{}
	for _, r := range got {
		k := string(r.Key)
		if p, ok := partOf[k]; ok {
			require.Equal(t, p, r.Partition, "key %s on two partitions", k)
		}
		partOf[k] = r.Partition
		seq[k] = append(seq[k], string(r.Value))
		if last, ok := lastOffset[r.Partition]; ok {
			require.Greater(t, r.Offset, last, "partition %d out of offset order", r.Partition)
		}
		lastOffset[r.Partition] = r.Offset
	}
	require.Len(t, seq, keys)
	for k, s := range seq {
		want := make([]string, perKey)
		for i := range want {
			want[i] = fmt.Sprint(i)
		}
		require.Equal(t, want, s, "key %s out of produce order", k)
	}

	// The mapping is stable: a second batch lands where the first did.
	more := &novacron.Record{Topic: topic, Key: []byte("vm-3"), Value: []byte("again")}
	require.NoError(t, b.Produce(testCtx(t), more))
	again := pollN(t, c, 1, Timeout)
	require.Equal(t, partOf["vm-3"], again[0].Partition)
}

func testExplicitPartition(t *testing.T, b novacron.Bus) {
	topic := ensure(t, b, 3)
	require.NoError(t, b.Produce(testCtx(t),
		&novacron.Record{Topic: topic, Partition: 2, Key: []byte("a"), Value: []byte("p2")},
		&novacron.Record{Topic: topic, Partition: 1, Value: []byte("p1")},
	))
	err := b.Produce(testCtx(t), &novacron.Record{Topic: topic, Partition: 7, Value: []byte("nope")})
	require.Error(t, err, "partition 7 of a 3-partition topic")
	c := consumer(t, b, Name(t, "group"), []string{topic})
	got := pollN(t, c, 2, Timeout)
	for _, r := range got {
		require.Equal(t, string(r.Value), fmt.Sprintf("p%d", r.Partition))
	}
}

func testHeadersTimestamp(t *testing.T, b novacron.Bus) {
	topic := ensure(t, b, 1)
	ts := time.UnixMilli(1_700_000_000_123)
	key, val, hv := []byte("k"), []byte("v"), []byte("hv")
	in := &novacron.Record{
		Topic: topic, Key: key, Value: val, Timestamp: ts,
		Headers: []novacron.RecordHeader{{Key: "codec", Value: hv}, {Key: "empty"}},
	}
	require.NoError(t, b.Produce(testCtx(t), in))
	// Produce does not retain the record: the caller may reuse buffers.
	key[0], val[0], hv[0] = 'X', 'X', 'X'

	c := consumer(t, b, Name(t, "group"), []string{topic})
	got := pollN(t, c, 1, Timeout)
	require.Len(t, got, 1)
	r := got[0]
	require.Equal(t, "k", string(r.Key))
	require.Equal(t, "v", string(r.Value))
	require.True(t, ts.Equal(r.Timestamp), "timestamp %v, want %v", r.Timestamp, ts)
	require.Len(t, r.Headers, 2)
	require.Equal(t, "codec", r.Headers[0].Key)
	require.Equal(t, "hv", string(r.Headers[0].Value))
	require.Equal(t, "empty", r.Headers[1].Key)
	require.Empty(t, r.Headers[1].Value)

	// A record without a timestamp gets the produce time.
	before := time.Now().Add(-time.Second)
	require.NoError(t, b.Produce(testCtx(t), &novacron.Record{Topic: topic, Value: []byte("now")}))
	r = pollN(t, c, 1, Timeout)[0]
	require.True(t, r.Timestamp.After(before), "timestamp %v not set at produce", r.Timestamp)
}

func testMaxPollRecords(t *testing.T, b novacron.Bus) {
	topic := ensure(t, b, 2)
	want := produceN(t, b, topic, "m", 50, 5)
	c := consumer(t, b, Name(t, "group"), []string{topic}, novacron.WithMaxPollRecords(7))
	ctx := testCtx(t)
	var got []*novacron.Record
	for len(got) < len(want) {
		recs, err := c.Poll(ctx)
		require.NoError(t, err)
		require.LessOrEqual(t, len(recs), 7)
		got = append(got, recs...)
	}
	slices.Sort(want)
	require.Equal(t, want, values(got))
}

func testRestartResumes(t *testing.T, b novacron.Bus) {
	topic := ensure(t, b, 1)
	group := Name(t, "group")
	produceN(t, b, topic, "r", 20, 0)

	c1 := consumer(t, b, group, []string{topic})
	got := pollN(t, c1, 20, Timeout)
	require.Equal(t, int64(0), got[0].Offset)
	c1.Ack(got[:10]...) // 10..19 were polled but are not acked
	closeConsumer(t, c1)

	c2 := consumer(t, b, group, []string{topic})
	again := pollN(t, c2, 10, Timeout)
	want := make([]int64, 0, 10)
	for o := int64(10); o < 20; o++ {
		want = append(want, o)
	}
	require.Equal(t, want, offsets(again), "resume right after the last acked record")
	require.Empty(t, pollQuiet(t, c2, 300*time.Millisecond), "nothing else is redelivered")
}

func testOutOfOrderAcks(t *testing.T, b novacron.Bus) {
	topic := ensure(t, b, 1)
	group := Name(t, "group")
	produceN(t, b, topic, "o", 10, 0)

	c1 := consumer(t, b, group, []string{topic})
	got := pollN(t, c1, 10, Timeout)
	byOffset := map[int64]*novacron.Record{}
	for _, r := range got {
		byOffset[r.Offset] = r
	}
	for _, o := range []int64{5, 2, 0, 4, 1, 9, 6} { // 3 is never acked
		c1.Ack(byOffset[o])
	}
	closeConsumer(t, c1)

	c2 := consumer(t, b, group, []string{topic})
	again := pollN(t, c2, 7, Timeout)
	require.Equal(t, []int64{3, 4, 5, 6, 7, 8, 9}, offsets(again),
		"only the contiguous prefix 0..2 was committed")
}

func testLag(t *testing.T, b novacron.Bus) {
	topic := ensure(t, b, 1)
	produceN(t, b, topic, "l", 10, 0)
	c := consumer(t, b, Name(t, "group"), []string{topic})
	got := pollN(t, c, 10, Timeout)
	require.Equal(t, int64(10), c.Lag(), "nothing acked")
	c.Ack(got[:4]...)
	require.Equal(t, int64(6), c.Lag())
	c.Ack(got[6:]...)
	require.Equal(t, int64(6), c.Lag(), "a gap blocks the commit")
	c.Ack(got[4:6]...)
	require.Equal(t, int64(0), c.Lag())
}

func testStartAtEnd(t *testing.T, b novacron.Bus) {
	topic := ensure(t, b, 2)
	produceN(t, b, topic, "old", 10, 3)
	c := consumer(t, b, Name(t, "group"), []string{topic}, novacron.WithStartAtEnd())
	ctx := testCtx(t)
	// The member may still be joining: keep producing until it sees one.
	var got []*novacron.Record
	for i := 0; len(got) == 0; i++ {
		require.NoError(t, b.Produce(ctx, &novacron.Record{Topic: topic, Key: []byte("k"), Value: fmt.Appendf(nil, "new-%d", i)}))
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		recs, err := c.Poll(pctx)
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
		}
		got = append(got, recs...)
	}
	got = append(got, pollQuiet(t, c, 300*time.Millisecond)...)
	for _, r := range got {
		require.True(t, strings.HasPrefix(string(r.Value), "new-"), "got %q from before the group started", r.Value)
	}
}

func testPollContext(t *testing.T, b novacron.Bus) {
	topic := ensure(t, b, 1)
	c := consumer(t, b, Name(t, "group"), []string{topic})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	recs, err := c.Poll(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Empty(t, recs)
	require.Less(t, time.Since(start), 10*time.Second)

	closeConsumer(t, c)
	_, err = c.Poll(t.Context())
	require.Error(t, err, "poll after close")
}

// testRebalanceShares runs two members of one group concurrently while
// records keep arriving: both must get some, and together all.
func testRebalanceShares(t *testing.T, b novacron.Bus) {
	topic := ensure(t, b, 4)
	group := Name(t, "group")
	ctx := testCtx(t)

	var mu sync.Mutex
	seen := map[string]int{} // value -> deliveries
	perMember := [2]int{}
	consume := func(i int, c novacron.Consumer, stop <-chan struct{}) error {
		for {
			select {
			case <-stop:
				return nil
			default:
			}
			pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			recs, err := c.Poll(pctx)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			mu.Lock()
			for _, r := range recs {
				seen[string(r.Value)]++
			}
			perMember[i] += len(recs)
			mu.Unlock()
			c.Ack(recs...)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	start := func(i int, c novacron.Consumer) {
		wg.Go(func() { errs <- consume(i, c, stop) })
	}

	var want []string
	want = append(want, produceN(t, b, topic, "a", 200, 50)...)
	c1 := consumer(t, b, group, []string{topic})
	start(0, c1)
	c2 := consumer(t, b, group, []string{topic})
	start(1, c2)

	// Keep producing until both members have consumed something and
	// everything produced has been seen.
	deadline := time.Now().Add(Timeout - 10*time.Second)
	for round := 0; ; round++ {
		want = append(want, produceN(t, b, topic, fmt.Sprintf("b%d", round), 20, 50)...)
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		got, distinct := perMember, len(seen) // copies: the members write them
		mu.Unlock()
		if got[0] > 0 && got[1] > 0 && distinct == len(want) {
			break
		}
		require.True(t, time.Now().Before(deadline), "members got %v records, %d of %d distinct", got, distinct, len(want))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, v := range want {
		require.GreaterOrEqual(t, seen[v], 1, "record %s lost", v)
	}
}

// testRevokedAcksIgnored: member A polls everything without acking, B
// joins and takes some partitions; A's late acks for them must not
// commit, so after both leave the group re-reads exactly B's partitions.
func testRevokedAcksIgnored(t *testing.T, b novacron.Bus) {
	topic := ensure(t, b, 4)
	group := Name(t, "group")
	want := produceN(t, b, topic, "x", 200, 50)

	a := consumer(t, b, group, []string{topic})
	fromA := pollN(t, a, len(want), Timeout)

	bm := consumer(t, b, group, []string{topic})
	fromB := pollN(t, bm, 1, Timeout) // B owns partitions once it reads
	fromB = append(fromB, pollQuiet(t, bm, time.Second)...)
	moved := map[int32]bool{}
	for _, r := range fromB {
		moved[r.Partition] = true
	}
	require.NotEmpty(t, moved)
	require.Less(t, len(moved), 4, "A kept some partitions")

	a.Ack(fromA...) // ignored for the partitions B took
	closeConsumer(t, a)
	closeConsumer(t, bm) // B acked nothing

	c := consumer(t, b, group, []string{topic})
	var wantAgain []string
	for _, r := range fromA {
		if moved[r.Partition] {
			wantAgain = append(wantAgain, string(r.Value))
		}
	}
	slices.Sort(wantAgain)
	again := pollN(t, c, len(wantAgain), Timeout)
	again = append(again, pollQuiet(t, c, 500*time.Millisecond)...)
	require.Equal(t, wantAgain, values(again), "exactly the moved partitions are re-read")
}

func testEnsureTopicsIdempotent(t *testing.T, b novacron.Bus) {
	ctx := testCtx(t)
	topic := Name(t, "topic")
	compacted := Name(t, "topic")
	specs := []novacron.TopicSpec{
		{Name: topic, Partitions: 2, ReplicationFactor: 1},
		{Name: compacted, Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "compact"}},
	}
	require.NoError(t, b.EnsureTopics(ctx, specs))
	require.NoError(t, b.EnsureTopics(ctx, specs), "second call")
	specs[0].Partitions = 5 // existing topics are left as they are
	require.NoError(t, b.EnsureTopics(ctx, specs[:1]))
	require.NoError(t, b.EnsureTopics(ctx, nil))

	require.NoError(t, b.Produce(ctx,
		&novacron.Record{Topic: topic, Partition: 1, Value: []byte("p1")},
		&novacron.Record{Topic: compacted, Key: []byte("k"), Value: []byte("c")},
	))
	require.Error(t, b.Produce(ctx, &novacron.Record{Topic: topic, Partition: 4, Value: []byte("p4")}),
		"the topic still has 2 partitions")
	require.NoError(t, b.Ping(ctx))
}

func testProduceAfterClose(t *testing.T, b novacron.Bus) {
	topic := ensure(t, b, 1)
	require.NoError(t, b.Produce(testCtx(t), &novacron.Record{Topic: topic, Value: []byte("before")}))
	require.NoError(t, b.Close())
	err := b.Produce(testCtx(t), &novacron.Record{Topic: topic, Value: []byte("after")})
	require.ErrorIs(t, err, novacron.ErrBusClosed)
	require.ErrorIs(t, b.Ping(testCtx(t)), novacron.ErrBusClosed)
	_, err = b.Consumer(Name(t, "group"), []string{topic})
	require.ErrorIs(t, err, novacron.ErrBusClosed)
	require.NoError(t, b.Close(), "Close is idempotent")
}

// listenerLog records a member's rebalance callbacks.
type listenerLog struct {
	mu       sync.Mutex
	owned    map[int32]bool
	assigned []int32
	revoked  []int32
	onRevoke func(parts []int32)
}

func (l *listenerLog) option(topic string) novacron.ConsumerOption {
	l.owned = map[int32]bool{}
	return novacron.WithRebalanceListener(
		func(_ context.Context, tp string, parts []int32) {
			if tp != topic {
				return
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			for _, p := range parts {
				l.owned[p] = true
			}
			l.assigned = append(l.assigned, parts...)
		},
		func(_ context.Context, tp string, parts []int32) {
			if tp != topic {
				return
			}
			if l.onRevoke != nil {
				l.onRevoke(parts)
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			for _, p := range parts {
				delete(l.owned, p)
			}
			l.revoked = append(l.revoked, parts...)
		})
}

// requireOwned checks that every record comes from a partition the
// listener was told of.
func (l *listenerLog) requireOwned(t *testing.T, recs []*novacron.Record) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		require.True(t, l.owned[r.Partition], "record of partition %d polled before its assigned callback", r.Partition)
	}
}

// testRebalanceListener: the assigned callback runs before Poll returns
// records of a partition; when a second member joins, the first member's
// revoked callback runs before the second reads the moved partitions, and
// what it acknowledges there is committed (the second member does not
// re-read it); Close revokes what the member still owns.
func testRebalanceListener(t *testing.T, b novacron.Bus) {
	topic := ensure(t, b, 4)
	group := Name(t, "group")
	first := produceN(t, b, topic, "x", 80, 40)

	var la listenerLog
	var a novacron.Consumer // set before the first Poll; read under polledMu
	var polledMu sync.Mutex
	var polledA []*novacron.Record
	la.onRevoke = func(parts []int32) {
		// Acknowledge the first records read on the partitions being
		// lost, as a stage writing a final checkpoint would; later ones
		// stay unacknowledged and must reach the next owner.
		polledMu.Lock()
		defer polledMu.Unlock()
		for _, r := range polledA {
			if slices.Contains(parts, r.Partition) && strings.HasPrefix(string(r.Value), "x-") {
				a.Ack(r)
			}
		}
	}
	a = consumer(t, b, group, []string{topic}, la.option(topic))
	recs := pollN(t, a, len(first), Timeout)
	la.requireOwned(t, recs)
	polledMu.Lock()
	polledA = recs
	polledMu.Unlock()
	require.ElementsMatch(t, []int32{0, 1, 2, 3}, la.assigned)

	// A keeps polling (Kafka members must, to stay in the group) without
	// acking anything outside its revoke callback.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			got, _ := a.Poll(ctx)
			cancel()
			polledMu.Lock()
			polledA = append(polledA, got...)
			polledMu.Unlock()
		}
	})
	var lb listenerLog
	bm := consumer(t, b, group, []string{topic}, lb.option(topic))
	produceN(t, b, topic, "y", 80, 40)
	var fromB []*novacron.Record
	deadline := time.Now().Add(Timeout - 10*time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		got, _ := bm.Poll(ctx)
		cancel()
		lb.requireOwned(t, got)
		fromB = append(fromB, got...)
		lb.mu.Lock()
		n := len(lb.assigned)
		lb.mu.Unlock()
		if n > 0 && len(fromB) > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "second member got no partitions (assigned %v, %d records; A revoked %v)", lb.assigned, len(fromB), la.revoked)
	}
	fromB = append(fromB, pollQuiet(t, bm, time.Second)...)
	close(stop)
	wg.Wait()

	la.mu.Lock()
	revokedA := slices.Clone(la.revoked)
	la.mu.Unlock()
	lb.mu.Lock()
	assignedB := slices.Clone(lb.assigned)
	lb.mu.Unlock()
	require.NotEmpty(t, revokedA, "first member never told of its revoke")
	for _, p := range assignedB {
		require.Contains(t, revokedA, p, "partition %d assigned to B without A's revoke", p)
	}
	for _, r := range fromB {
		require.True(t, strings.HasPrefix(string(r.Value), "y-"),
			"B re-read %s of partition %d, acknowledged in A's revoke", r.Value, r.Partition)
	}
	closeConsumer(t, bm)
	lb.mu.Lock()
	require.ElementsMatch(t, assignedB, lb.revoked, "Close revokes what B owned")
	lb.mu.Unlock()
}
