package analytics

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/sim"
	"github.com/novacron/novacron/internal/bus/bustest"
	"github.com/novacron/novacron/internal/bus/kafkabus"
	"github.com/novacron/novacron/internal/bus/membus"
	"github.com/novacron/novacron/internal/testserver"
	"github.com/novacron/novacron/pipeline/analytics/checkpoint"
	"github.com/novacron/novacron/pipeline/publish"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.StopAll()
	os.Exit(code)
}

// recordingWriter is an Enqueuer that keeps what it is given.
type recordingWriter struct {
	mu      sync.Mutex
	samples int
}

func (w *recordingWriter) Enqueue(_ context.Context, batch []novacron.Series, done func(error)) error {
	w.mu.Lock()
	w.samples += len(batch)
	w.mu.Unlock()
	done(nil)
	return nil
}

func TestDefaultConfigValidates(t *testing.T) {
	cfg := NewDefaultConfig()
	require.NoError(t, cfg.Validate())
}

func TestShutdownWithoutStart(t *testing.T) {
	b, err := membus.New(membus.NewDefaultConfig(), membus.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	s, err := New(NewDefaultConfig(), Settings{}, b, &recordingWriter{}, Topics{Samples: "s", Events: "e"})
	require.NoError(t, err)
	require.NoError(t, s.Shutdown(context.Background()))
	require.NoError(t, s.Shutdown(context.Background()))
}

// continuityFixture publishes a simulated fleet's samples in phases and
// compares the events the stage publishes with those of one uninterrupted
// Processor over the same data.
type continuityFixture struct {
	bus    novacron.Bus
	topics Topics
	store  checkpoint.Store
	cfg    Config
	fleet  *sim.Fleet
	pub    *publish.Publisher
	clock  time.Time
	want   map[string]novacron.Event
	ref    *Processor
	stages int
	log    storeLog
}

// storeLog records the checkpoint saves and loads of every stage.
type storeLog struct {
	mu  sync.Mutex
	ops []storeOp
}

type storeOp struct {
	who   int
	save  bool
	parts []int32
}

// loggingStore is a checkpoint.Store that logs to a storeLog.
type loggingStore struct {
	checkpoint.Store
	who int
	log *storeLog
}

func (l *loggingStore) Save(ctx context.Context, snaps map[int32][]byte) error {
	// Logged before the save so that a load that sees it is logged after.
	l.log.add(l.who, true, slices.Collect(maps.Keys(snaps)))
	return l.Store.Save(ctx, snaps)
}

func (l *loggingStore) Load(ctx context.Context, parts []int32) (map[int32][]byte, error) {
	m, err := l.Store.Load(ctx, parts)
	l.log.add(l.who, false, parts)
	return m, err
}

func (s *storeLog) add(who int, save bool, parts []int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops = append(s.ops, storeOp{who, save, parts})
}

// requireNoLateSaves fails when a stage saved a partition after another
// stage had loaded it: the old owner overwriting the new owner's state.
func (s *storeLog) requireNoLateSaves(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	owner := map[int32]int{}
	loads := 0
	for i, op := range s.ops {
		for _, p := range op.parts {
			if !op.save {
				owner[p] = op.who
				loads++
				continue
			}
			if o, ok := owner[p]; ok && o != op.who {
				require.Failf(t, "late checkpoint", "stage %d saved partition %d (op %d) after stage %d loaded it", op.who, p, i, o)
			}
		}
	}
	require.Positive(t, loads)
}

func newContinuityFixture(t *testing.T, b novacron.Bus, store checkpoint.Store) *continuityFixture {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	sc := sim.NewDefaultConfig()
	sc.VMs, sc.Hosts, sc.Interval = 6, 2, time.Minute
	sc.Incidents = []sim.IncidentConfig{
		{Kind: sim.IncidentCPURunaway, Target: "vm-0002", At: 20 * time.Hour, Duration: 2 * time.Hour},
		{Kind: sim.IncidentIdle, Target: "vm-0003", At: 26 * time.Hour, Duration: 3 * time.Hour},
	}
	f, err := sim.NewFleet(*sc, start)
	require.NoError(t, err)
	cfg := NewDefaultConfig()
	cfg.Group = bustest.Name(t, "analytics")
	cfg.MaxClockSkew = 0
	cfg.Checkpoint.Interval = 300 * time.Millisecond
	topics := Topics{Samples: bustest.Name(t, "samples"), Events: bustest.Name(t, "events")}
	ctx := context.Background()
	require.NoError(t, b.EnsureTopics(ctx, []novacron.TopicSpec{
		{Name: topics.Samples, Partitions: 4, ReplicationFactor: 1},
		{Name: topics.Events, Partitions: 2, ReplicationFactor: 1},
	}))
	ref, err := NewProcessor(cfg, nil, Source)
	require.NoError(t, err)
	return &continuityFixture{bus: b, topics: topics, store: store, cfg: cfg, fleet: f, clock: start,
		pub:  publish.New(b, publish.Topics{Samples: topics.Samples}, publish.Settings{}),
		want: map[string]novacron.Event{}, ref: ref}
}

// publish generates d more of the fleet, publishes it and feeds the
// reference processor.
func (f *continuityFixture) publish(t *testing.T, d time.Duration) {
	var out Output
	require.NoError(t, f.fleet.Generate(f.clock, f.clock.Add(d), time.Minute, func(batch []novacron.Series) error {
		for _, s := range batch {
			f.ref.Process(0, s, &out)
		}
		for _, e := range out.Events {
			f.want[e.ID] = e
		}
		out.Reset()
		return f.pub.ConsumeSeries(context.Background(), batch)
	}))
	f.clock = f.clock.Add(d)
}

func (f *continuityFixture) stage(t *testing.T) *Stage {
	f.stages++
	store := &loggingStore{Store: f.store, who: f.stages, log: &f.log}
	s, err := New(f.cfg, Settings{Checkpoints: store}, f.bus, &recordingWriter{}, f.topics)
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	return s
}

// eventReader follows the events topic.
type eventReader struct {
	mu   sync.Mutex
	byID map[string][]novacron.Event
	stop func()
}

func readEvents(t *testing.T, b novacron.Bus, topic string) *eventReader {
	c, err := b.Consumer(bustest.Name(t, "reader"), []string{topic})
	require.NoError(t, err)
	r := &eventReader{byID: map[string][]novacron.Event{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			recs, err := c.Poll(ctx)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				continue
			}
			for _, rec := range recs {
				var e novacron.Event
				// Incidents come from the correlator, not the models.
				if json.Unmarshal(rec.Value, &e) == nil && e.Kind != novacron.EventIncident {
					r.mu.Lock()
					r.byID[e.ID] = append(r.byID[e.ID], e)
					r.mu.Unlock()
				}
			}
			c.Ack(recs...)
		}
	}()
	r.stop = func() { cancel(); <-done; _ = c.Close(context.Background()) }
	t.Cleanup(r.stop)
	return r
}

