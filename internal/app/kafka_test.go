package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/config"
	"github.com/novacron/novacron/internal/storage/prw"
	"github.com/novacron/novacron/internal/testserver"
	"github.com/novacron/novacron/pipeline/publish"
)

// kafkaConfig is testConfig on the real Kafka broker and a
// VictoriaMetrics, with topics and groups private to the test.
func kafkaConfig(t *testing.T, brokers []string, vmURL string) *config.Config {
	t.Helper()
	cfg := testConfig(t)
	prefix := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	cfg.Bus.Type = config.BusKafka
	cfg.Bus.Kafka.Brokers = brokers
	cfg.Bus.Kafka.HeartbeatInterval = 500 * time.Millisecond
	cfg.Bus.Kafka.SessionTimeout = 6 * time.Second
	cfg.Bus.Kafka.CommitInterval = 200 * time.Millisecond
	cfg.Topics.Samples = prefix + ".samples"
	cfg.Topics.Inventory = prefix + ".inventory"
	cfg.Topics.Events = prefix + ".events"
	cfg.Topics.DeadLetter = prefix + ".deadletter"
	cfg.Topics.Partitions = 3
	cfg.Ingest.Group = prefix + "-ingest"
	cfg.Storage.Type = config.StorageRemote
	cfg.Storage.Remote.Write.URL = vmURL + "/api/v1/write"
	cfg.Storage.Remote.Query.URL = vmURL
	cfg.Storage.Sender.MaxBackoff = time.Second
	return cfg
}

// vmCount returns the number of distinct samples VictoriaMetrics holds for
// the selector, counted over a year around now.
func vmCount(t *testing.T, vmURL, selector string) float64 {
	t.Helper()
	q := fmt.Sprintf(`sum(count_over_time(%s[1y]))`, selector)
	resp, err := http.Get(vmURL + "/api/v1/query?" + url.Values{
		"query": {q}, "time": {strconv.FormatInt(time.Now().Add(24*time.Hour).Unix(), 10)},
	}.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	var r promResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	require.Equal(t, "success", r.Status, r.Error)
	if len(r.Data.Result) == 0 {
		return 0
	}
	v, err := strconv.ParseFloat(fmt.Sprint(r.Data.Result[0].Value[1]), 64)
	require.NoError(t, err)
	return v
}

// vmDistinct returns the number of distinct samples (series and
// timestamp) VictoriaMetrics holds for selector, read raw through
// /api/v1/export. Delivery is at least once: a record re-read after a
// crash is written again, and VictoriaMetrics removes such duplicates
// (-dedup.minScrapeInterval) only when it merges parts, so a count over
// time may see them for a while.
func vmDistinct(t *testing.T, vmURL, selector string) float64 {
	t.Helper()
	resp, err := http.Get(vmURL + "/api/v1/export?" + url.Values{"match[]": {selector}, "start": {"0"}}.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	seen := map[string]map[int64]bool{}
	dec := json.NewDecoder(resp.Body)
	for dec.More() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Timestamps []int64           `json:"timestamps"`
		}
		require.NoError(t, dec.Decode(&line))
		k, err := json.Marshal(line.Metric) // map keys are sorted
		require.NoError(t, err)
		ts := seen[string(k)]
		if ts == nil {
			ts = map[int64]bool{}
			seen[string(k)] = ts
		}
		for _, tm := range line.Timestamps {
			ts[tm] = true
		}
	}
	n := 0
	for _, ts := range seen {
		n += len(ts)
	}
	return float64(n)
}

