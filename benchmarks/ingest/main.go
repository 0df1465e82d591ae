package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/novacron/novacron/internal/config"
)

// Scenario names.
const (
	scenarioRaw        = "raw-vm"
	scenarioKafkaVM    = "kafka-vm"
	scenarioMemoryVM   = "memory-vm"
	scenarioMemoryTSDB = "memory-tsdb"
	// Diagnostics, not run by default: the same drains into a store that
	// accepts everything at once.
	scenarioKafkaNull  = "kafka-null"
	scenarioMemoryNull = "memory-null"
)

var scenarioPaths = map[string]string{
	scenarioRaw:        "N writers → VictoriaMetrics /api/v1/write (peer baseline)",
	scenarioKafkaVM:    "Kafka → ingest → sender → remote write → VictoriaMetrics",
	scenarioMemoryVM:   "in-process bus → ingest → sender → remote write → VictoriaMetrics",
	scenarioMemoryTSDB: "in-process bus → ingest → sender → embedded TSDB",
	scenarioKafkaNull:  "Kafka → ingest → sender → no-op writer (diagnostic)",
	scenarioMemoryNull: "in-process bus → ingest → sender → no-op writer (diagnostic)",
}

// options are the command's flags.
type options struct {
	out            string
	benchOut       string
	series         int
	shapes         []int
	scenarios      []string
	count          int
	writers        int
	rawBatch       int
	rawDuration    time.Duration
	rawMaxSamples  int64
	calibrate      time.Duration
	drainTarget    time.Duration
	drainMax       int64
	drainMaxRecs   int64
	drainTimeout   time.Duration
	stepMs         int64
	partitions     int
	maxPollRecords int
	sender         senderSpec
	kafka          kafkaSpec
	publishBatch   int
	profileDir     string
	workDir        string
	keep           bool
	target         float64
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		if err := runWorker(); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		return
	}
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "ingest benchmark:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	def := config.NewDefault()
	o := options{
		sender: senderSpec{
			QueueCapacity:   def.Storage.Sender.QueueCapacity,
			QueueMaxSamples: def.Storage.Sender.QueueMaxSamples,
			Concurrency:     def.Storage.Sender.Concurrency,
		},
		kafka: kafkaSpec{Compression: def.Bus.Kafka.Compression, Linger: def.Bus.Kafka.Linger},
	}
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.StringVar(&o.out, "out", "", "write the results (Markdown with a JSON block) to this file; default: stdout only")
	fs.StringVar(&o.benchOut, "bench-out", "", "also write the benchstat-compatible lines to this file")
	fs.IntVar(&o.series, "series", 100_000, "active series")
	shapes := fs.String("samples-per-record", "20,1", "samples per series per record (and per series in raw requests), comma-separated: one measurement set per value")
	scenarios := fs.String("scenarios", strings.Join([]string{scenarioRaw, scenarioMemoryVM, scenarioMemoryTSDB, scenarioKafkaVM}, ","), "scenarios to run, comma-separated ("+scenarioRaw+" always runs first: the others are sized and compared by it)")
	fs.IntVar(&o.count, "count", 1, "repeat every measurement this many times")
	fs.IntVar(&o.writers, "raw.writers", 4, "concurrent writers of the raw VictoriaMetrics baseline")
	fs.IntVar(&o.rawBatch, "raw.batch-samples", 10_000, "samples per raw remote-write request (500 series × 20 samples by default)")
	fs.DurationVar(&o.rawDuration, "raw.duration", 20*time.Second, "how long the raw writers run")
	fs.DurationVar(&o.calibrate, "raw.calibrate", 4*time.Second, "untimed raw writing after the warm-up round, to estimate the rate that sizes the pre-encoded requests (twice -raw.duration at that rate)")
	fs.Int64Var(&o.rawMaxSamples, "raw.max-samples", 80_000_000, "most samples to pre-encode for the raw writers' timed run; it ends early (and says so) if they run out")
	fs.DurationVar(&o.drainTarget, "drain.target", 20*time.Second, "fill the topic with what NovaCron would drain in this time at the target ratio of the raw rate")
	fs.Int64Var(&o.drainMax, "drain.max-samples", 30_000_000, "most samples to fill the topic with")
	fs.Int64Var(&o.drainMaxRecs, "drain.max-records", 1_000_000, "most records to fill the topic with (bounds the one-sample-per-record runs)")
	fs.DurationVar(&o.drainTimeout, "drain.timeout", 120*time.Second, "give up a drain after this long (the rate so far is reported)")
	fs.Float64Var(&o.target, "target", 0.5, "the project's target ratio of NovaCron's rate to the raw VictoriaMetrics rate")
	fs.Int64Var(&o.stepMs, "step", 5000, "milliseconds between a series' samples")
	fs.IntVar(&o.partitions, "topics.partitions", int(def.Topics.Partitions), "partitions of the samples topic")
	fs.IntVar(&o.maxPollRecords, "ingest.max-poll-records", def.Ingest.MaxPollRecords, "ingest.max_poll_records")
	fs.IntVar(&o.sender.QueueCapacity, "storage.sender.queue-capacity", o.sender.QueueCapacity, "storage.sender.queue_capacity")
	fs.IntVar(&o.sender.QueueMaxSamples, "storage.sender.queue-max-samples", o.sender.QueueMaxSamples, "storage.sender.queue_max_samples")
	fs.IntVar(&o.sender.Concurrency, "storage.sender.concurrency", o.sender.Concurrency, "storage.sender.concurrency")
	fs.StringVar(&o.kafka.Compression, "bus.kafka.compression", o.kafka.Compression, "bus.kafka.compression of the producer filling the topic")
	fs.DurationVar(&o.kafka.Linger, "bus.kafka.linger", o.kafka.Linger, "bus.kafka.linger of the producer filling the topic")
	fs.IntVar(&o.publishBatch, "publish.batch", 1000, "series per publish call when filling the topic")
	fs.StringVar(&o.profileDir, "profile", "", "write a CPU profile of each NovaCron ingest process to this directory")
	fs.StringVar(&o.workDir, "workdir", "", "directory for server data (default: a temporary directory, removed at the end)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for s := range strings.SplitSeq(*shapes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return o, fmt.Errorf("-samples-per-record: %q is not a positive integer", s)
		}
		o.shapes = append(o.shapes, n)
	}
	o.scenarios = []string{scenarioRaw}
	for s := range strings.SplitSeq(*scenarios, ",") {
		s = strings.TrimSpace(s)
		if _, ok := scenarioPaths[s]; !ok {
			return o, fmt.Errorf("-scenarios: unknown scenario %q", s)
		}
		if s != scenarioRaw {
			o.scenarios = append(o.scenarios, s)
		}
	}
	var errs []error
	if o.series < 1000 {
		errs = append(errs, fmt.Errorf("-series: %d must be at least 1000", o.series))
	}
	if o.count < 1 || o.writers < 1 || o.rawBatch < 1 || o.partitions < 1 || o.maxPollRecords < 1 || o.publishBatch < 1 {
		errs = append(errs, errors.New("-count, -raw.writers, -raw.batch-samples, -topics.partitions, -ingest.max-poll-records and -publish.batch must be positive"))
	}
	return o, errors.Join(errs...)
}

