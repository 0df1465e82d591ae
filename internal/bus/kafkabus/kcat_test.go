package kafkabus

import (
	"context"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/bus/bustest"
	"github.com/novacron/novacron/internal/testserver"
)

// TestKcatInterop checks the bus speaks plain Kafka: kcat (librdkafka)
// reads what NovaCron produced (zstd-compressed batches) and NovaCron
// consumes what kcat produced.
func TestKcatInterop(t *testing.T) {
	kcat := testserver.Kcat(t)
	brokers := testserver.Kafka(t)
	b := newTestBus(t, brokers)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	t.Run("KcatReadsNovaCron", func(t *testing.T) {
		topic := bustest.Name(t, "topic")
		require.NoError(t, b.EnsureTopics(ctx, []novacron.TopicSpec{{Name: topic, Partitions: 3, ReplicationFactor: 1}}))
		var recs []*novacron.Record
		var want []string
		for _, kv := range [][2]string{{"series-1", "a"}, {"series-2", "b"}, {"series-1", "c"}} {
			recs = append(recs, &novacron.Record{Topic: topic, Key: []byte(kv[0]), Value: []byte(kv[1])})
		}
		require.NoError(t, b.Produce(ctx, recs...))
		// kcat sees each record on the partition the Java client
		// would have chosen for its key.
		for _, r := range recs {
			want = append(want, string(r.Key)+"="+string(r.Value)+"@"+murmur2Partition(r.Key, 3))
		}
		out, err := exec.CommandContext(ctx, kcat, "-b", brokers[0], "-C", "-t", topic,
			"-o", "beginning", "-e", "-q", "-f", `%k=%s@%p\n`).CombinedOutput()
		require.NoError(t, err, "kcat: %s", out)
		got := strings.Split(strings.TrimSpace(string(out)), "\n")
		slices.Sort(got)
		slices.Sort(want)
		require.Equal(t, want, got)
	})

	t.Run("NovaCronReadsKcat", func(t *testing.T) {
		topic := bustest.Name(t, "topic")
		require.NoError(t, b.EnsureTopics(ctx, []novacron.TopicSpec{{Name: topic, Partitions: 2, ReplicationFactor: 1}}))
		cmd := exec.CommandContext(ctx, kcat, "-b", brokers[0], "-P", "-t", topic, "-K:")
		cmd.Stdin = strings.NewReader("vm-1:cpu=0.5\nvm-2:cpu=0.7\n")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "kcat: %s", out)

		c, err := b.Consumer(bustest.Name(t, "group"), []string{topic})
		require.NoError(t, err)
		defer c.Close(context.Background())
		var got []string
		for len(got) < 2 {
			recs, err := c.Poll(ctx)
			require.NoError(t, err)
			for _, r := range recs {
				got = append(got, string(r.Key)+":"+string(r.Value))
			}
			c.Ack(recs...)
		}
		slices.Sort(got)
		require.Equal(t, []string{"vm-1:cpu=0.5", "vm-2:cpu=0.7"}, got)
	})
}

// murmur2Partition is where Kafka's default partitioner (and so the Java
// client) puts key among n partitions.
func murmur2Partition(key []byte, n int) string {
	return strconv.Itoa(kgo.StickyKeyPartitioner(nil).ForTopic("").Partition(&kgo.Record{Key: key}, n))
}
