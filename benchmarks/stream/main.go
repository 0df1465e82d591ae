package main

import (
	"bufio"
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/novacron/novacron/benchmarks/internal/servers"
	"github.com/novacron/novacron/internal/config"
)

// Modes.
const (
	modeE2E    = "e2e"
	modeMemory = "memory"
	modeAll    = "all"
)

// options are the command's flags.
type options struct {
	mode            string
	out             string
	vms             int
	interval        time.Duration
	rate            float64
	measure         time.Duration
	ramp            []float64
	rampDuration    time.Duration
	warmupSteps     int
	injectPerSecond float64
	peerDuration    time.Duration
	partitions      int
	drainWait       time.Duration
	memVMs          int
	memSteps        int
	stage           stageSpec
	workDir         string
	keep            bool
	target          time.Duration
	// brokers and vmURL, when set, are servers started elsewhere (the
	// smoke test's, from internal/testserver); their CPU is not measured.
	brokers []string
	vmURL   string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "stage" {
		if err := runStage(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "stage:", err)
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
	rep, err := run(ctx, o, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stream benchmark:", err)
		os.Exit(1)
	}
	fmt.Print(summary(rep))
}

func parseFlags(args []string) (options, error) {
	def := config.NewDefault()
	o := options{}
	fs := flag.NewFlagSet("stream", flag.ContinueOnError)
	fs.StringVar(&o.mode, "mode", modeAll, "what to measure: e2e (Kafka → analytics → VictoriaMetrics latency and throughput), memory (heap per series, no servers) or all")
	fs.StringVar(&o.out, "out", "", "write the results (Markdown with a JSON block) to this file; default: stdout only")
	fs.IntVar(&o.vms, "vms", 2000, "simulated VMs of the end-to-end fleet (25 series each, plus vms/10 hosts of 10 series)")
	fs.DurationVar(&o.interval, "interval", 15*time.Second, "simulated time between a series' samples")
	fs.Float64Var(&o.rate, "rate", 100_000, "samples (one per record) per second of the measured phase")
	fs.DurationVar(&o.measure, "measure", 90*time.Second, "length of the measured phase")
	ramp := fs.String("ramp", "150000,200000,300000", "higher rates tried after the measured phase, comma-separated, until one is not sustained (empty: none)")
	fs.DurationVar(&o.rampDuration, "ramp.duration", 30*time.Second, "length of each ramp phase")
	fs.IntVar(&o.warmupSteps, "warmup.steps", 220, "steps produced as fast as possible before measuring, so the detectors are past their warm-up (the default detector scores nothing for its first 200 samples)")
	fs.Float64Var(&o.injectPerSecond, "inject", 10, "level shifts begun per second of a paced phase, each on a new series")
	fs.DurationVar(&o.peerDuration, "peer.duration", 30*time.Second, "length of the raw Kafka round-trip peer at -rate (0: skip)")
	fs.IntVar(&o.partitions, "topics.partitions", int(def.Topics.Partitions), "partitions of the samples and events topics")
	fs.DurationVar(&o.drainWait, "drain.wait", 15*time.Second, "after the last phase, wait this long for the stage to catch up and its last events")
	fs.IntVar(&o.memVMs, "memory.vms", 40_000, "simulated VMs of the memory mode (25 series each, plus vms/40 hosts of 10): 40000 gives 1.01M series")
	fs.IntVar(&o.memSteps, "memory.steps", 3, "samples fed per series in the memory mode")
	fs.DurationVar(&o.stage.checkpointInterval, "checkpoint.interval", 0, "analytics checkpoint.interval of the stage (0: the default)")
	fs.IntVar(&o.stage.checkpointMaxRecords, "checkpoint.max-records", 0, "analytics checkpoint.max_records of the stage (0: the default)")
	fs.IntVar(&o.stage.maxPollRecords, "max-poll-records", 0, "analytics max_poll_records of the stage (0: the default)")
	fs.StringVar(&o.stage.profile, "profile", "", "write a CPU profile of the stage process to this file")
	fs.StringVar(&o.workDir, "workdir", "", "directory for server data (default: a temporary directory, removed at the end)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory")
	fs.DurationVar(&o.target, "target", time.Second, "the target p99 latency from sample to anomaly event")
	brokers := fs.String("kafka.brokers", "", "use this Kafka instead of starting one (its CPU is then not measured)")
	fs.StringVar(&o.vmURL, "vm.url", "", "use this VictoriaMetrics (base URL) instead of starting one")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *brokers != "" {
		o.brokers = strings.Split(*brokers, ",")
	}
	var errs []error
	switch o.mode {
	case modeE2E, modeMemory, modeAll:
	default:
		errs = append(errs, fmt.Errorf("-mode: %q is not e2e, memory or all", o.mode))
	}
	for s := range strings.SplitSeq(*ramp, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 {
			errs = append(errs, fmt.Errorf("-ramp: %q is not a positive rate", s))
			continue
		}
		o.ramp = append(o.ramp, v)
	}
	if o.vms < 1 || o.memVMs < 1 || o.memSteps < 1 || o.partitions < 1 || o.warmupSteps < 0 {
		errs = append(errs, errors.New("-vms, -memory.vms, -memory.steps and -topics.partitions must be positive, -warmup.steps not negative"))
	}
	if o.rate <= 0 || o.measure <= 0 {
		errs = append(errs, errors.New("-rate and -measure must be positive"))
	}
	return o, errors.Join(errs...)
}

// runner holds the state of one run.
type runner struct {
	o     options
	log   io.Writer
	start time.Time
	work  string
	rep   *report

	brokers  []string
	vmURL    string
	kafkaPID int
	vmPID    int
	child    *exec.Cmd
	stdin    io.WriteCloser

	gen    *generator
	prod   *producer
	events *eventReader

	latest    atomic.Pointer[status]
	mu        sync.Mutex
	lagMax    int64
	lagLast   int64
	uncommMax float64
	childDone chan struct{}
	// childPeakRSS is the stage process' largest VmHWM seen.
	childPeakRSS int64
	// seriesMax is the most series the stage held.
	seriesMax float64
}

func (r *runner) logf(format string, args ...any) {
	d := time.Since(r.start).Round(time.Second)
	fmt.Fprintf(r.log, "[%02d:%02d] %s\n", int(d.Minutes()), int(d.Seconds())%60, fmt.Sprintf(format, args...))
}

// run measures what o asks and writes the results file.
func run(ctx context.Context, o options, log io.Writer) (*report, error) {
	r := &runner{o: o, log: log, start: time.Now()}
	r.rep = &report{
		Date:         time.Now().UTC().Format("2006-01-02"),
		Commit:       gitCommit(),
		Machine:      readMachine(),
		LoadAvgStart: loadAvg(),
		Target:       o.target.Seconds(),
	}
	r.logf("machine: %s, %d cores, %.0f GiB; load average %s", r.rep.Machine.CPUModel, r.rep.Machine.Cores, r.rep.Machine.MemoryGiB, r.rep.LoadAvgStart)
	if o.mode == modeE2E || o.mode == modeAll {
		if err := r.e2e(ctx); err != nil {
			return nil, err
		}
	}
	if o.mode == modeMemory || o.mode == modeAll {
		m, err := runMemory(o.memVMs, o.memSteps, o.partitions, r.logf)
		if err != nil {
			return nil, fmt.Errorf("memory: %w", err)
		}
		r.rep.Memory = &m
	}
	r.rep.LoadAvgEnd = loadAvg()
	r.rep.TotalSeconds = time.Since(r.start).Seconds()
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(renderMarkdown(r.rep)), 0o644); err != nil {
			return nil, err
		}
		r.logf("results written to %s", o.out)
	}
	return r.rep, nil
}

