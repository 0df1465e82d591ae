package tsdbstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	promstorage "github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/prw"
)

// Reasons a sample is skipped, the values of the reason label of
// novacron_tsdb_samples_rejected_total.
const (
	reasonOutOfOrder = "out_of_order"
	reasonTooOld     = "too_old"
	reasonDuplicate  = "duplicate_timestamp"
)

// ErrClosed is returned by Write and Ping after Shutdown.
var ErrClosed = errors.New("embedded tsdb is closed")

// Store is the embedded Prometheus TSDB with a PromQL engine over it. It
// is safe for concurrent use.
type Store struct {
	cfg    Config
	db     *tsdb.DB
	engine *promql.Engine
	parser parser.Parser
	logger *slog.Logger
	m      *metrics

	mu     sync.RWMutex // held for reading by Write, for writing by Shutdown
	closed bool
	// appendMu serialises appenders. The head creates series with IDs
	// from a counter and adds them to its postings; concurrent appenders
	// can add them out of order, and the head then sorts a postings list
	// in place while queries may be reading it (a data race in the TSDB,
	// prometheus/prometheus#15317). One appender at a time keeps IDs in
	// order.
	appendMu sync.Mutex
}

var _ storage.Writer = (*Store)(nil)

type metrics struct {
	appended prometheus.Counter
	rejected *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "novacron_tsdb_samples_appended_total",
			Help: "Samples accepted by the embedded TSDB, re-delivered identical samples included.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "novacron_tsdb_samples_rejected_total",
			Help: "Samples the embedded TSDB skipped, by reason (out_of_order, too_old, duplicate_timestamp: same time, different value).",
		}, []string{"reason"}),
	}
	for _, r := range []string{reasonOutOfOrder, reasonTooOld, reasonDuplicate} {
		m.rejected.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.appended, m.rejected)
	}
	return m
}

// Open opens (creating when missing) the TSDB under cfg.Path and builds
// the PromQL engine. The TSDB's own metrics (prometheus_tsdb_*) and the
// engine's go to set.Registerer too. Call Shutdown to close it.
func Open(cfg Config, set storage.Settings) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("embedded tsdb config: %w", err)
	}
	logger := set.LoggerOrDiscard().With("component", "tsdb")
	opts := tsdb.DefaultOptions()
	opts.RetentionDuration = cfg.Retention.Milliseconds()
	opts.OutOfOrderTimeWindow = cfg.OutOfOrderWindow.Milliseconds()
	start := time.Now()
	db, err := tsdb.Open(cfg.Path, logger, set.Registerer, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("open embedded tsdb (path %q): %w", cfg.Path, err)
	}
	logger.Info("embedded tsdb opened", "path", cfg.Path, "duration", time.Since(start))
	p := parser.NewParser(parser.Options{})
	engine := promql.NewEngine(promql.EngineOpts{
		Logger:               logger.With("component", "promql"),
		Reg:                  set.Registerer,
		MaxSamples:           cfg.QueryMaxSamples,
		Timeout:              cfg.QueryTimeout,
		LookbackDelta:        cfg.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		Parser:               p,
	})
	return &Store{cfg: cfg, db: db, engine: engine, parser: p, logger: logger, m: newMetrics(set.Registerer)}, nil
}

// Start does nothing: Open already made the store ready. It exists so the
// store has the component lifecycle.
func (s *Store) Start(context.Context) error { return nil }

// Shutdown closes the engine and the TSDB, flushing the head to the WAL.
// It is safe to call more than once; Write fails with ErrClosed after it.
func (s *Store) Shutdown(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	start := time.Now()
	err := errors.Join(s.engine.Close(), s.db.Close())
	s.logger.Info("embedded tsdb closed", "duration", time.Since(start), "err", err)
	return err
}

