package main

import (
	"syscall"
	"time"
)

// usage is what a timed section cost: CPU seconds and peak RSS of each
// watched process, this process' own CPU, and the whole machine's busy
// CPU (so other load on the machine shows up in the results).
type usage struct {
	CPUSeconds   map[string]float64 `json:"cpu_seconds"`
	PeakRSSBytes map[string]int64   `json:"peak_rss_bytes"`
	SelfCPU      float64            `json:"self_cpu_seconds"`
	MachineBusy  float64            `json:"machine_busy_cpu_seconds"`
	Wall         float64            `json:"wall_seconds"`
}

// watch measures a timed section of the processes named in pids.
type watch struct {
	pids  map[string]int
	cpu0  map[string]float64
	self0 float64
	busy0 float64
	start time.Time
}

// startWatch resets the peak RSS of every watched process and takes the
// starting CPU counters.
func startWatch(pids map[string]int) (*watch, error) {
	w := &watch{pids: pids, cpu0: map[string]float64{}, start: time.Now()}
	for name, pid := range pids {
		if err := resetPeakRSS(pid); err != nil {
			return nil, err
		}
		c, err := procCPUSeconds(pid)
		if err != nil {
			return nil, err
		}
		w.cpu0[name] = c
	}
	w.self0 = selfCPU()
	w.busy0, _, _ = systemCPU()
	return w, nil
}

// stop returns the usage since startWatch.
func (w *watch) stop() usage {
	u := usage{CPUSeconds: map[string]float64{}, PeakRSSBytes: map[string]int64{}, Wall: time.Since(w.start).Seconds()}
	for name, pid := range w.pids {
		if c, err := procCPUSeconds(pid); err == nil {
			u.CPUSeconds[name] = c - w.cpu0[name]
		}
		if p, err := procStatusKB(pid, "VmHWM"); err == nil {
			u.PeakRSSBytes[name] = p
		}
	}
	u.SelfCPU = selfCPU() - w.self0
	busy, _, _ := systemCPU()
	u.MachineBusy = busy - w.busy0
	return u
}

func selfCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
}