// result is one measurement.
type result struct {
	Scenario         string  `json:"scenario"`
	Path             string  `json:"path"`
	SamplesPerRecord int     `json:"samples_per_record"`
	Run              int     `json:"run"`
	Samples          int64   `json:"samples"`
	Seconds          float64 `json:"seconds"`
	SamplesPerSecond float64 `json:"samples_per_second"`
	RatioToRaw       float64 `json:"ratio_to_raw"`
	// CPUCostRatio is the raw baseline's CPU seconds per sample (every
	// measured process) divided by this scenario's: the throughput ratio
	// to expect when everything is CPU-bound on the same cores, and a
	// number that other load on the machine disturbs much less.
	CPUCostRatio float64 `json:"cpu_cost_ratio"`
	// StoredSamples is counted in the store afterwards (warm-up round
	// included); StoredExpected is what it should hold.
	StoredSamples  int64         `json:"stored_samples"`
	StoredExpected int64         `json:"stored_expected"`
	Usage          usage         `json:"usage"`
	Worker         *workerResult `json:"ingest,omitempty"`
	Requests       int64         `json:"raw_requests,omitempty"`
	Notes          []string      `json:"notes,omitempty"`
}

// report is the whole results file's data.
type report struct {
	Date           string            `json:"date"`
	Commit         string            `json:"commit"`
	Machine        machineInfo       `json:"machine"`
	VMVersion      string            `json:"victoriametrics_version"`
	KafkaVersion   string            `json:"kafka_version,omitempty"`
	Series         int               `json:"series"`
	Settings       map[string]string `json:"settings"`
	Target         float64           `json:"target_ratio"`
	Results        []result          `json:"results"`
	LoadAvgAtStart string            `json:"loadavg_at_start"`
	TotalSeconds   float64           `json:"total_seconds"`
}

