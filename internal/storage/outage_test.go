package storage_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/remotewrite"
	"github.com/novacron/novacron/internal/testserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.StopVictoriaMetrics()
	os.Exit(code)
}

// TestOutage streams batches through a Sender into VictoriaMetrics, stops
// the server in the middle and restarts it on the same port and data
// directory. Every batch must be reported written, every sample must be
// stored once, and while the server is down the queue must stay within
// its capacity with the producer held back.
func TestOutage(t *testing.T) {
	vm := testserver.NewVictoriaMetrics(t)
	w, err := remotewrite.New(remotewrite.Config{URL: vm.WriteURL(), Timeout: 2 * time.Second}, storage.Settings{})
	require.NoError(t, err)
	cfg := storage.NewDefaultSenderConfig()
	cfg.QueueCapacity = 8
	cfg.Concurrency = 2
	cfg.MinBackoff = 20 * time.Millisecond
	cfg.MaxBackoff = 200 * time.Millisecond
	cfg.Timeout = 2 * time.Second
	reg := prometheus.NewRegistry()
	s := storage.NewSender(w, cfg, storage.Settings{Registerer: reg})
	ctx := context.Background()
	require.NoError(t, s.Start(ctx))

	const (
		batches   = 200
		perBatch  = 10
		metricNam = "nc_outage_test"
	)
	base := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
	var enqueued, written atomic.Int32
	var errsMu sync.Mutex
	var doneErrs []error
	allDone := make(chan struct{})
	producerDone := make(chan error, 1)
	go func() {
		for i := range batches {
			b := make([]novacron.Series, perBatch)
			for j := range b {
				b[j] = novacron.Series{
					Labels:  novacron.Labels{{Name: "__name__", Value: metricNam}, {Name: "vm_id", Value: fmt.Sprintf("vm-%d", j)}},
					Samples: []novacron.Sample{{T: base + int64(i)*1000, V: float64(i)}},
				}
			}
			err := s.Enqueue(ctx, b, func(err error) {
				if err != nil {
					errsMu.Lock()
					doneErrs = append(doneErrs, err)
					errsMu.Unlock()
				}
				if written.Add(1) == batches {
					close(allDone)
				}
			})
			if err != nil {
				producerDone <- err
				return
			}
			enqueued.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
		producerDone <- nil
	}()

	// Watch the queue the whole time.
	var maxQueue atomic.Int64
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			if n := int64(gather(t, reg, "novacron_storage_queue_length")); n > maxQueue.Load() {
				maxQueue.Store(n)
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()

	require.Eventually(t, func() bool { return written.Load() >= 40 }, 30*time.Second, time.Millisecond)
	require.NoError(t, vm.Stop())
	// While the server is down the queue fills and the producer blocks.
	require.Eventually(t, func() bool {
		return gather(t, reg, "novacron_storage_queue_length") == float64(cfg.QueueCapacity)
	}, 10*time.Second, 5*time.Millisecond)
	stalled := enqueued.Load()
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, stalled, enqueued.Load(), "Enqueue kept returning while the queue was full")
	require.Less(t, stalled, int32(batches))
	require.Greater(t, gather(t, reg, "novacron_storage_retries_total"), 0.0)

	require.NoError(t, vm.Start())
	require.NoError(t, <-producerDone)
	select {
	case <-allDone:
	case <-time.After(60 * time.Second):
		t.Fatalf("only %d of %d batches reported done", written.Load(), batches)
	}
	require.NoError(t, s.Shutdown(ctx))
	close(stopWatch)
	<-watchDone
	require.Empty(t, doneErrs)
	require.LessOrEqual(t, maxQueue.Load(), int64(cfg.QueueCapacity))
	require.Equal(t, float64(batches*perBatch), gather(t, reg, "novacron_storage_samples_written_total"))

	require.NoError(t, vm.ForceFlush())
	counts := exportCounts(t, vm.URL(), metricNam)
	require.Len(t, counts, perBatch)
	for vmID, n := range counts {
		require.Equal(t, batches, n, "samples of %s", vmID)
	}
}

// exportCounts returns the number of stored samples per vm_id, failing on
// a timestamp stored twice.
func exportCounts(t *testing.T, base, name string) map[string]int {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/export?match[]=" + url.QueryEscape(name))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Timestamps []int64           `json:"timestamps"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		seen := map[int64]bool{}
		for _, ts := range line.Timestamps {
			require.False(t, seen[ts], "timestamp %d stored twice for %v", ts, line.Metric)
			seen[ts] = true
		}
		out[line.Metric["vm_id"]] += len(line.Timestamps)
	}
	require.NoError(t, sc.Err())
	return out
}