func (r *runner) e2e(ctx context.Context) (err error) {
	o := r.o
	r.work = o.workDir
	if r.work == "" {
		if r.work, err = os.MkdirTemp("", "novacron-stream-bench-"); err != nil {
			return err
		}
	}
	if !o.keep {
		defer os.RemoveAll(r.work)
	}
	e := &e2eResult{VMs: o.vms, Interval: o.interval.String(), Partitions: o.partitions, WarmupSteps: o.warmupSteps,
		InjectPerSecond: o.injectPerSecond}
	r.rep.E2E = e
	r.brokers, r.vmURL = o.brokers, o.vmURL
	if len(r.brokers) == 0 {
		r.logf("starting Kafka under %s", r.work)
		k, err := servers.StartKafka(filepath.Join(r.work, "kafka"))
		if err != nil {
			return err
		}
		defer k.Stop()
		r.brokers, r.kafkaPID, r.rep.KafkaVersion = k.Brokers(), k.PID(), k.Version()
	}
	if r.vmURL == "" {
		r.logf("starting VictoriaMetrics under %s", r.work)
		vm, err := servers.StartVM(filepath.Join(r.work, "vm"))
		if err != nil {
			return err
		}
		defer vm.Stop()
		r.vmURL, r.vmPID, r.rep.VMVersion = vm.URL(), vm.PID(), vmVersion()
	}
	const samplesTopic, eventsTopic, rawTopic = "novacron.samples", "novacron.events", "bench.raw"
	if err := createTopics(ctx, r.brokers, int32(o.partitions), samplesTopic, eventsTopic, rawTopic); err != nil {
		return err
	}
	// Samples start three hours before now plus what the run will
	// simulate, so none is later than now (the stage drops samples more
	// than max_clock_skew ahead of its clock).
	steps := o.warmupSteps + o.expectedSteps()
	simStart := time.Now().Add(-time.Duration(steps)*o.interval - time.Hour).Truncate(time.Minute)
	e.SimStart = simStart.UTC().Format(time.RFC3339)

	// The peer: the same records through the same broker, read back by a
	// plain consumer.
	if o.peerDuration > 0 {
		pr, err := r.peer(ctx, rawTopic, simStart)
		if err != nil {
			return fmt.Errorf("peer: %w", err)
		}
		e.Peer = pr
	}

	if r.gen, err = newGenerator(o.vms, simStart, o.interval, samplesTopic, 1); err != nil {
		return err
	}
	cl, err := newProducerClient(r.brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	r.prod = &producer{cl: cl}
	if r.events, err = newEventReader(r.brokers, eventsTopic, r.gen); err != nil {
		return err
	}
	ectx, ecancel := context.WithCancel(ctx)
	go r.events.run(ectx)
	defer func() { ecancel(); <-r.events.done; r.events.close() }()

	spec := o.stage
	spec.brokers, spec.writeURL, spec.samples, spec.events = strings.Join(r.brokers, ","), r.vmURL+"/api/v1/write", samplesTopic, eventsTopic
	if err := r.startStage(spec); err != nil {
		return err
	}
	defer r.stopStage()

	r.logf("warm-up: %d steps of %d series as fast as they go", o.warmupSteps, o.vms*25+max(1, o.vms/10)*10)
	w := r.phase(ctx, phaseSpec{name: "warm-up", steps: o.warmupSteps})
	e.Warmup = w
	r.logf("warm-up: %s samples handed in %.1fs (%s/s), stage at %s/s; waiting for the stage to catch up",
		si(float64(w.Load.Handed)), w.Load.Seconds, si(w.Load.Rate), si(w.StageRate))
	caught, err := r.waitCaughtUp(ctx, 5*time.Minute)
	if err != nil {
		return err
	}
	e.WarmupCatchUpSeconds = caught.Seconds()
	r.logf("stage caught up %.1fs after the warm-up's last record", caught.Seconds())

	phases := []phaseSpec{{name: fmt.Sprintf("measured %s/s", si(o.rate)), rate: o.rate, duration: o.measure, injectPerSecond: o.injectPerSecond}}
	for _, rt := range o.ramp {
		phases = append(phases, phaseSpec{name: fmt.Sprintf("ramp %s/s", si(rt)), rate: rt, duration: o.rampDuration, injectPerSecond: o.injectPerSecond})
	}
	for i, ph := range phases {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.logf("%s for %s, %.0f level shifts per second", ph.name, ph.duration, ph.injectPerSecond)
		res := r.phase(ctx, ph)
		e.Phases = append(e.Phases, res)
		r.logf("%s: handed %s/s, stage %s/s, processing lag max %s records (end %s)",
			ph.name, si(res.Load.Rate), si(res.StageRate), si(float64(res.LagMaxRecords)), si(float64(res.LagEndRecords)))
		if !res.keptUp(ph.rate) {
			if i+1 < len(phases) {
				r.logf("%s not sustained: no higher rate is tried", ph.name)
			}
			break
		}
	}
	r.logf("draining: up to %s for the stage to catch up and the last events", o.drainWait)
	if err := flushProducer(ctx, cl); err != nil {
		return err
	}
	d, _ := r.waitCaughtUp(ctx, o.drainWait)
	e.DrainSeconds = d.Seconds()
	time.Sleep(min(3*time.Second, o.drainWait))

	final := r.stopStage()
	r.fillLatencies(e)
	if final != nil {
		e.Final = *final
	}
	e.StagePeakRSS = r.childPeakRSS
	r.mu.Lock()
	e.StageSeries = r.seriesMax
	r.mu.Unlock()
	if err := r.verifyVM(e); err != nil {
		e.VMError = err.Error()
		r.logf("VictoriaMetrics verification: %v", err)
	}
	e.Settings = r.settings()
	return nil
}

// expectedSteps estimates the steps of the paced phases, to place the
// simulated start early enough.
func (o options) expectedSteps() int {
	perStep := float64(o.vms*25 + max(1, o.vms/10)*10)
	secs := o.rate * o.measure.Seconds()
	for _, rt := range o.ramp {
		secs += rt * o.rampDuration.Seconds()
	}
	return int(secs/perStep) + 10
}

func (r *runner) settings() map[string]string {
	o := r.o
	m := map[string]string{
		"analytics config":   "defaults (internal/config), except below",
		"bus.kafka":          "kafkabus defaults (zstd, linger 5ms) for the stage; the load producer uses the same codec and linger",
		"storage.sender":     "defaults",
		"inject":             fmt.Sprint(o.injectPerSecond) + " level shifts/s: VM CPU or memory usage ratio becomes 10×v+1 from then on",
		"warm-up steps":      strconv.Itoa(o.warmupSteps),
		"peer.duration":      o.peerDuration.String(),
		"topics.partitions":  strconv.Itoa(o.partitions),
		"simulated interval": o.interval.String(),
		"vms (end to end)":   strconv.Itoa(o.vms),
		"measured phase":     o.measure.String(),
		"ramp phase":         o.rampDuration.String(),
	}
	if o.stage.checkpointInterval > 0 {
		m["checkpoint.interval"] = o.stage.checkpointInterval.String()
	}
	if o.stage.checkpointMaxRecords > 0 {
		m["checkpoint.max_records"] = strconv.Itoa(o.stage.checkpointMaxRecords)
	}
	if o.stage.maxPollRecords > 0 {
		m["max_poll_records"] = strconv.Itoa(o.stage.maxPollRecords)
	}
	return m
}

func createTopics(ctx context.Context, brokers []string, partitions int32, names ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, partitions, 1, nil, names...)
	if err != nil {
		return fmt.Errorf("create topics %v: %w", names, err)
	}
	if err := resp.Error(); err != nil {
		return fmt.Errorf("create topics %v: %w", names, err)
	}
	return nil
}

