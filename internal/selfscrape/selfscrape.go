// Package selfscrape writes a process's own metrics into NovaCron's store
// at a fixed interval, the way VictoriaMetrics' -selfScrapeInterval does,
// so `novacron run` can chart its own health with the same data source as
// the fleet and no Prometheus beside it.
package selfscrape

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/novacron/novacron"
)

// Writer is where the samples go (a storage.Writer).
type Writer interface {
	Write(ctx context.Context, batch []novacron.Series) error
}

// Scraper gathers a registry every interval and writes it as series with
// job and instance labels. Start, then Shutdown.
type Scraper struct {
	gatherer prometheus.Gatherer
	writer   Writer
	interval time.Duration
	labels   novacron.Labels
	logger   *slog.Logger
	now      func() time.Time

	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
}

// New returns a scraper; job and instance become the job and instance
// labels of every series.
func New(g prometheus.Gatherer, w Writer, interval time.Duration, job, instance string, logger *slog.Logger) *Scraper {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Scraper{gatherer: g, writer: w, interval: interval, logger: logger.With("component", "selfscrape"),
		labels: novacron.Labels{{Name: "instance", Value: instance}, {Name: "job", Value: job}}, now: time.Now}
}

// Start scrapes in the background until Shutdown.
func (s *Scraper) Start(_ context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := s.ScrapeOnce(ctx); err != nil && ctx.Err() == nil {
					s.logger.Warn("self-scrape failed", "err", err)
				}
			}
		}
	}()
	return nil
}

// Shutdown stops scraping. Safe to call twice and without Start.
func (s *Scraper) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.cancel = nil
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ScrapeOnce gathers and writes one scrape.
func (s *Scraper) ScrapeOnce(ctx context.Context) error {
	mfs, err := s.gatherer.Gather()
	if err != nil && len(mfs) == 0 {
		return err
	}
	series := Convert(mfs, s.labels, s.now().UnixMilli())
	return errors.Join(err, s.writer.Write(ctx, series))
}

// Convert turns gathered metric families into series at timestamp ts in
// milliseconds, in the Prometheus text format's naming: histograms become
// _bucket{le}, _sum and _count, summaries {quantile}, _sum and _count.
// extra labels are added to every series; labels are sorted.
func Convert(mfs []*dto.MetricFamily, extra novacron.Labels, ts int64) []novacron.Series {
	var out []novacron.Series
	add := func(name string, base novacron.Labels, more []novacron.Label, v float64) {
		ls := make(novacron.Labels, 0, len(base)+len(more)+len(extra)+1)
		ls = append(ls, novacron.Label{Name: novacron.MetricNameLabel, Value: name})
		ls = append(ls, base...)
		ls = append(ls, more...)
		for _, e := range extra {
			if base.Get(e.Name) == "" {
				ls = append(ls, e)
			}
		}
		slices.SortFunc(ls, func(a, b novacron.Label) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, novacron.Series{Labels: ls, Samples: []novacron.Sample{{T: ts, V: v}}})
	}
	for _, mf := range mfs {
		name := mf.GetName()
		for _, m := range mf.GetMetric() {
			base := make(novacron.Labels, 0, len(m.GetLabel()))
			for _, lp := range m.GetLabel() {
				if lp.GetValue() != "" {
					base = append(base, novacron.Label{Name: lp.GetName(), Value: lp.GetValue()})
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add(name, base, nil, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, base, nil, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add(name, base, nil, m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					add(name+"_bucket", base, []novacron.Label{{Name: "le", Value: formatFloat(b.GetUpperBound())}}, float64(b.GetCumulativeCount()))
				}
				add(name+"_bucket", base, []novacron.Label{{Name: "le", Value: "+Inf"}}, float64(h.GetSampleCount()))
				add(name+"_sum", base, nil, h.GetSampleSum())
				add(name+"_count", base, nil, float64(h.GetSampleCount()))
			case dto.MetricType_SUMMARY:
				sm := m.GetSummary()
				for _, q := range sm.GetQuantile() {
					add(name, base, []novacron.Label{{Name: "quantile", Value: formatFloat(q.GetQuantile())}}, q.GetValue())
				}
				add(name+"_sum", base, nil, sm.GetSampleSum())
				add(name+"_count", base, nil, float64(sm.GetSampleCount()))
			}
		}
	}
	return out
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