type runner struct {
	o       options
	start   time.Time
	work    string
	exe     string
	rep     *report
	kafkaV  string
	nextDir int
}

func (r *runner) logf(format string, args ...any) {
	d := time.Since(r.start).Round(time.Second)
	fmt.Fprintf(os.Stderr, "[%02d:%02d] %s\n", int(d.Minutes()), int(d.Seconds())%60, fmt.Sprintf(format, args...))
}

func (r *runner) dir(name string) (string, error) {
	r.nextDir++
	d := filepath.Join(r.work, fmt.Sprintf("%02d-%s", r.nextDir, name))
	return d, os.MkdirAll(d, 0o755)
}

func run(ctx context.Context, o options) error {
	r := &runner{o: o, start: time.Now()}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r.exe = exe
	r.work = o.workDir
	if r.work == "" {
		if r.work, err = os.MkdirTemp("", "novacron-ingest-bench-"); err != nil {
			return err
		}
	}
	if !o.keep {
		defer os.RemoveAll(r.work)
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	r.rep = &report{
		Date:           time.Now().UTC().Format("2006-01-02"),
		Commit:         gitCommit(),
		Machine:        readMachine(),
		VMVersion:      vmVersion(),
		Series:         o.series,
		Target:         o.target,
		LoadAvgAtStart: strings.TrimSpace(string(load)),
		Settings: map[string]string{
			"raw.writers":                      strconv.Itoa(o.writers),
			"raw.batch-samples":                strconv.Itoa(o.rawBatch),
			"raw.duration":                     o.rawDuration.String(),
			"drain.max-records":                strconv.FormatInt(o.drainMaxRecs, 10),
			"drain.max-samples":                strconv.FormatInt(o.drainMax, 10),
			"drain.target":                     o.drainTarget.String(),
			"topics.partitions":                strconv.Itoa(o.partitions),
			"ingest.max_poll_records":          strconv.Itoa(o.maxPollRecords),
			"storage.sender.concurrency":       strconv.Itoa(o.sender.Concurrency),
			"storage.sender.queue_capacity":    strconv.Itoa(o.sender.QueueCapacity),
			"storage.sender.queue_max_samples": strconv.Itoa(o.sender.QueueMaxSamples),
			"bus.kafka.compression (producer)": o.kafka.Compression,
			"step between samples":             (time.Duration(o.stepMs) * time.Millisecond).String(),
			"series per publish call (fill)":   strconv.Itoa(o.publishBatch),
		},
	}
	r.logf("machine: %s, %d cores, %.0f GiB, %s; VictoriaMetrics %s; load average %s",
		r.rep.Machine.CPUModel, r.rep.Machine.Cores, r.rep.Machine.MemoryGiB, r.rep.Machine.GoVersion, r.rep.VMVersion, r.rep.LoadAvgAtStart)
	for run := 1; run <= o.count; run++ {
		for _, spr := range o.shapes {
			if err := r.shape(ctx, run, spr); err != nil {
				return err
			}
		}
	}
	r.rep.KafkaVersion = r.kafkaV
	r.rep.TotalSeconds = time.Since(r.start).Seconds()
	md := renderMarkdown(r.rep)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			return err
		}
		r.logf("results written to %s", o.out)
	}
	if o.benchOut != "" {
		if err := os.WriteFile(o.benchOut, []byte(benchLines(r.rep)), 0o644); err != nil {
			return err
		}
	}
	fmt.Print(summary(r.rep))
	return nil
}

