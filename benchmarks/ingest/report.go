package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
)

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// otherCPU is the machine's busy CPU time during a section minus what the
// measured processes used: other load on the machine.
func otherCPU(u usage) float64 {
	known := 0.0
	for _, c := range u.CPUSeconds {
		known += c
	}
	return max(0, u.MachineBusy-known)
}

func cpuCell(u usage) string {
	var parts []string
	for _, name := range []string{"writers", "novacron", "victoria-metrics", "kafka"} {
		if c, ok := u.CPUSeconds[name]; ok {
			parts = append(parts, fmt.Sprintf("%s %.1f", name, c))
		}
	}
	return strings.Join(parts, ", ")
}

// perMillion is the CPU seconds the measured processes spent per million
// samples.
func perMillion(res result) float64 {
	if res.Samples == 0 {
		return 0
	}
	total := 0.0
	for _, c := range res.Usage.CPUSeconds {
		total += c
	}
	return total / (float64(res.Samples) / 1e6)
}

func verdict(res result, target float64) string {
	switch {
	case res.Scenario == scenarioRaw:
		return "baseline"
	case res.RatioToRaw >= target:
		return fmt.Sprintf("**%.0f%%** ≥ %.0f%%", 100*res.RatioToRaw, 100*target)
	default:
		return fmt.Sprintf("**%.0f%%** < %.0f%%", 100*res.RatioToRaw, 100*target)
	}
}

func renderMarkdown(rep *report) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# NovaCron ingest benchmark, %s\n\n", rep.Date)
	w("Measured by `go run ./benchmarks/ingest` (see README.md in this directory) at commit `%s`, in %.0f s.\n\n", rep.Commit, rep.TotalSeconds)
	w("| machine | |\n|---|---|\n")
	w("| CPU | %s |\n| cores | %d |\n| memory | %.1f GiB |\n| Go | %s |\n| OS | %s (kernel %s) |\n",
		rep.Machine.CPUModel, rep.Machine.Cores, rep.Machine.MemoryGiB, rep.Machine.GoVersion, rep.Machine.OS, rep.Machine.Kernel)
	w("| VictoriaMetrics | %s |\n", rep.VMVersion)
	if rep.KafkaVersion != "" {
		w("| Apache Kafka | %s (single node, KRaft, on the same machine) |\n", rep.KafkaVersion)
	}
	w("| load average at start | %s |\n\n", rep.LoadAvgAtStart)
	w("Every scenario has %d active series already known to the store (a warm-up round registers them untimed) and a fresh VictoriaMetrics or TSDB. ", rep.Series)
	w("The raw baseline posts pre-encoded snappy WriteRequests for a fixed time; NovaCron's scenarios fill the samples topic first (one record per series per batch of samples, through `pipeline/publish`) and time `pipeline/ingest` → `storage.Sender` → writer draining it, until every sample is acknowledged (drain rate). ")
	w("Stored counts are read back from the store afterwards (warm-up round included). ")
	w("Peak RSS is VmHWM over the timed section (reset through `/proc/<pid>/clear_refs`); with the in-process bus the filled topic is part of NovaCron's RSS, shown as \"at start\". ")
	w("\"Other CPU\" is the machine's busy time not spent by the measured processes: load from elsewhere on the machine. ")
	w("\"CPU-cost ratio\" is the raw baseline's CPU seconds per sample (all measured processes) over the scenario's: the throughput ratio to expect when every process is CPU-bound on the same cores, and much less disturbed by other load than the rates.\n\n")
	w("Settings: ")
	keys := slices.Sorted(maps.Keys(rep.Settings))
	for i, k := range keys {
		if i > 0 {
			w(", ")
		}
		w("`%s`=%s", k, rep.Settings[k])
	}
	w(".\n\n")

	shapes := []int{}
	for _, r := range rep.Results {
		if !slices.Contains(shapes, r.SamplesPerRecord) {
			shapes = append(shapes, r.SamplesPerRecord)
		}
	}
	for _, spr := range shapes {
		w("## %d sample(s) per series per record\n\n", spr)
		w("| run | scenario | path | samples | s | samples/s | vs raw (target %.0f%%) | stored / expected | NovaCron peak RSS (at start) | VictoriaMetrics peak RSS | CPU s | CPU s per 1M samples | CPU-cost ratio | other CPU s |\n", 100*rep.Target)
		w("|---|---|---|---:|---:|---:|---|---|---|---|---|---:|---:|---:|\n")
		for _, r := range rep.Results {
			if r.SamplesPerRecord != spr {
				continue
			}
			nc := "–"
			if r.Worker != nil {
				nc = fmt.Sprintf("%s (%s)", mib(r.Usage.PeakRSSBytes["novacron"]), mib(r.Worker.RSSAtStartBytes))
			}
			vmRSS := "–"
			if v, ok := r.Usage.PeakRSSBytes["victoria-metrics"]; ok {
				vmRSS = mib(v)
			}
			stored := fmt.Sprintf("%d / %d", r.StoredSamples, r.StoredExpected)
			if r.StoredExpected < 0 {
				stored = "– (no store)"
			} else if r.StoredSamples == r.StoredExpected {
				stored += " ✓"
			} else {
				stored += " ✗"
			}
			w("| %d | %s | %s | %s | %.1f | %s | %s | %s | %s | %s | %s | %.2f | %.0f%% | %.1f |\n",
				r.Run, r.Scenario, r.Path, si(float64(r.Samples)), r.Seconds, si(r.SamplesPerSecond), verdict(r, rep.Target),
				stored, nc, vmRSS, cpuCell(r.Usage), perMillion(r), 100*r.CPUCostRatio, otherCPU(r.Usage))
		}
		w("\n")
		for _, r := range rep.Results {
			if r.SamplesPerRecord != spr {
				continue
			}
			if r.Worker != nil {
				w("- run %d %s: topic filled with %d records in %.1f s; first batch acknowledged after %.2f s; %.0f storage writes of %.0f records on average.\n",
					r.Run, r.Scenario, r.Worker.PrefillRecords, r.Worker.PrefillSeconds, r.Worker.FirstAckSeconds, r.Worker.StorageWrites, r.Worker.MeanBatchSeries)
			}
			for _, n := range r.Notes {
				w("- run %d %s: %s.\n", r.Run, r.Scenario, n)
			}
		}
		w("\n")
	}
	w("## benchstat\n\nOne op is one sample; compare runs with `benchstat old.txt new.txt` (see README.md).\n\n```text\n%s```\n\n", benchLines(rep))
	js, _ := json.MarshalIndent(rep, "", "  ")
	w("## Data\n\n```json\n%s\n```\n", js)
	return b.String()
}

