package alerting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/novacron/novacron/internal/statedb"
)

// The rule manager keeps the 'for' state of alerts in ALERTS_FOR_STATE
// series (value: the Unix time the alert became active) and reads them
// back at start to restore pending and firing alerts. NovaCron keeps these
// series in the state database instead of the time-series store, so the
// state survives restarts the same way on the embedded store and on
// VictoriaMetrics (which cannot be read back through a storage.Queryable).

// alertForStateMetric is the rule manager's series of alert activation times.
const alertForStateMetric = "ALERTS_FOR_STATE"

// forStateAppendable passes every sample to next (nil: discard) and keeps
// ALERTS_FOR_STATE samples in the state database on Commit.
type forStateAppendable struct {
	next   storage.AppendableV2
	st     *store
	logger *slog.Logger
	m      *metrics
}

func (f *forStateAppendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	a := &forStateAppender{f: f, ctx: ctx}
	if f.next != nil {
		a.next = f.next.AppenderV2(ctx)
	}
	return a
}

type forStateSample struct {
	ls labels.Labels
	t  int64
	v  float64
}

type forStateAppender struct {
	f       *forStateAppendable
	ctx     context.Context
	next    storage.AppenderV2
	samples []forStateSample
}

func (a *forStateAppender) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AOptions) (storage.SeriesRef, error) {
	if ls.Get(labels.MetricName) == alertForStateMetric && h == nil && fh == nil {
		a.samples = append(a.samples, forStateSample{ls: ls.Copy(), t: t, v: v})
	}
	if a.next == nil {
		return ref, nil
	}
	return a.next.Append(ref, ls, st, t, v, h, fh, opts)
}

func (a *forStateAppender) Commit() error {
	var err error
	if a.next != nil {
		err = a.next.Commit()
	}
	if len(a.samples) == 0 {
		return err
	}
	if serr := a.f.write(a.ctx, a.samples); serr != nil {
		a.f.m.stateErrors.Inc()
		a.f.logger.Warn("saving alert 'for' state failed", "err", serr)
		err = errors.Join(err, serr)
	}
	return err
}

func (a *forStateAppender) Rollback() error {
	a.samples = nil
	if a.next != nil {
		return a.next.Rollback()
	}
	return nil
}

func (f *forStateAppendable) write(ctx context.Context, samples []forStateSample) error {
	return f.st.db.InTx(ctx, func(tx *statedb.Tx) error {
		for _, s := range samples {
			key := s.ls.String()
			if value.IsStaleNaN(s.v) || math.IsNaN(s.v) {
				if _, err := tx.Exec(ctx, `DELETE FROM alerting_for_state WHERE series = ?`, key); err != nil {
					return fmt.Errorf("delete for state: %w", err)
				}
				continue
			}
			if _, err := tx.Exec(ctx, `INSERT INTO alerting_for_state (series, labels, active_at, ts) VALUES (?, ?, ?, ?)
ON CONFLICT (series) DO UPDATE SET active_at = excluded.active_at, ts = excluded.ts`,
				key, encodeMap(s.ls.Map()), int64(s.v), s.t); err != nil {
				return fmt.Errorf("save for state: %w", err)
			}
		}
		return nil
	})
}

// forStateQueryable serves the stored ALERTS_FOR_STATE series to the rule
// manager's restore.
type forStateQueryable struct{ st *store }

func (q forStateQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &storage.MockQuerier{SelectMockFunction: func(_ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
		return q.selectSeries(context.Background(), mint, maxt, ms)
	}}, nil
}

func (q forStateQueryable) selectSeries(ctx context.Context, mint, maxt int64, ms []*labels.Matcher) storage.SeriesSet {
	rows, err := q.st.db.Query(ctx, `SELECT labels, active_at, ts FROM alerting_for_state WHERE ts >= ? AND ts <= ?`, mint, maxt)
	if err != nil {
		return storage.ErrSeriesSet(fmt.Errorf("read for state: %w", err))
	}
	defer rows.Close()
	var out []storage.Series
	for rows.Next() {
		var ls string
		var activeAt, ts int64
		if err := rows.Scan(&ls, &activeAt, &ts); err != nil {
			return storage.ErrSeriesSet(fmt.Errorf("read for state: %w", err))
		}
		m, err := decodeMap(ls)
		if err != nil {
			return storage.ErrSeriesSet(err)
		}
		lset := labels.FromMap(m)
		ok := true
		for _, mt := range ms {
			if !mt.Matches(lset.Get(mt.Name)) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, storage.NewListSeries(lset, []chunks.Sample{fsample{t: ts, f: float64(activeAt)}}))
		}
	}
	if err := rows.Err(); err != nil {
		return storage.ErrSeriesSet(fmt.Errorf("read for state: %w", err))
	}
	return &sliceSeriesSet{series: out, i: -1}
}

type sliceSeriesSet struct {
	series []storage.Series
	i      int
}

func (s *sliceSeriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *sliceSeriesSet) At() storage.Series                { return s.series[s.i] }
func (s *sliceSeriesSet) Err() error                        { return nil }
func (s *sliceSeriesSet) Warnings() annotations.Annotations { return nil }

type fsample struct {
	t int64
	f float64
}

func (s fsample) T() int64                      { return s.t }
func (s fsample) ST() int64                     { return 0 }
func (s fsample) F() float64                    { return s.f }
func (s fsample) H() *histogram.Histogram       { return nil }
func (s fsample) FH() *histogram.FloatHistogram { return nil }
func (s fsample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s fsample) Copy() chunks.Sample           { return s }