// newProducerClient is the load's producer: kafkabus' defaults (zstd,
// 5 ms linger), keyed partitioning, a large buffer so pacing, not the
// buffer, sets the rate.
func newProducerClient(brokers []string) (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.MaxBufferedRecords(200_000),
		kgo.ProducerBatchMaxBytes(1_000_000))
}

func flushProducer(ctx context.Context, cl *kgo.Client) error {
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return cl.Flush(fctx)
}

// peer runs the raw round trip at -rate for -peer.duration.
func (r *runner) peer(ctx context.Context, topic string, simStart time.Time) (*peerResult, error) {
	o := r.o
	g, err := newGenerator(o.vms, simStart, o.interval, topic, 2)
	if err != nil {
		return nil, err
	}
	cl, err := newProducerClient(r.brokers)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rd, err := newRawReader(r.brokers, topic)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	go rd.run(rctx)
	defer func() { cancel(); <-rd.done; rd.cl.Close() }()
	// One unstamped step first, read back before timing starts, so topic
	// metadata, the producer ID and the consumer's start are not in the
	// measurement.
	warm := &producer{cl: cl}
	wl := warm.run(ctx, g, phaseSpec{name: "peer warm-up", steps: 1})
	if err := flushProducer(ctx, cl); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); rd.total() < int(wl.Handed) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	p := &producer{cl: cl, stampHdr: true, pending: warm.pending}
	r.logf("peer: raw Kafka round trip at %s/s for %s", si(o.rate), o.peerDuration)
	pids := r.pids(nil)
	cpu0, self0, busy0 := cpuOf(pids), procCPUSeconds(0), machineBusySeconds()
	load := p.run(ctx, g, phaseSpec{name: "peer", rate: o.rate, duration: o.peerDuration})
	if err := flushProducer(ctx, cl); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for rd.count() < int(load.Handed) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	res := &peerResult{Rate: o.rate, Load: load, Received: rd.count()}
	res.CPU = cpuDelta(cpu0, cpuOf(pids))
	res.CPU["bench (producer + consumer)"] = procCPUSeconds(0) - self0
	res.MachineBusy = machineBusySeconds() - busy0
	res.Latency = stats(rd.latencies())
	r.logf("peer: %s/s handed, %d read back, latency p50 %.1f ms p99 %.1f ms max %.1f ms",
		si(load.Rate), res.Received, res.Latency.P50, res.Latency.P99, res.Latency.Max)
	return res, nil
}