// waitStored waits until VictoriaMetrics holds want distinct samples for
// selector (vmDistinct).
// Selectors exclude the analytics stage's derived series (name:kind),
// which keep the source labels.
func waitStored(t *testing.T, vm *testserver.VM, selector string, want float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got float64
	for time.Now().Before(deadline) {
		_ = vm.ForceFlush()
		if got = vmDistinct(t, vm.URL(), selector); got == want {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s: VictoriaMetrics holds %v samples, want %v", selector, got, want)
}

// TestSplitRolesOnKafkaAndVictoriaMetrics runs the collector, processor
// and API roles as separate apps sharing one configuration, on the real
// Kafka broker and VictoriaMetrics; kcat reads NovaCron's records and
// produces a remote-write record that NovaCron ingests.
func TestSplitRolesOnKafkaAndVictoriaMetrics(t *testing.T) {
	brokers := testserver.Kafka(t)
	vm := testserver.VictoriaMetrics(t)
	kcat := testserver.Kcat(t)
	cfg := kafkaConfig(t, brokers, vm.URL())
	cfg.Collectors.Sim.Region = "split-roles"

	openApp(t, cfg, RoleProcessor)
	apiApp := openApp(t, cfg, RoleAPI)
	openApp(t, cfg, RoleCollector)
	base, tok := apiApp.APIURL(), apiApp.Token()

	ahead := func() time.Time { return time.Now().Add(2 * time.Minute) }
	waitValue(t, base, tok, `count(count by (vm_id) (novacron_vm_cpu_usage_ratio{region="split-roles"}))`, ahead, 60, 2*time.Minute)
	var fleet struct{ Total int }
	require.Eventually(t, func() bool {
		return apiGet(t, base, tok, "/api/v1/fleet", &fleet) == http.StatusOK && fleet.Total == 60
	}, time.Minute, 200*time.Millisecond)

	// kcat reads NovaCron's samples topic: keys are series hashes.
	out, err := exec.Command(kcat, "-b", strings.Join(brokers, ","), "-C", "-t", cfg.Topics.Samples,
		"-o", "beginning", "-c", "5", "-e", "-q", "-f", "%k %S\n").CombinedOutput()
	require.NoError(t, err, string(out))
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 5)
	for _, l := range lines {
		require.Regexp(t, `^[0-9a-f]{16} [1-9][0-9]*$`, l)
	}

	// kcat produces a remote-write WriteRequest; NovaCron stores it.
	ts := time.Now().Add(-time.Minute).UnixMilli()
	s := []novacron.Series{{
		Labels:  novacron.Labels{{Name: "__name__", Value: "kcat_interop_value"}, {Name: "source", Value: "kcat"}},
		Samples: []novacron.Sample{{T: ts, V: 42}, {T: ts + 1000, V: 43}},
	}}
	b, err := prw.AppendWriteRequest(nil, s)
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "wr.bin")
	require.NoError(t, os.WriteFile(f, b, 0o600))
	out, err = exec.Command(kcat, "-b", strings.Join(brokers, ","), "-P", "-t", cfg.Topics.Samples,
		"-k", string(publish.SeriesKey(s[0].Labels)), f).CombinedOutput()
	require.NoError(t, err, string(out))
	now := func() time.Time { return time.UnixMilli(ts + 1000) }
	waitValue(t, base, tok, `kcat_interop_value{source="kcat"}`, now, 43, time.Minute)
}

// processorHelperEnv makes the test binary run `novacron processor` (see
// TestMain) so a test can kill -9 a real processor process.
const processorHelperEnv = "NOVACRON_TEST_RUN_MAIN"

func init() {
	if args := os.Getenv(processorHelperEnv); args != "" {
		os.Exit(Main(context.Background(), strings.Fields(args), os.Stdout, os.Stderr))
	}
}

func startProcessorProcess(t *testing.T, cfgFile string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), processorHelperEnv+"=processor --config.file="+cfgFile)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd
}

