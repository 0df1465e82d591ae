package main

import (
	"fmt"
	"regexp"
	"runtime"
	"time"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/sim"
	"github.com/novacron/novacron/internal/storage/prw"
	"github.com/novacron/novacron/models"
	"github.com/novacron/novacron/pipeline/analytics"
)

// memoryResult is what the memory mode measured.
type memoryResult struct {
	VMs, Hosts int `json:"-"`
	// Series is the distinct series fed; Detected and Forecast count those
	// the default rules give a detector and a forecast history (a series
	// may have both); Unmodelled those no rule matches (the processor
	// still keeps an entry for them).
	Series     int `json:"series"`
	Detected   int `json:"detected"`
	Forecast   int `json:"forecast"`
	Unmodelled int `json:"unmodelled"`
	Partitions int `json:"partitions"`
	Steps      int `json:"steps"`
	// FeedSeconds is the time to feed every step (encode, decode,
	// process).
	FeedSeconds float64 `json:"feed_seconds"`
	// HeapBytes is the live heap the processor holds after GC.
	HeapBytes int64 `json:"heap_bytes"`
	// BareHeapBytes is the same with no rules (every series unmodelled):
	// labels, map entries and per-series structs without model state.
	BareHeapBytes int64 `json:"bare_heap_bytes"`
	// LabelsBytes is the live heap of the decoded labels of one record
	// per series, measured alone: what the processor keeps of them.
	LabelsBytes int64 `json:"labels_bytes"`
	// DetectorBytes is the live heap of one default detector, measured
	// over many; ForecastBytes of one forecast history.
	DetectorBytes float64 `json:"detector_heap_bytes"`
	ForecastBytes float64 `json:"forecast_history_heap_bytes"`
	// DetectorSnapshotBytes is one detector's MarshalBinary size.
	DetectorSnapshotBytes int `json:"detector_snapshot_bytes"`
	// SnapshotBytes is the processor's snapshot of every partition: the
	// model state as checkpointed.
	SnapshotBytes int64 `json:"snapshot_bytes"`
	// HeapSysBytes and PeakRSSBytes are the process' totals at the end.
	HeapSysBytes int64  `json:"heap_sys_bytes"`
	PeakRSSBytes int64  `json:"peak_rss_bytes"`
	LoadAvg      string `json:"loadavg"`
}

// modelStateBytes is the in-memory model state: what the default rules
// add to the heap of a processor without rules (detectors, forecast
// states and their histories).
func (m memoryResult) modelStateBytes() float64 {
	return float64(m.HeapBytes - m.BareHeapBytes)
}

// overheadBytes is what a processor without rules holds besides the
// labels: the series map entries, the per-series structs and pointers.
func (m memoryResult) overheadBytes() float64 {
	return float64(m.BareHeapBytes - m.LabelsBytes)
}

func (m memoryResult) modelled() int { return m.Series - m.Unmodelled }

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// runMemory feeds every series of a fleet of vms VMs (25 series each) and
// vms/40 hosts (10 each) through an analytics.Processor with the default
// configuration, steps samples each, every record encoded as
// pipeline/publish encodes it and decoded as the stage decodes it, the
// series spread over partitions by hash as the bus spreads them.
func runMemory(vms, steps, partitions int, logf func(string, ...any)) (memoryResult, error) {
	res := memoryResult{VMs: vms, Hosts: max(1, vms/40), Partitions: partitions, Steps: steps}
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	sc := sim.NewDefaultConfig()
	sc.VMs, sc.Hosts, sc.Incidents = res.VMs, res.Hosts, nil
	fleet, err := sim.NewFleet(*sc, start)
	if err != nil {
		return res, err
	}
	cfg := analytics.NewDefaultConfig()
	cfg.MaxClockSkew = 0 // sample times are simulated
	rules := make([]*regexp.Regexp, 0, len(cfg.Rules))
	for _, r := range cfg.Rules {
		rules = append(rules, regexp.MustCompile("^(?:"+r.Metric+")$"))
	}
	var batch []novacron.Series
	// The labels alone: what the processor keeps of each series' first
	// decoded record.
	batch = fleet.AppendStep(batch[:0], start)
	res.Series = len(batch)
	if res.LabelsBytes, err = measureLabels(batch); err != nil {
		return res, err
	}
	for i := range batch {
		name := batch[i].Labels.Get(novacron.MetricNameLabel)
		r := -1
		for j, re := range rules {
			if re.MatchString(name) {
				r = j
				break
			}
		}
		switch {
		case r < 0 || cfg.Rules[r].Skip:
			res.Unmodelled++
		default:
			if cfg.Rules[r].Detect {
				res.Detected++
			}
			if cfg.Rules[r].Forecast {
				res.Forecast++
			}
		}
	}
	logf("memory: %d series (%d with a detector, %d with a forecast history, %d unmodelled), %d steps", res.Series, res.Detected, res.Forecast, res.Unmodelled, steps)

	// The processor with the default rules, then with no rules (every
	// series unmodelled): the difference is the model state.
	keys := make([]uint64, len(batch))
	for i := range batch {
		keys[i] = batch[i].Labels.Hash()
	}
	t0 := time.Now()
	heap, snap, err := feedProcessor(cfg, fleet, start, sc.Interval, batch, keys, steps, partitions, logf)
	if err != nil {
		return res, err
	}
	res.FeedSeconds = time.Since(t0).Seconds()
	res.HeapBytes, res.SnapshotBytes = heap, snap
	bare := cfg
	bare.Rules = []analytics.Rule{}
	fleet, err = sim.NewFleet(*sc, start)
	if err != nil {
		return res, err
	}
	batch = fleet.AppendStep(batch[:0], start)
	if res.BareHeapBytes, _, err = feedProcessor(bare, fleet, start, sc.Interval, batch, keys, steps, partitions, logf); err != nil {
		return res, err
	}
	runtime.KeepAlive(keys)

	if res.DetectorBytes, res.DetectorSnapshotBytes, res.ForecastBytes, err = measureModels(start, sc.Interval, cfg.Forecast.History); err != nil {
		return res, err
	}

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapSysBytes = int64(ms.HeapSys)
	res.PeakRSSBytes = peakRSS(0)
	res.LoadAvg = loadAvg()
	return res, nil
}