// check waits until the published event IDs are exactly the reference's
// and every copy of an event equals the reference.
func (f *continuityFixture) check(t *testing.T, r *eventReader, timeout time.Duration) {
	t.Helper()
	require.NotEmpty(t, f.want)
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		missing, extra, dup := 0, 0, 0
		for id := range f.want {
			if len(r.byID[id]) == 0 {
				missing++
			}
		}
		for id, es := range r.byID {
			if _, ok := f.want[id]; !ok {
				extra++
			}
			dup += len(es) - 1
		}
		r.mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			if missing > 0 {
				r.mu.Lock()
				for id, e := range f.want {
					if len(r.byID[id]) == 0 {
						t.Logf("missing %s %s %s", id, e.Time, e.Summary)
					}
				}
				r.mu.Unlock()
			}
			require.Zero(t, missing, "events of the reference run never published")
			require.Zero(t, extra, "events the reference run does not have (state discontinuity)")
			t.Logf("%d events, %d re-delivered copies", len(f.want), dup)
			r.mu.Lock()
			defer r.mu.Unlock()
			for id, es := range r.byID {
				for _, e := range es {
					w := f.want[id]
					require.Equal(t, w.Kind, e.Kind, id)
					require.True(t, w.Time.Equal(e.Time), id)
					require.Equal(t, w.Summary, e.Summary, id)
				}
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runContinuity: a stage processes the first day, is restarted, a second
// processor joins (rebalance), then the first leaves; the events must be
// exactly those of an uninterrupted run.
func runContinuity(t *testing.T, b novacron.Bus, store checkpoint.Store, settle time.Duration) {
	f := newContinuityFixture(t, b, store)
	r := readEvents(t, b, f.topics.Events)
	ctx := context.Background()

	a := f.stage(t)
	f.publish(t, 20*time.Hour)
	time.Sleep(settle)
	require.NoError(t, a.Shutdown(ctx)) // restart

	a = f.stage(t)
	f.publish(t, 4*time.Hour)
	bStage := f.stage(t) // scale out: partitions rebalance
	f.publish(t, 4*time.Hour)
	time.Sleep(settle)
	require.NoError(t, a.Shutdown(ctx)) // scale in
	f.publish(t, 4*time.Hour)
	f.check(t, r, 60*time.Second)
	require.NoError(t, bStage.Shutdown(ctx))
	f.log.requireNoLateSaves(t)
}

func TestContinuityMemoryBus(t *testing.T) {
	t.Parallel()
	b, err := membus.New(membus.NewDefaultConfig(), membus.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	store, err := checkpoint.NewDir(t.TempDir())
	require.NoError(t, err)
	runContinuity(t, b, store, 500*time.Millisecond)
}

func TestContinuityKafka(t *testing.T) {
	t.Parallel()
	brokers := testserver.Kafka(t)
	cfg := kafkabus.NewDefaultConfig()
	cfg.Brokers = brokers
	cfg.SessionTimeout = 6 * time.Second
	cfg.HeartbeatInterval = 200 * time.Millisecond
	cfg.RebalanceTimeout = 10 * time.Second
	cfg.CommitInterval = 200 * time.Millisecond
	b, err := kafkabus.New(cfg, kafkabus.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	stateTopic := bustest.Name(t, "state")
	require.NoError(t, b.EnsureTopics(context.Background(), []novacron.TopicSpec{checkpoint.Spec(stateTopic, 1)}))
	runContinuity(t, b, checkpoint.NewTopic(b, stateTopic, bustest.Name(t, "ckpt")), 3*time.Second)
}