// TestProcessorKill9LosesNothing kills the processor process with SIGKILL
// while the simulated fleet produces, restarts it, and checks that every
// sample produced is stored once per timestamp.
func TestProcessorKill9LosesNothing(t *testing.T) {
	brokers := testserver.Kafka(t)
	vm := testserver.NewVictoriaMetrics(t)
	cfg := kafkaConfig(t, brokers, vm.URL())
	sim := &cfg.Collectors.Sim
	sim.VMs, sim.Hosts, sim.Speed = 10, 2, 1200
	sim.StartTime = time.Now().Add(-12 * time.Hour).Truncate(time.Second)
	sim.Region = "crash"
	cfgFile := writeFile(t, t.TempDir(), "novacron.yaml", fmt.Sprintf(`
log: {level: warn}
data_dir: %s
bus:
  type: kafka
  kafka:
    brokers: [%s]
    heartbeat_interval: 500ms
    session_timeout: 6s
    commit_interval: 200ms
topics: {samples: %s, inventory: %s, events: %s, deadletter: %s, partitions: 3}
ingest: {group: %s}
storage:
  type: remote
  remote:
    write: {url: %s/api/v1/write}
    query: {url: %s}
collectors: {sim: {enabled: false}}
`, t.TempDir(), strings.Join(brokers, ","), cfg.Topics.Samples, cfg.Topics.Inventory, cfg.Topics.Events,
		cfg.Topics.DeadLetter, cfg.Ingest.Group, vm.URL(), vm.URL()))

	proc := startProcessorProcess(t, cfgFile)
	collector := openApp(t, cfg, RoleCollector)

	// The first processor process is really at work before it is killed.
	require.Eventually(t, func() bool {
		_ = vm.ForceFlush()
		return vmCount(t, vm.URL(), `{region="crash",__name__!~".+:.+"}`) > 0
	}, time.Minute, 200*time.Millisecond)
	time.Sleep(time.Second)
	require.NoError(t, proc.Process.Signal(syscall.SIGKILL))
	_, _ = proc.Process.Wait()
	time.Sleep(2 * time.Second) // produced meanwhile: must be picked up after the restart
	startProcessorProcess(t, cfgFile)
	time.Sleep(3 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, collector.Close(ctx))
	produced := gaugeValue(t, collector, "novacron_publish_samples_total")
	require.Greater(t, produced, 10000.0, "the fleet produced a meaningful stream")
	waitStored(t, vm, `{region="crash",__name__!~".+:.+"}`, produced, 2*time.Minute)
}

// TestStorageOutageLosesNothing stops VictoriaMetrics while the pipeline
// runs, starts it again, and checks that nothing was lost and the sender's
// queue stayed within its bound meanwhile.
func TestStorageOutageLosesNothing(t *testing.T) {
	brokers := testserver.Kafka(t)
	vm := testserver.NewVictoriaMetrics(t)
	cfg := kafkaConfig(t, brokers, vm.URL())
	sim := &cfg.Collectors.Sim
	sim.VMs, sim.Hosts, sim.Speed = 10, 2, 600
	sim.StartTime = time.Now().Add(-12 * time.Hour).Truncate(time.Second)
	sim.Region = "outage"
	cfg.Storage.Sender.QueueCapacity = 4

	proc := openApp(t, cfg, RoleProcessor)
	collector := openApp(t, cfg, RoleCollector)
	time.Sleep(2 * time.Second)
	require.NoError(t, vm.Stop())
	maxQueue := 0.0
	for range 20 {
		time.Sleep(250 * time.Millisecond)
		maxQueue = max(maxQueue, gaugeValue(t, proc, "novacron_storage_queue_length"))
	}
	require.LessOrEqual(t, maxQueue, 4.0, "the sender's queue is bounded while storage is down")
	require.Greater(t, gaugeValue(t, proc, "novacron_ingest_consumer_lag_records"), 0.0, "the backlog waits on the bus")
	require.NoError(t, vm.Start())
	time.Sleep(2 * time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, collector.Close(ctx))
	produced := gaugeValue(t, collector, "novacron_publish_samples_total")
	require.Greater(t, produced, 5000.0)
	waitStored(t, vm, `{region="outage",__name__!~".+:.+"}`, produced, 2*time.Minute)
}

func gaugeValue(t *testing.T, a *App, name string) float64 {
	t.Helper()
	mfs, err := a.Registry.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
