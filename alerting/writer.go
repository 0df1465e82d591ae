package alerting

import (
	"context"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/novacron/novacron"
	nstorage "github.com/novacron/novacron/internal/storage"
)

// WriterAppendable adapts a storage.Writer (the remote-write sender to
// VictoriaMetrics) to the rule manager's appender, so recording rules and
// the ALERTS series reach the store. Each Commit is one Write; histogram
// samples are skipped.
func WriterAppendable(w nstorage.Writer) storage.AppendableV2 { return writerAppendable{w} }

type writerAppendable struct{ w nstorage.Writer }

func (wa writerAppendable) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &writerAppender{w: wa.w, ctx: ctx, idx: map[string]int{}}
}

type writerAppender struct {
	w     nstorage.Writer
	ctx   context.Context
	batch []novacron.Series
	idx   map[string]int
}

func (a *writerAppender) Append(ref storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AOptions) (storage.SeriesRef, error) {
	if h != nil || fh != nil {
		return ref, nil
	}
	key := ls.String()
	i, ok := a.idx[key]
	if !ok {
		s := novacron.Series{}
		ls.Range(func(l labels.Label) { s.Labels = append(s.Labels, novacron.Label{Name: l.Name, Value: l.Value}) })
		a.batch = append(a.batch, s)
		i = len(a.batch) - 1
		a.idx[key] = i
	}
	a.batch[i].Samples = append(a.batch[i].Samples, novacron.Sample{T: t, V: v})
	return ref, nil
}

func (a *writerAppender) Commit() error {
	if len(a.batch) == 0 {
		return nil
	}
	return a.w.Write(a.ctx, a.batch)
}

func (a *writerAppender) Rollback() error {
	a.batch, a.idx = nil, map[string]int{}
	return nil
}