// shape runs every scenario for one number of samples per record.
func (r *runner) shape(ctx context.Context, run, spr int) error {
	o := r.o
	roundSamples := int64(o.series * spr)
	// Calibration and timed requests are each at most raw.max-samples.
	poolRounds := int(max(1, o.rawMaxSamples/roundSamples))
	maxRawRounds := 2 * poolRounds
	maxDrainRounds := int(max(2, min(o.drainMax/roundSamples, o.drainMaxRecs/int64(o.series))))
	// Every scenario stores the same series and timestamps, ending
	// before now, in a fresh store.
	span := time.Duration(int64(max(maxRawRounds, maxDrainRounds)+1)*int64(spr)*o.stepMs) * time.Millisecond
	base := time.Now().Add(-span - 10*time.Minute).Truncate(time.Minute).UnixMilli()
	f := newFleet(o.series, spr, base, o.stepMs)
	batchSeries := max(1, o.rawBatch/spr)

	r.logf("run %d, %d samples per series per record: %s", run, spr, scenarioRaw)
	raw, err := r.runRaw(ctx, f, poolRounds, batchSeries)
	if err != nil {
		return fmt.Errorf("%s: %w", scenarioRaw, err)
	}
	raw.Run = run
	r.rep.Results = append(r.rep.Results, raw)
	r.logf("%s: %s samples/s (%s samples in %.1fs)", scenarioRaw, si(raw.SamplesPerSecond), si(float64(raw.Samples)), raw.Seconds)

	rounds := int(math.Round(raw.SamplesPerSecond * o.target * o.drainTarget.Seconds() / float64(roundSamples)))
	rounds = min(max(rounds, 2), maxDrainRounds)
	for _, sc := range o.scenarios[1:] {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.logf("run %d, %d samples per series per record: %s (%s), filling the topic with %s samples", run, spr, sc, scenarioPaths[sc], si(float64(int64(rounds)*roundSamples)))
		res, err := r.runDrain(ctx, sc, f, rounds, run)
		if err != nil {
			return fmt.Errorf("%s: %w", sc, err)
		}
		res.Run = run
		if raw.SamplesPerSecond > 0 {
			res.RatioToRaw = res.SamplesPerSecond / raw.SamplesPerSecond
		}
		if c := perMillion(res); c > 0 {
			res.CPUCostRatio = perMillion(raw) / c
		}
		r.rep.Results = append(r.rep.Results, res)
		r.logf("%s: %s samples/s, %.0f%% of raw VictoriaMetrics", sc, si(res.SamplesPerSecond), 100*res.RatioToRaw)
	}
	return nil
}

// runRaw measures the peer baseline: round 0 registers the series,
// the next rounds are written for -raw.calibrate to estimate the rate
// (both untimed), then the writers post pre-encoded rounds for
// -raw.duration. Calibration and timed requests hold at most poolRounds
// rounds each.
func (r *runner) runRaw(ctx context.Context, f *fleet, poolRounds, batchSeries int) (result, error) {
	res := result{Scenario: scenarioRaw, Path: scenarioPaths[scenarioRaw], SamplesPerRecord: f.samplesPerSeries, RatioToRaw: 1, CPUCostRatio: 1}
	dir, err := r.dir(scenarioRaw)
	if err != nil {
		return res, err
	}
	vm, err := startVM(dir)
	if err != nil {
		return res, err
	}
	defer vm.stop()
	warm := postAll(ctx, vm.writeURL(), encodeRounds(f, 0, 1, batchSeries), r.o.writers, 0, nil)
	if warm.Errors > 0 {
		return res, fmt.Errorf("warm-up: %d requests failed", warm.Errors)
	}
	// Calibration: enough requests for the calibration time at 5M
	// samples/s, sent for that time; the rest are dropped.
	calRounds := min(poolRounds, int(math.Ceil(5e6*r.o.calibrate.Seconds()/float64(f.roundSamples()))))
	cal := postAll(ctx, vm.writeURL(), encodeRounds(f, 1, 1+calRounds, batchSeries), r.o.writers, r.o.calibrate, nil)
	if cal.Errors > 0 {
		return res, fmt.Errorf("calibration: %d requests failed", cal.Errors)
	}
	calRate := float64(cal.Samples) / cal.Elapsed.Seconds()
	rounds := int(math.Ceil(2 * calRate * r.o.rawDuration.Seconds() / float64(f.roundSamples())))
	rounds = min(max(rounds, 1), poolRounds)
	r.logf("%s: %d series registered, %s samples/s in calibration; encoding %d rounds of requests (%d series × %d samples each)",
		scenarioRaw, len(f.labels), si(calRate), rounds, batchSeries, f.samplesPerSeries)
	first := 1 + calRounds
	payloads := encodeRounds(f, first, first+rounds, batchSeries)
	var bytes int64
	for _, p := range payloads {
		bytes += int64(len(p.body))
	}
	r.logf("%s: %d requests, %.0f MiB; %d writers for %s", scenarioRaw, len(payloads), float64(bytes)/(1<<20), r.o.writers, r.o.rawDuration)
	w, err := startWatch(map[string]int{"victoria-metrics": vm.pid()})
	if err != nil {
		return res, err
	}
	start := time.Now()
	out := postAll(ctx, vm.writeURL(), payloads, r.o.writers, r.o.rawDuration, func(n int64) {
		r.logf("%s: %s samples acknowledged, %s samples/s", scenarioRaw, si(float64(n)), si(float64(n)/time.Since(start).Seconds()))
	})
	res.Usage = w.stop()
	res.Usage.CPUSeconds["writers"] = res.Usage.SelfCPU
	payloads = nil
	res.Samples, res.Seconds, res.Requests = out.Samples, out.Elapsed.Seconds(), out.Requests
	res.SamplesPerSecond = float64(out.Samples) / out.Elapsed.Seconds()
	if out.Exhausted {
		res.Notes = append(res.Notes, fmt.Sprintf("the pre-encoded requests ran out after %.1fs (raise -raw.max-samples)", res.Seconds))
	}
	if out.Errors > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d requests failed", out.Errors))
	}
	res.StoredExpected = f.roundSamples() + cal.Samples + out.Samples
	res.StoredSamples, err = countVMEventually(vm, f, first+rounds, res.StoredExpected)
	return res, err
}

