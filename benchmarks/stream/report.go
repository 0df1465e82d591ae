package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// report is the whole results file's data.
type report struct {
	Date         string        `json:"date"`
	Commit       string        `json:"commit"`
	Machine      machineInfo   `json:"machine"`
	LoadAvgStart string        `json:"loadavg_at_start"`
	LoadAvgEnd   string        `json:"loadavg_at_end"`
	KafkaVersion string        `json:"kafka_version,omitempty"`
	VMVersion    string        `json:"victoriametrics_version,omitempty"`
	Target       float64       `json:"target_p99_seconds"`
	E2E          *e2eResult    `json:"end_to_end,omitempty"`
	Memory       *memoryResult `json:"memory,omitempty"`
	TotalSeconds float64       `json:"total_seconds"`
}

// e2eResult is the end-to-end mode's data.
type e2eResult struct {
	VMs                  int                `json:"vms"`
	Interval             string             `json:"simulated_interval"`
	Partitions           int                `json:"partitions"`
	WarmupSteps          int                `json:"warmup_steps"`
	InjectPerSecond      float64            `json:"inject_per_second"`
	SimStart             string             `json:"simulated_start"`
	Settings             map[string]string  `json:"settings"`
	Peer                 *peerResult        `json:"peer,omitempty"`
	Warmup               phaseResult        `json:"warmup"`
	WarmupCatchUpSeconds float64            `json:"warmup_catch_up_seconds"`
	Phases               []phaseResult      `json:"phases"`
	DrainSeconds         float64            `json:"drain_seconds"`
	EventKinds           map[string]int     `json:"event_kinds"`
	UnmatchedOpened      int                `json:"unmatched_anomaly_opened"`
	DuplicateOpened      int                `json:"duplicate_anomaly_opened"`
	Final                status             `json:"stage_final_status"`
	StagePeakRSS         int64              `json:"stage_peak_rss_bytes"`
	StageSeries          float64            `json:"stage_series_max"`
	VMSeriesByKind       map[string]float64 `json:"victoriametrics_derived_series_by_kind"`
	VMDerivedSamples     float64            `json:"victoriametrics_derived_samples"`
	VMError              string             `json:"victoriametrics_error,omitempty"`
}

// peerResult is the raw Kafka round trip.
type peerResult struct {
	Rate        float64            `json:"target_rate"`
	Load        phaseLoad          `json:"load"`
	Received    int                `json:"received"`
	Latency     latStats           `json:"latency"`
	CPU         map[string]float64 `json:"cpu_seconds"`
	MachineBusy float64            `json:"machine_busy_cpu_seconds"`
}

// phaseResult is one phase of the end-to-end mode.
type phaseResult struct {
	Name       string    `json:"name"`
	TargetRate float64   `json:"target_rate"`
	Load       phaseLoad `json:"load"`
	Wall       float64   `json:"wall_seconds"`
	// StageRate is the samples the stage saw per second of the phase.
	StageRate float64 `json:"stage_samples_per_second"`
	// LagMaxRecords and LagEndRecords are the processing lag: records
	// acknowledged by Kafka that the stage had not yet processed, at
	// most and at the phase's end. UncommittedLagMax is the stage's own
	// gauge (records not yet committed, which happens at checkpoints).
	LagMaxRecords       int64              `json:"lag_max_records"`
	LagEndRecords       int64              `json:"lag_end_records"`
	UncommittedLagMax   float64            `json:"uncommitted_lag_max_records"`
	Checkpoints         float64            `json:"checkpoints"`
	CheckpointSeconds   float64            `json:"checkpoint_seconds"`
	CheckpointMeanBytes float64            `json:"checkpoint_mean_bytes"`
	Derived             float64            `json:"derived_samples_written"`
	Injected            int                `json:"injected"`
	Opened              int                `json:"opened"`
	Latency             latStats           `json:"latency"`
	StageLatency        latStats           `json:"to_event_produced"`
	AckDelay            latStats           `json:"sample_ack_delay"`
	SampleIndex         map[int]int        `json:"opened_on_shifted_sample"`
	CPU                 map[string]float64 `json:"cpu_seconds"`
	MachineBusy         float64            `json:"machine_busy_cpu_seconds"`
	LoadAvg             string             `json:"loadavg_at_end"`
}

// keptUp reports whether the phase was sustained: the load reached 97% of
// the rate and the stage ended less than one second of samples behind.
func (p phaseResult) keptUp(rate float64) bool {
	return p.Load.Rate >= 0.97*rate && float64(p.LagEndRecords) <= rate
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func cpuCell(m map[string]float64, wall float64) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f", n, m[n]/wall))
	}
	return strings.Join(parts, ", ")
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "**no**"
}

