package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/novacron/novacron/internal/bus/kafkabus"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/remotewrite"
	"github.com/novacron/novacron/pipeline/analytics"
)

// stageSpec is what the parent tells the stage process (flags of the
// "stage" subcommand).
type stageSpec struct {
	brokers, writeURL    string
	samples, events      string
	checkpointInterval   time.Duration
	checkpointMaxRecords int
	maxPollRecords       int
	profile              string
}

func (s stageSpec) args() []string {
	a := []string{"stage", "-brokers", s.brokers, "-write-url", s.writeURL, "-samples", s.samples, "-events", s.events}
	if s.checkpointInterval > 0 {
		a = append(a, "-checkpoint.interval", s.checkpointInterval.String())
	}
	if s.checkpointMaxRecords > 0 {
		a = append(a, "-checkpoint.max-records", fmt.Sprint(s.checkpointMaxRecords))
	}
	if s.maxPollRecords > 0 {
		a = append(a, "-max-poll-records", fmt.Sprint(s.maxPollRecords))
	}
	if s.profile != "" {
		a = append(a, "-profile", s.profile)
	}
	return a
}

// status is what the stage process prints, one JSON line every 250 ms
// and a last one after shutdown.
type status struct {
	Samples           float64            `json:"samples"`
	Modelled          float64            `json:"modelled"`
	Records           float64            `json:"records"`
	Derived           float64            `json:"derived"`
	DerivedDropped    float64            `json:"derived_dropped"`
	Events            map[string]float64 `json:"events"`
	Checkpoints       float64            `json:"checkpoints"`
	CheckpointErrors  float64            `json:"checkpoint_errors"`
	CheckpointSeconds float64            `json:"checkpoint_seconds"`
	CheckpointBytes   float64            `json:"checkpoint_bytes"`
	// UncommittedLag is novacron_analytics_consumer_lag_records: records
	// not yet committed (they are committed only at checkpoints).
	UncommittedLag float64 `json:"uncommitted_lag"`
	Series         float64 `json:"series"`
	QueueSamples   float64 `json:"storage_queue_samples"`
	HeapBytes      uint64  `json:"heap_bytes"`
	Final          bool    `json:"final,omitempty"`
}

// runStage is the stage process: the analytics stage with the default
// configuration (except the flags), its derived series through the
// storage sender to VictoriaMetrics, its events on Kafka, until its
// standard input closes.
func runStage(args []string) error {
	fs := flag.NewFlagSet("stage", flag.ContinueOnError)
	var s stageSpec
	fs.StringVar(&s.brokers, "brokers", "", "Kafka brokers, comma-separated")
	fs.StringVar(&s.writeURL, "write-url", "", "remote-write URL")
	fs.StringVar(&s.samples, "samples", "novacron.samples", "samples topic")
	fs.StringVar(&s.events, "events", "novacron.events", "events topic")
	fs.DurationVar(&s.checkpointInterval, "checkpoint.interval", 0, "analytics checkpoint.interval (0: default)")
	fs.IntVar(&s.checkpointMaxRecords, "checkpoint.max-records", 0, "analytics checkpoint.max_records (0: default)")
	fs.IntVar(&s.maxPollRecords, "max-poll-records", 0, "analytics max_poll_records (0: default)")
	fs.StringVar(&s.profile, "profile", "", "write a CPU profile here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reg := prometheus.NewRegistry()
	ctx := context.Background()
	if s.profile != "" {
		f, err := os.Create(s.profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	bcfg := kafkabus.NewDefaultConfig()
	bcfg.Brokers = strings.Split(s.brokers, ",")
	// A short session: the stage is alone in its group.
	bus, err := kafkabus.New(bcfg, kafkabus.Settings{Logger: logger, Registerer: reg})
	if err != nil {
		return err
	}
	defer bus.Close()
	wcfg := remotewrite.NewDefaultConfig()
	wcfg.URL = s.writeURL
	w, err := remotewrite.New(wcfg, storage.Settings{Logger: logger, Registerer: reg})
	if err != nil {
		return err
	}
	sender := storage.NewSender(w, storage.NewDefaultSenderConfig(), storage.Settings{Logger: logger, Registerer: reg})
	if err := sender.Start(ctx); err != nil {
		return err
	}
	acfg := analytics.NewDefaultConfig()
	if s.checkpointInterval > 0 {
		acfg.Checkpoint.Interval = s.checkpointInterval
	}
	if s.checkpointMaxRecords > 0 {
		acfg.Checkpoint.MaxRecords = s.checkpointMaxRecords
	}
	if s.maxPollRecords > 0 {
		acfg.MaxPollRecords = s.maxPollRecords
	}
	st, err := analytics.New(acfg, analytics.Settings{Logger: logger, Registerer: reg}, bus, sender,
		analytics.Topics{Samples: s.samples, Events: s.events, ReplicationFactor: 1})
	if err != nil {
		return err
	}
	if err := st.Start(ctx); err != nil {
		return err
	}
	stdinClosed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stdinClosed) }()
	out := bufio.NewWriter(os.Stdout)
	emit := func(final bool) {
		s := readStatus(reg)
		s.Final = final
		b, _ := json.Marshal(s)
		out.Write(b)
		out.WriteByte('\n')
		out.Flush()
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-stdinClosed:
			break loop
		case <-tick.C:
			emit(false)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err = errors.Join(st.Shutdown(sctx), sender.Shutdown(sctx))
	emit(true)
	return err
}

func readStatus(reg *prometheus.Registry) status {
	s := status{Events: map[string]float64{}}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := metricValue(m)
			switch mf.GetName() {
			case "novacron_analytics_samples_total":
				s.Samples += v
			case "novacron_analytics_modelled_samples_total":
				s.Modelled += v
			case "novacron_analytics_records_total":
				s.Records += v
			case "novacron_analytics_derived_samples_total":
				s.Derived += v
			case "novacron_analytics_derived_dropped_total":
				s.DerivedDropped += v
			case "novacron_analytics_events_total":
				s.Events[labelValue(m, "kind")] += v
			case "novacron_analytics_checkpoints_total":
				if labelValue(m, "result") == "ok" {
					s.Checkpoints += v
				} else {
					s.CheckpointErrors += v
				}
			case "novacron_analytics_checkpoint_duration_seconds":
				s.CheckpointSeconds += m.GetHistogram().GetSampleSum()
			case "novacron_analytics_checkpoint_size_bytes":
				s.CheckpointBytes += m.GetHistogram().GetSampleSum()
			case "novacron_analytics_consumer_lag_records":
				s.UncommittedLag += v
			case "novacron_analytics_series":
				s.Series += v
			case "novacron_storage_queue_samples":
				s.QueueSamples += v
			}
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.HeapBytes = ms.HeapAlloc
	return s
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