func (r *runner) runDrain(ctx context.Context, sc string, f *fleet, rounds, run int) (result, error) {
	res := result{Scenario: sc, Path: scenarioPaths[sc], SamplesPerRecord: f.samplesPerSeries}
	dir, err := r.dir(sc)
	if err != nil {
		return res, err
	}
	spec := workerSpec{
		Scenario:         sc,
		Series:           len(f.labels),
		SamplesPerSeries: f.samplesPerSeries,
		BaseMs:           f.baseMs,
		StepMs:           f.stepMs,
		Rounds:           rounds,
		Topic:            "novacron.samples",
		DeadLetter:       "novacron.deadletter",
		Group:            "novacron-ingest",
		Partitions:       int32(r.o.partitions),
		MaxPollRecords:   r.o.maxPollRecords,
		Sender:           r.o.sender,
		Kafka:            r.o.kafka,
		PublishBatch:     r.o.publishBatch,
		Timeout:          r.o.drainTimeout,
		Watch:            map[string]int{},
	}
	if r.o.profileDir != "" {
		spec.CPUProfile = filepath.Join(r.o.profileDir, fmt.Sprintf("%s-spr%d-run%d.cpu.pprof", sc, f.samplesPerSeries, run))
	}
	var vm *vmServer
	switch sc {
	case scenarioMemoryTSDB:
		spec.Bus, spec.Store, spec.TSDBDir = "memory", "tsdb", filepath.Join(dir, "tsdb")
	case scenarioKafkaNull, scenarioMemoryNull:
		spec.Bus, spec.Store = "memory", "null"
	default:
		spec.Bus, spec.Store = "memory", "vm"
		if vm, err = startVM(filepath.Join(dir, "vm")); err != nil {
			return res, err
		}
		defer vm.stop()
		spec.WriteURL = vm.writeURL()
		spec.Watch["victoria-metrics"] = vm.pid()
	}
	if sc == scenarioKafkaVM || sc == scenarioKafkaNull {
		r.logf("%s: starting Apache Kafka", sc)
		k, err := startKafka(filepath.Join(dir, "kafka"))
		if err != nil {
			return res, err
		}
		defer k.stop()
		r.kafkaV = k.version()
		spec.Bus, spec.Brokers = "kafka", k.brokers()
		spec.Watch["kafka"] = k.pid()
	}
	wr, err := r.worker(ctx, spec)
	if err != nil {
		return res, err
	}
	res.Worker = &wr
	res.Usage = wr.Usage
	res.Samples, res.Seconds = wr.AckedSamples, wr.ElapsedSeconds
	if wr.ElapsedSeconds > 0 {
		res.SamplesPerSecond = float64(wr.AckedSamples) / wr.ElapsedSeconds
	}
	if wr.TimedOut {
		res.Notes = append(res.Notes, fmt.Sprintf("drain timed out after %s with %s of %s samples acknowledged", r.o.drainTimeout, si(float64(wr.AckedSamples)), si(float64(wr.PrefillSamples))))
	}
	if wr.DeadLettered > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%.0f records dead-lettered", wr.DeadLettered))
	}
	if wr.StorageRetries > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%.0f storage write retries", wr.StorageRetries))
	}
	res.StoredExpected = f.roundSamples() + wr.AckedSamples
	switch {
	case vm != nil:
		res.StoredSamples, err = countVMEventually(vm, f, rounds+1, res.StoredExpected)
	case spec.Store == "null":
		res.StoredSamples, res.StoredExpected = -1, -1
	default:
		res.StoredSamples = wr.StoredSamples
	}
	return res, err
}