// renderMarkdown renders the results file.
func renderMarkdown(rep *report) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Streaming analytics benchmark, %s\n\n", rep.Date)
	w("Written by `go run ./benchmarks/stream` (see README.md) at commit `%s`.\n\n", rep.Commit)
	m := rep.Machine
	w("**Machine:** %s, %d cores, %.1f GiB RAM, %s, kernel %s, %s. Load average %s at the start, %s at the end (shared machine: other work ran beside the benchmark).",
		m.CPUModel, m.Cores, m.MemoryGiB, m.OS, m.Kernel, m.GoVersion, rep.LoadAvgStart, rep.LoadAvgEnd)
	if rep.KafkaVersion != "" {
		w(" Apache Kafka %s (one broker, KRaft), VictoriaMetrics %s.", rep.KafkaVersion, rep.VMVersion)
	}
	w("\n\n")
	if e := rep.E2E; e != nil {
		renderE2E(w, rep, e)
	}
	if mr := rep.Memory; mr != nil {
		renderMemory(w, mr)
	}
	js, _ := json.MarshalIndent(rep, "", "  ")
	w("## Data\n\n```json\n%s\n```\n", js)
	return b.String()
}

func renderE2E(w func(string, ...any), rep *report, e *e2eResult) {
	series := e.VMs*25 + max(1, e.VMs/10)*10
	w("## End to end: sim → Kafka → analytics stage → VictoriaMetrics, events on Kafka\n\n")
	w("%d series (%d simulated VMs × 25 + %d hosts × 10), one sample per record as `pipeline/publish` encodes them, simulated interval %s (so simulated time runs faster than the wall clock at these rates), %d partitions. ",
		series, e.VMs, max(1, e.VMs/10), e.Interval, e.Partitions)
	w("The stage runs in its own process with the default configuration. Latency: from the moment the triggering sample's record is handed to the Kafka producer to the moment its `anomaly_opened` event is read back from the events topic by a plain consumer (joined by series and sample time). Target: p99 ≤ %.0f ms.\n\n", rep.Target*1000)
	w("| phase | target samples/s | handed samples/s | stage samples/s | shifts | opened | latency p50 | p90 | p99 | max | p99 ≤ target | lag max (end), records | sustained |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|\n")
	for _, p := range e.Phases {
		meets := p.Latency.N > 0 && p.Latency.P99 <= rep.Target*1000 && p.Opened == p.Injected
		w("| %s | %s | %s | %s | %d | %d | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %s | %s (%s) | %s |\n",
			p.Name, si(p.TargetRate), si(p.Load.Rate), si(p.StageRate), p.Injected, p.Opened,
			p.Latency.P50, p.Latency.P90, p.Latency.P99, p.Latency.Max, yes(meets),
			si(float64(p.LagMaxRecords)), si(float64(p.LagEndRecords)), yes(p.keptUp(p.TargetRate)))
	}
	w("\n")
	if pr := e.Peer; pr != nil {
		w("**Peer (same broker, same records, same rate, measured before the stage started):** a plain franz-go producer → Kafka → plain consumer round trip, %s records/s handed for %.0f s, %d read back: latency p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms. This is the bus' own floor; the stage's latency adds decoding, the models, the events' produce and their consumption.\n\n",
			si(pr.Load.Rate), pr.Load.Seconds, pr.Received, pr.Latency.P50, pr.Latency.P90, pr.Latency.P99, pr.Latency.Max)
	}
	w("Where the time goes (per phase): the sample's record acknowledged by the broker after p50/p99 (`ack`), the event produced by the stage (its record timestamp, ms precision) after p50/p99 (`to event`), and the sample the anomaly opened on (0: the first shifted one).\n\n")
	w("| phase | ack p50 / p99 | to event p50 / p99 | opened on shifted sample # | checkpoints (s spent, mean size) | derived samples written | uncommitted lag max | CPU cores used (wall-averaged) | machine busy cores | load avg at end |\n|---|---|---|---|---|---:|---:|---|---:|---|\n")
	all := append([]phaseResult{e.Warmup}, e.Phases...)
	for _, p := range all {
		idx := make([]int, 0, len(p.SampleIndex))
		for k := range p.SampleIndex {
			idx = append(idx, k)
		}
		slices.Sort(idx)
		var parts []string
		for _, k := range idx {
			parts = append(parts, fmt.Sprintf("#%d: %d", k, p.SampleIndex[k]))
		}
		w("| %s | %.0f / %.0f ms | %.0f / %.0f ms | %s | %.0f (%.1f s, %s) | %s | %s | %s | %.2f | %s |\n",
			p.Name, p.AckDelay.P50, p.AckDelay.P99, p.StageLatency.P50, p.StageLatency.P99, strings.Join(parts, ", "),
			p.Checkpoints, p.CheckpointSeconds, mib(int64(p.CheckpointMeanBytes)), si(p.Derived), si(p.UncommittedLagMax),
			cpuCell(p.CPU, p.Wall), p.MachineBusy/p.Wall, p.LoadAvg)
	}
	w("\n")
	w("- Warm-up: %d steps handed in %.1f s at %s samples/s (as fast as the producer took them); the stage caught up %.1f s after the last one.\n",
		e.WarmupSteps, e.Warmup.Load.Seconds, si(e.Warmup.Load.Rate), e.WarmupCatchUpSeconds)
	w("- Events read from the events topic, by kind: %v. `anomaly_opened` events on no injected series (the simulated fleet's own noise): %d; repeated opens of an injected series: %d.\n",
		e.EventKinds, e.UnmatchedOpened, e.DuplicateOpened)
	w("- Stage process peak RSS %s; it held up to %s series, had seen %s samples (%s modelled), written %s derived samples (%s dropped) and made %s checkpoints (%s failed).\n",
		mib(e.StagePeakRSS), si(e.StageSeries), si(e.Final.Samples), si(e.Final.Modelled), si(e.Final.Derived), si(e.Final.DerivedDropped), si(e.Final.Checkpoints), si(e.Final.CheckpointErrors))
	if e.VMError != "" {
		w("- VictoriaMetrics check failed: %s.\n", e.VMError)
	} else {
		kinds := make([]string, 0, len(e.VMSeriesByKind))
		for k := range e.VMSeriesByKind {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		var parts []string
		for _, k := range kinds {
			parts = append(parts, fmt.Sprintf("%s %s", k, si(e.VMSeriesByKind[k])))
		}
		w("- VictoriaMetrics, queried after the stage stopped: derived series by kind: %s; %s derived samples stored (the stage counted %s written).\n",
			strings.Join(parts, ", "), si(e.VMDerivedSamples), si(e.Final.Derived))
	}
	w("\n")
}

func renderMemory(w func(string, ...any), m *memoryResult) {
	w("## Memory per active series\n\n")
	w("%d distinct series (%d simulated VMs × 25 + %d hosts × 10: the simulated fleet's label sets) fed through `analytics.Processor` with the default configuration and rules, %d samples each, every record encoded as `pipeline/publish` encodes it and decoded as the stage decodes it, spread over %d partitions by hash. %d series get a detector, %d of them also a forecast history; %d match no rule (the processor still keeps an entry for them). Heap measured with `runtime.ReadMemStats` after two GCs. Feeding took %.1f s; load average %s.\n\n",
		m.Series, m.VMs, m.Hosts, m.Steps, m.Partitions, m.Detected, m.Forecast, m.Unmodelled, m.FeedSeconds, m.LoadAvg)
	n := float64(m.Series)
	mod := float64(m.modelled())
	w("| part | total | per series (all %s) | per modelled series (%s) |\n|---|---:|---:|---:|\n", si(n), si(mod))
	row := func(name string, total float64) {
		w("| %s | %s | %.0f B | %.0f B |\n", name, mib(int64(total)), total/n, total/mod)
	}
	row("model state in memory (detectors + forecast histories)", m.modelStateBytes())
	row("model state as checkpointed (`Processor.Snapshot`)", float64(m.SnapshotBytes))
	row("labels (decoded, as kept from each series' first record)", float64(m.LabelsBytes))
	row("map entries, per-series structs, pointers (the rest)", m.overheadBytes())
	row("**whole processor heap**", float64(m.HeapBytes))
	w("\n")
	w("- One default detector: %.0f B of heap (measured over 20 000), %d B as a snapshot. One forecast history (`forecast.history` points of float32): %.0f B of heap; the struct around it counts in the rest.\n",
		m.DetectorBytes, m.DetectorSnapshotBytes, m.ForecastBytes)
	w("- Per modelled series, model state is %.0f B in memory and %.0f B checkpointed (target: at most 2048 B): %s.\n",
		m.modelStateBytes()/mod, float64(m.SnapshotBytes)/mod, yes(m.modelStateBytes()/mod <= 2048))
	w("- The process' heap from the OS was %s and its peak RSS %s at the end (Go's GC keeps up to GOGC=100%% more than the live heap between collections).\n\n",
		mib(m.HeapSysBytes), mib(m.PeakRSSBytes))
}

// summary is the short text printed at the end of a run.
func summary(rep *report) string {
	var b strings.Builder
	if e := rep.E2E; e != nil {
		if e.Peer != nil {
			fmt.Fprintf(&b, "peer raw Kafka round trip: p50 %.1f ms p99 %.1f ms\n", e.Peer.Latency.P50, e.Peer.Latency.P99)
		}
		for _, p := range e.Phases {
			fmt.Fprintf(&b, "%-16s handed %8s/s stage %8s/s opened %d/%d p50 %6.0f ms p99 %6.0f ms max %6.0f ms lag end %s sustained %v\n",
				p.Name, si(p.Load.Rate), si(p.StageRate), p.Opened, p.Injected, p.Latency.P50, p.Latency.P99, p.Latency.Max, si(float64(p.LagEndRecords)), p.keptUp(p.TargetRate))
		}
	}
	if m := rep.Memory; m != nil {
		fmt.Fprintf(&b, "memory: %d series, heap %.0f B/series, model state %.0f B/modelled series (snapshot %.0f), labels %.0f B/series, rest %.0f B/series\n",
			m.Series, float64(m.HeapBytes)/float64(m.Series), m.modelStateBytes()/float64(m.modelled()), float64(m.SnapshotBytes)/float64(m.modelled()),
			float64(m.LabelsBytes)/float64(m.Series), m.overheadBytes()/float64(m.Series))
	}
	return b.String()
}