func cpuOf(pids map[string]int) map[string]float64 {
	m := map[string]float64{}
	for n, p := range pids {
		m[n] = procCPUSeconds(p)
	}
	return m
}

func cpuDelta(a, b map[string]float64) map[string]float64 {
	m := map[string]float64{}
	for n, v := range b {
		m[n] = v - a[n]
	}
	return m
}

// startStage starts the stage process and reads its status lines.
func (r *runner) startStage(spec stageSpec) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(r.work, "stage.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, spec.args()...)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if r.stdin, err = cmd.StdinPipe(); err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the stage process: %w", err)
	}
	r.child, r.childDone = cmd, make(chan struct{})
	go func() {
		defer close(r.childDone)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var s status
			if json.Unmarshal(sc.Bytes(), &s) != nil {
				continue
			}
			lag := r.prod.acked.Load() - int64(s.Samples)
			r.mu.Lock()
			r.lagLast = lag
			r.lagMax = max(r.lagMax, lag)
			r.uncommMax = max(r.uncommMax, s.UncommittedLag)
			r.seriesMax = max(r.seriesMax, s.Series)
			r.mu.Unlock()
			r.latest.Store(&s)
			if !s.Final {
				r.childPeakRSS = max(r.childPeakRSS, peakRSS(cmd.Process.Pid))
			}
		}
		_ = cmd.Wait()
		logf.Close()
	}()
	deadline := time.Now().Add(60 * time.Second)
	for r.latest.Load() == nil {
		select {
		case <-r.childDone:
			return fmt.Errorf("the stage process exited: %s", servers.TailFile(filepath.Join(r.work, "stage.log")))
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("the stage process printed no status in 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// stopStage closes the stage's standard input, which shuts it down, and
// returns its last status.
func (r *runner) stopStage() *status {
	if r.child == nil {
		return nil
	}
	r.stdin.Close()
	select {
	case <-r.childDone:
	case <-time.After(90 * time.Second):
		_ = r.child.Process.Kill()
		<-r.childDone
	}
	r.child = nil
	return r.latest.Load()
}

// waitCaughtUp waits until the stage has seen every acknowledged sample;
// it returns how long that took.
func (r *runner) waitCaughtUp(ctx context.Context, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		s := r.latest.Load()
		if s != nil && int64(s.Samples) >= r.prod.acked.Load() && r.prod.acked.Load() >= r.prod.handed.Load()-r.prod.failed.Load() {
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			return time.Since(start), fmt.Errorf("the stage did not catch up within %s (%s of %s samples)", limit, si(s.Samples), si(float64(r.prod.acked.Load())))
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-r.childDone:
			return time.Since(start), fmt.Errorf("the stage process exited: %s", servers.TailFile(filepath.Join(r.work, "stage.log")))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// phase runs one paced phase and measures it.
func (r *runner) phase(ctx context.Context, ph phaseSpec) phaseResult {
	pids := r.pids(map[string]int{"stage": r.child.Process.Pid})
	cpu0, self0, busy0 := cpuOf(pids), procCPUSeconds(0), machineBusySeconds()
	s0 := *r.latest.Load()
	r.mu.Lock()
	r.lagMax, r.uncommMax = r.lagLast, 0
	r.mu.Unlock()
	t0 := time.Now()
	load := r.prod.run(ctx, r.gen, ph)
	wall := time.Since(t0).Seconds()
	s1 := *r.latest.Load()
	res := phaseResult{Name: ph.name, TargetRate: ph.rate, Load: load, LoadAvg: loadAvg()}
	res.CPU = cpuDelta(cpu0, cpuOf(pids))
	res.CPU["bench (load + event reader)"] = procCPUSeconds(0) - self0
	res.MachineBusy = machineBusySeconds() - busy0
	res.Wall = wall
	res.StageRate = (s1.Samples - s0.Samples) / wall
	res.Checkpoints = s1.Checkpoints - s0.Checkpoints
	res.CheckpointSeconds = s1.CheckpointSeconds - s0.CheckpointSeconds
	if res.Checkpoints > 0 {
		res.CheckpointMeanBytes = (s1.CheckpointBytes - s0.CheckpointBytes) / res.Checkpoints
	}
	res.Derived = s1.Derived - s0.Derived
	r.mu.Lock()
	res.LagMaxRecords, res.LagEndRecords, res.UncommittedLagMax = r.lagMax, r.lagLast, r.uncommMax
	r.mu.Unlock()
	return res
}

// fillLatencies joins the events read to the phases.
func (r *runner) fillLatencies(e *e2eResult) {
	ms, kinds, unmatched, dupes := r.events.snapshot()
	e.EventKinds, e.UnmatchedOpened, e.DuplicateOpened = kinds, unmatched, dupes
	inj := r.gen.injections()
	for i := range e.Phases {
		p := &e.Phases[i]
		var lat, stage, ack []time.Duration
		afters := map[int]int{}
		for _, m := range ms {
			if m.phase != p.Name {
				continue
			}
			lat, stage, ack = append(lat, m.latency), append(stage, m.stage), append(ack, m.ackDelay)
			afters[m.after]++
		}
		p.Latency, p.StageLatency, p.AckDelay = stats(lat), stats(stage), stats(ack)
		p.SampleIndex = afters
		for _, in := range inj {
			if ph := in.phase.Load(); ph != nil && *ph == p.Name {
				p.Injected++
				if in.matched.Load() {
					p.Opened++
				}
			}
		}
	}
}

// verifyVM checks that the derived series reached VictoriaMetrics.
func (r *runner) verifyVM(e *e2eResult) error {
	if _, err := r.get("/internal/force_flush"); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	e.VMSeriesByKind = map[string]float64{}
	res, err := r.query(`count by (__name__) (last_over_time({__name__=~"novacron_.+:.+"}[1d]))`)
	if err != nil {
		return err
	}
	for _, s := range res {
		name := s.Metric["__name__"]
		kind := name[strings.LastIndexByte(name, ':')+1:]
		e.VMSeriesByKind[kind] += s.value()
	}
	res, err = r.query(`sum(count_over_time({__name__=~"novacron_.+:.+"}[1d]))`)
	if err != nil {
		return err
	}
	if len(res) == 1 {
		e.VMDerivedSamples = res[0].value()
	}
	return nil
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) value() float64 {
	v, _ := s.Value[1].(string)
	f, _ := strconv.ParseFloat(v, 64)
	return f
}

// get fetches a VictoriaMetrics path.
func (r *runner) get(path string) ([]byte, error) {
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Get(r.vmURL + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", path, resp.StatusCode, servers.Tail(body, 300))
	}
	return body, nil
}

// pids returns the processes to measure: the servers started here and
// extra.
func (r *runner) pids(extra map[string]int) map[string]int {
	m := map[string]int{}
	if r.kafkaPID > 0 {
		m["kafka"] = r.kafkaPID
	}
	if r.vmPID > 0 {
		m["victoria-metrics"] = r.vmPID
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func (r *runner) query(q string) ([]promSample, error) {
	body, err := r.get("/api/v1/query?" + url.Values{"query": {q}}.Encode())
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	var ans struct {
		Data struct {
			Result []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("query %s: %w", q, err)
	}
	return ans.Data.Result, nil
}

// vmVersion returns VictoriaMetrics' version: its -version output, or the
// Debian package's.
func vmVersion() string {
	bin, err := servers.VMBinary()
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

// latStats summarises latencies, in milliseconds.
type latStats struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

func stats(ds []time.Duration) latStats {
	if len(ds) == 0 {
		return latStats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return float64(s[max(0, min(i, len(s)-1))]) / 1e6
	}
	var sum float64
	for _, d := range s {
		sum += float64(d)
	}
	return latStats{N: len(s), P50: q(0.5), P90: q(0.9), P99: q(0.99), Max: float64(s[len(s)-1]) / 1e6, Mean: sum / float64(len(s)) / 1e6}
}
