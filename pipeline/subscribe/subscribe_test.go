package subscribe

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/bus/membus"
	"github.com/novacron/novacron/internal/inventory"
	"github.com/novacron/novacron/pipeline/deadletter"
)

func TestInventorySubscriberStoresGoodAndDeadLettersBad(t *testing.T) {
	ctx := context.Background()
	b, err := membus.New(membus.NewDefaultConfig(), membus.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NoError(t, b.EnsureTopics(ctx, []novacron.TopicSpec{{Name: "inv", Partitions: 1}, {Name: "dl", Partitions: 1}}))

	store := inventory.NewStore()
	reg := prometheus.NewRegistry()
	s := Inventory(b, "api", "inv", "dl", store, Settings{Registerer: reg})
	require.NoError(t, s.Shutdown(ctx), "shutdown without start")
	require.NoError(t, s.Start(ctx))
	t.Cleanup(func() { require.NoError(t, s.Shutdown(ctx)) })

	good, err := json.Marshal(novacron.Inventory{Source: "sim", Time: time.Now(), VMs: []novacron.VM{{ID: "vm-1", Name: "a"}}})
	require.NoError(t, err)
	require.NoError(t, b.Produce(ctx,
		&novacron.Record{Topic: "inv", Key: []byte("x"), Value: []byte("{not json")},
		&novacron.Record{Topic: "inv", Key: []byte("y"), Value: []byte(`{"vms":[]}`)},
		&novacron.Record{Topic: "inv", Key: []byte("sim"), Value: good},
	))
	require.Eventually(t, func() bool { _, ok := store.VM("vm-1"); return ok }, 10*time.Second, 10*time.Millisecond,
		"a good snapshot after bad ones is still applied")

	dl, err := b.Consumer("reader", []string{"dl"})
	require.NoError(t, err)
	defer dl.Close(ctx)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var got []*novacron.Record
	for len(got) < 2 {
		recs, err := dl.Poll(pctx)
		require.NoError(t, err)
		got = append(got, recs...)
	}
	require.Equal(t, []byte("{not json"), got[0].Value)
	var errHdr string
	for _, h := range got[1].Headers {
		if h.Key == deadletter.HeaderError {
			errHdr = string(h.Value)
		}
	}
	require.Contains(t, errHdr, "no source")
	require.Equal(t, 2.0, testutil.ToFloat64(s.metrics.records.WithLabelValues("deadletter")))
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.records.WithLabelValues("ok")))
}