// feedProcessor feeds steps samples of every series of the fleet (batch
// holds its first step) through a new processor and returns the live heap
// it holds and the size of its snapshot.
func feedProcessor(cfg analytics.Config, fleet *sim.Fleet, start time.Time, interval time.Duration, batch []novacron.Series,
	keys []uint64, steps, partitions int, logf func(string, ...any)) (heap, snapshot int64, err error) {
	var (
		dec []novacron.Series
		buf []byte
		out analytics.Output
	)
	base := liveHeap()
	p, err := analytics.NewProcessor(cfg, nil, analytics.Source)
	if err != nil {
		return 0, 0, err
	}
	for s := range steps {
		if s > 0 {
			batch = fleet.AppendStep(batch[:0], start.Add(time.Duration(s)*interval))
			if len(batch) != len(keys) {
				return 0, 0, fmt.Errorf("step %d has %d series, the first had %d", s, len(batch), len(keys))
			}
		}
		for i := range batch {
			if buf, err = prw.AppendWriteRequest(buf[:0], batch[i:i+1]); err != nil {
				return 0, 0, err
			}
			if dec, err = prw.DecodeWriteRequest(buf, dec[:0]); err != nil {
				return 0, 0, err
			}
			p.ProcessKeyed(int32(keys[i]%uint64(partitions)), keys[i], dec[0], &out)
			if len(out.Series) > 4096 {
				out.Reset()
			}
		}
		out.Reset()
		logf("memory: %d rules, step %d/%d fed", len(cfg.Rules), s+1, steps)
	}
	if p.SeriesCount() != len(keys) {
		return 0, 0, fmt.Errorf("processor holds %d series, %d were fed", p.SeriesCount(), len(keys))
	}
	// What the loop reused is garbage or shared with the caller now; the
	// fleet's last samples are not the processor's.
	for i := range batch {
		batch[i].Samples = nil
	}
	clear(dec)
	dec, buf, out = nil, nil, analytics.Output{}
	heap = liveHeap() - base
	for part := range partitions {
		b, err := p.Snapshot(int32(part))
		if err != nil {
			return 0, 0, err
		}
		snapshot += int64(len(b))
	}
	// The fleet and the keys were in the base: keep them reachable until
	// the heap is measured, or their collection hides as many bytes.
	runtime.KeepAlive(p)
	runtime.KeepAlive(fleet)
	runtime.KeepAlive(batch)
	runtime.KeepAlive(keys)
	return heap, snapshot, nil
}

// measureLabels returns the live heap of the labels decoded from one
// record per series, kept as the processor keeps them. Each measurement
// runs in a function of its own, so nothing of it stays reachable from a
// live stack frame afterwards.
func measureLabels(batch []novacron.Series) (int64, error) {
	var (
		dec []novacron.Series
		buf []byte
		err error
	)
	kept := make([]novacron.Labels, len(batch))
	base := liveHeap()
	for i := range batch {
		if buf, err = prw.AppendWriteRequest(buf[:0], batch[i:i+1]); err != nil {
			return 0, err
		}
		if dec, err = prw.DecodeWriteRequest(buf, dec[:0]); err != nil {
			return 0, err
		}
		kept[i] = dec[0].Labels
	}
	clear(dec)
	n := liveHeap() - base
	runtime.KeepAlive(kept)
	runtime.KeepAlive(batch)
	return n, nil
}

// measureModels returns the live heap of one default detector and one
// forecast history, each measured over many, and a detector's snapshot
// size.
func measureModels(start time.Time, interval time.Duration, history int) (det float64, detSnap int, hist float64, err error) {
	const n = 20_000
	dets := make([]models.Detector, n)
	base := liveHeap()
	for i := range dets {
		dets[i] = models.NewDefaultDetector()
		for s := range 3 {
			dets[i].Observe(start.Add(time.Duration(s)*interval).UnixMilli(), 0.5)
		}
	}
	det = float64(liveHeap()-base) / n
	b, err := dets[0].MarshalBinary()
	if err != nil {
		return 0, 0, 0, err
	}
	runtime.KeepAlive(dets)
	hists := make([][]float32, n)
	base = liveHeap()
	for i := range hists {
		hists[i] = make([]float32, history)
	}
	hist = float64(liveHeap()-base) / n
	runtime.KeepAlive(hists)
	return det, len(b), hist, nil
}