// worker runs spec in a child process (this binary, "worker" mode) so
// that its peak RSS and CPU are its own.
func (r *runner) worker(ctx context.Context, spec workerSpec) (workerResult, error) {
	var wr workerResult
	in, err := json.Marshal(spec)
	if err != nil {
		return wr, err
	}
	cmd := exec.CommandContext(ctx, r.exe, "worker")
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = prefixWriter{r}
	if err := cmd.Run(); err != nil {
		return wr, fmt.Errorf("ingest worker: %w", err)
	}
	if err := json.Unmarshal(out.Bytes(), &wr); err != nil {
		return wr, fmt.Errorf("ingest worker result %q: %w", out.String(), err)
	}
	return wr, nil
}

// prefixWriter forwards a worker's progress lines with the run's clock.
type prefixWriter struct{ r *runner }

func (p prefixWriter) Write(b []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(b), "\n"), "\n") {
		p.r.logf("  %s", line)
	}
	return len(b), nil
}

// countVMEventually counts until VictoriaMetrics reports want samples or
// 30s pass: freshly flushed parts can take a moment to become searchable.
func countVMEventually(vm *vmServer, f *fleet, rounds int, want int64) (int64, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := countVM(vm, f, rounds)
		if err != nil || n >= want || time.Now().After(deadline) {
			return n, err
		}
		time.Sleep(time.Second)
	}
}

// countVM returns the number of the benchmark's samples VictoriaMetrics
// stores in rounds [0, rounds), after a flush.
func countVM(vm *vmServer, f *fleet, rounds int) (int64, error) {
	if err := vm.forceFlush(); err != nil {
		return 0, err
	}
	end := f.baseMs + int64(rounds*f.samplesPerSeries)*f.stepMs
	window := (end-f.baseMs)/1000 + 60
	q := url.Values{
		"query": {fmt.Sprintf(`sum(count_over_time({bench=%q}[%ds]))`, benchLabel, window)},
		"time":  {strconv.FormatFloat(float64(end)/1000, 'f', 3, 64)},
	}
	client := &http.Client{Timeout: 5 * time.Minute}
	resp, err := client.Get(vm.url() + "/api/v1/query?" + q.Encode())
	if err != nil {
		return 0, fmt.Errorf("count stored samples: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("count stored samples: HTTP %d: %s", resp.StatusCode, tail(body, 500))
	}
	var ans struct {
		Data struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return 0, fmt.Errorf("count stored samples: %w", err)
	}
	if len(ans.Data.Result) == 0 || len(ans.Data.Result[0].Value) != 2 {
		return 0, nil
	}
	s, _ := ans.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return int64(v), err
}

// vmVersion returns VictoriaMetrics' version: its -version output, or
// the Debian package's when the binary was built without one.
func vmVersion() string {
	bin, err := vmBinary()
	if err != nil {
		return "unknown"
	}
	out, _ := exec.Command(bin, "-version").Output()
	if v := strings.TrimSpace(string(out)); v != "" {
		return v
	}
	out, err = exec.Command("dpkg-query", "-W", "-f=${Version}", "victoria-metrics").Output()
	if err == nil && len(out) > 0 {
		return strings.TrimSpace(string(out)) + " (Debian package)"
	}
	return "unknown"
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