// Write appends batch in one transaction and commits it to the WAL.
//
// Invalid series (prw.Validate) fail the whole batch with a permanent
// error. Single samples the TSDB cannot take are skipped and counted in
// novacron_tsdb_samples_rejected_total rather than failing the batch, as
// re-trying would not help: samples older than their series' newest
// beyond out_of_order_window, and samples whose timestamp is already
// stored with another value. A sample already stored with the same
// timestamp and value is accepted silently, so re-delivered batches
// succeed.
func (s *Store) Write(ctx context.Context, batch []novacron.Series) error {
	if len(batch) == 0 {
		return nil
	}
	if err := prw.Validate(batch); err != nil {
		return novacron.Permanent(err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	app := s.db.AppenderV2(ctx)
	var b labels.ScratchBuilder
	appended := 0
	var outOfOrder, tooOld, dup int
	for _, series := range batch {
		b.Reset()
		for _, l := range series.Labels {
			b.Add(l.Name, l.Value)
		}
		b.Sort()
		ls := b.Labels()
		var ref promstorage.SeriesRef
		for _, smp := range series.Samples {
			r, err := app.Append(ref, ls, 0, smp.T, smp.V, nil, nil, promstorage.AOptions{})
			switch {
			case err == nil:
				ref = r
				appended++
			case errors.Is(err, promstorage.ErrOutOfOrderSample), errors.Is(err, promstorage.ErrOutOfBounds):
				outOfOrder++
			case errors.Is(err, promstorage.ErrTooOldSample):
				tooOld++
			case errors.Is(err, promstorage.ErrDuplicateSampleForTimestamp):
				dup++
			default:
				_ = app.Rollback()
				return fmt.Errorf("append to embedded tsdb: %w", err)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		_ = app.Rollback()
		return err
	}
	if err := app.Commit(); err != nil {
		return fmt.Errorf("commit to embedded tsdb: %w", err)
	}
	s.m.appended.Add(float64(appended))
	if outOfOrder > 0 {
		s.m.rejected.WithLabelValues(reasonOutOfOrder).Add(float64(outOfOrder))
	}
	if tooOld > 0 {
		s.m.rejected.WithLabelValues(reasonTooOld).Add(float64(tooOld))
	}
	if dup > 0 {
		s.m.rejected.WithLabelValues(reasonDuplicate).Add(float64(dup))
	}
	return nil
}

// Appendable returns the TSDB as an AppendableV2 for other writers in
// the process (the rule manager's recording rules and ALERTS series).
// Each appender holds the store's append lock from creation until Commit
// or Rollback, so it never runs beside Write (see appendMu).
func (s *Store) Appendable() promstorage.AppendableV2 { return lockedAppendable{s} }

type lockedAppendable struct{ s *Store }

func (l lockedAppendable) AppenderV2(ctx context.Context) promstorage.AppenderV2 {
	l.s.appendMu.Lock()
	return &lockedAppender{AppenderV2: l.s.db.AppenderV2(ctx), mu: &l.s.appendMu}
}

type lockedAppender struct {
	promstorage.AppenderV2
	mu   *sync.Mutex
	once sync.Once
}

func (a *lockedAppender) Commit() error {
	defer a.once.Do(a.mu.Unlock)
	return a.AppenderV2.Commit()
}

func (a *lockedAppender) Rollback() error {
	defer a.once.Do(a.mu.Unlock)
	return a.AppenderV2.Rollback()
}

// Ping reports ErrClosed after Shutdown and nil otherwise.
func (s *Store) Ping(context.Context) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// Queryable returns the TSDB for reading, for the PromQL engine and the
// series and label endpoints. Queriers it returns must be closed.
func (s *Store) Queryable() promstorage.Queryable { return s.db }

// Engine returns the PromQL engine configured for this store.
func (s *Store) Engine() *promql.Engine { return s.engine }

// Parser returns the PromQL parser the engine uses, for parsing match[]
// selectors the same way.
func (s *Store) Parser() parser.Parser { return s.parser }

// DB returns the underlying TSDB, for tests and tools (snapshots, stats).
func (s *Store) DB() *tsdb.DB { return s.db }