// benchLines renders the results in the Go benchmark format, one op per
// sample, so benchstat can compare runs.
func benchLines(rep *report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "goos: %s\ngoarch: %s\npkg: github.com/novacron/novacron/benchmarks/ingest\ncpu: %s\n", runtime.GOOS, runtime.GOARCH, rep.Machine.CPUModel)
	for _, r := range rep.Results {
		if r.Samples == 0 {
			continue
		}
		fmt.Fprintf(&b, "BenchmarkIngest/%s/spr=%d-%d\t%d\t%.2f ns/op\t%.0f samples/s\t%.3f ratio-to-raw\t%.3f cpu-cost-ratio\t%.3f cpu-s/Msample",
			r.Scenario, r.SamplesPerRecord, rep.Machine.Cores, r.Samples, r.Seconds*1e9/float64(r.Samples), r.SamplesPerSecond, r.RatioToRaw, r.CPUCostRatio, perMillion(r))
		if v, ok := r.Usage.PeakRSSBytes["novacron"]; ok {
			fmt.Fprintf(&b, "\t%.1f novacron-peak-MiB", float64(v)/(1<<20))
		}
		if v, ok := r.Usage.PeakRSSBytes["victoria-metrics"]; ok {
			fmt.Fprintf(&b, "\t%.1f vm-peak-MiB", float64(v)/(1<<20))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// summary is the short table printed at the end of a run.
func summary(rep *report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-12s %4s %4s %12s %8s %9s %10s\n", "scenario", "spr", "run", "samples/s", "vs raw", "CPU-cost", "peak RSS")
	for _, r := range rep.Results {
		peak := "-"
		if v, ok := r.Usage.PeakRSSBytes["novacron"]; ok {
			peak = mib(v)
		}
		fmt.Fprintf(&b, "%-12s %4d %4d %12s %7.0f%% %8.0f%% %10s\n", r.Scenario, r.SamplesPerRecord, r.Run, si(r.SamplesPerSecond), 100*r.RatioToRaw, 100*r.CPUCostRatio, peak)
	}
	return b.String()
}
