package main

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/collectors/sim"
	"github.com/novacron/novacron/internal/catalog"
	"github.com/novacron/novacron/internal/storage/prw"
	"github.com/novacron/novacron/pipeline/publish"
)

// watchSteps is how many samples of an injected series after its first
// shifted one are watched for the anomaly_opened event (the detector may
// need more than one shifted sample to score high enough).
const watchSteps = 20

// trigger is a watched sample of a shifted series: the one whose
// anomaly_opened event the latency is measured to.
type trigger struct {
	series string
	t      int64 // sample time, ms
	// after is the sample's index since the shift began (0: the first
	// shifted sample).
	after int
	// handoff is when the record was handed to the Kafka producer (unix
	// ns); ack when the broker acknowledged it. Set by the pacer and the
	// producer's callback.
	handoff atomic.Int64
	ack     atomic.Int64
	phase   atomic.Pointer[string]
	// injection is the shift this sample belongs to.
	injection *injection
}

// injection is one level shift put on one series.
type injection struct {
	series  string
	firstT  int64
	matched atomic.Bool
	phase   atomic.Pointer[string]
}

// step is one simulated step encoded as records.
type step struct {
	recs    []*kgo.Record
	watched map[int]*trigger
}

// generator turns a simulated fleet into records, one per series as
// pipeline/publish encodes them, and injects level shifts.
type generator struct {
	fleet    *sim.Fleet
	next     time.Time
	interval time.Duration
	topic    string
	stamp    bool // add a handoff-time header (the raw peer)

	batch []novacron.Series
	// candidates are the series hashes a shift may go on, in a random
	// order; labels of each.
	candidates []uint64
	names      map[uint64]string
	nextCand   int
	// shifted maps a series hash to the step its shift began.
	shifted map[uint64]int
	stepNo  int
	acc     float64

	mu       sync.Mutex
	triggers map[string]*trigger // series@t
	injected []*injection
}

func newGenerator(vms int, start time.Time, interval time.Duration, topic string, seed uint64) (*generator, error) {
	sc := sim.NewDefaultConfig()
	sc.VMs, sc.Hosts, sc.Interval, sc.Incidents, sc.Seed = vms, max(1, vms/10), interval, nil, seed
	f, err := sim.NewFleet(*sc, start)
	if err != nil {
		return nil, err
	}
	return &generator{fleet: f, next: start, interval: interval, topic: topic, names: map[uint64]string{},
		shifted: map[uint64]int{}, triggers: map[string]*trigger{}}, nil
}

// seriesPerStep returns the number of series (records) of one step.
func (g *generator) seriesPerStep() int {
	if len(g.batch) == 0 {
		return 0
	}
	return len(g.batch)
}

func triggerKey(series string, t int64) string { return series + "@" + strconv.FormatInt(t, 10) }

// step makes the next step's records, starting shifts on inject new
// series (VM CPU and memory usage ratios: the value becomes 10 × itself +
// 1, far outside any band those ratios have).
func (g *generator) step(inject float64) *step {
	t := g.next
	g.next = g.next.Add(g.interval)
	g.batch = g.fleet.AppendStep(g.batch[:0], t)
	if g.candidates == nil {
		for i := range g.batch {
			ls := g.batch[i].Labels
			switch ls.Get(novacron.MetricNameLabel) {
			case catalog.VMCPUUsageRatio, catalog.VMMemoryUsageRatio:
				h := ls.Hash()
				g.candidates = append(g.candidates, h)
				g.names[h] = ls.String()
			}
		}
		rng := rand.New(rand.NewPCG(7, 11))
		rng.Shuffle(len(g.candidates), func(i, j int) { g.candidates[i], g.candidates[j] = g.candidates[j], g.candidates[i] })
	}
	g.acc += inject
	for ; g.acc >= 1 && g.nextCand < len(g.candidates); g.acc-- {
		g.shifted[g.candidates[g.nextCand]] = g.stepNo
		g.nextCand++
	}
	st := &step{recs: make([]*kgo.Record, len(g.batch))}
	tms := t.UnixMilli()
	for i := range g.batch {
		s := &g.batch[i]
		h := s.Labels.Hash()
		if began, ok := g.shifted[h]; ok {
			for j := range s.Samples {
				s.Samples[j].V = 10*s.Samples[j].V + 1
			}
			if after := g.stepNo - began; after < watchSteps {
				tr := &trigger{series: g.names[h], t: tms, after: after}
				g.mu.Lock()
				if after == 0 {
					in := &injection{series: tr.series, firstT: tms}
					g.injected = append(g.injected, in)
					tr.injection = in
				} else {
					tr.injection = g.triggers[triggerKey(tr.series, tms-int64(after)*g.interval.Milliseconds())].injection
				}
				g.triggers[triggerKey(tr.series, tms)] = tr
				g.mu.Unlock()
				if st.watched == nil {
					st.watched = map[int]*trigger{}
				}
				st.watched[i] = tr
			}
		}
		val, _ := prw.AppendWriteRequest(nil, g.batch[i:i+1]) // the fleet's series are valid
		st.recs[i] = &kgo.Record{Topic: g.topic, Key: publish.SeriesKey(s.Labels), Value: val}
	}
	g.stepNo++
	return st
}

// lookup returns the watched sample of series at t.
func (g *generator) lookup(series string, t int64) *trigger {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.triggers[triggerKey(series, t)]
}

// injections returns every shift begun so far.
func (g *generator) injections() []*injection {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*injection(nil), g.injected...)
}

// producer hands records to a franz-go client asynchronously, from one
// goroutine, so each series' records stay in order.
type producer struct {
	cl       *kgo.Client
	handed   atomic.Int64
	acked    atomic.Int64
	failed   atomic.Int64
	lastErr  atomic.Pointer[string]
	pending  *step
	stampHdr bool
}

// phaseSpec is one paced section of the load.
type phaseSpec struct {
	name string
	// rate is samples (records) per second; 0 means as fast as the
	// producer accepts them.
	rate float64
	// duration ends the phase at the first step boundary after it; steps,
	// when positive, ends it after that many steps instead.
	duration time.Duration
	steps    int
	// injectPerSecond is the shifts begun per second of the phase.
	injectPerSecond float64
}

// phaseLoad is what the pacer did in a phase.
type phaseLoad struct {
	Handed  int64   `json:"records_handed"`
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"handed_per_second"`
	Steps   int     `json:"steps"`
	// Injected is the shifts begun in the phase.
	Injected int `json:"injected"`
}

// run paces one phase: each step's records are handed to the producer in
// slices of 5 ms worth at the phase's rate; generation of the next step
// overlaps with pacing of the current one. A producer that cannot keep up
// (its buffer full) slows the phase down: the handed rate shows it.
func (p *producer) run(ctx context.Context, g *generator, ph phaseSpec) phaseLoad {
	var res phaseLoad
	perStep := func() float64 {
		n := g.seriesPerStep()
		if ph.rate <= 0 || n == 0 {
			return 0
		}
		return ph.injectPerSecond * float64(n) / ph.rate
	}
	cur := p.pending
	if cur == nil {
		cur = g.step(perStep())
	}
	p.pending = nil
	injectedBefore := len(g.injections())
	chunk := 1000
	if ph.rate > 0 {
		chunk = max(50, int(ph.rate/200))
	}
	name := ph.name
	start := time.Now()
	var sent int64
	cb := func(r *kgo.Record, err error) {
		if err != nil {
			p.failed.Add(1)
			s := err.Error()
			p.lastErr.Store(&s)
			return
		}
		p.acked.Add(1)
	}
	for ctx.Err() == nil {
		nextCh := make(chan *step, 1)
		inj := perStep()
		go func() { nextCh <- g.step(inj) }()
		for off := 0; off < len(cur.recs) && ctx.Err() == nil; off += chunk {
			end := min(off+chunk, len(cur.recs))
			if ph.rate > 0 {
				due := start.Add(time.Duration(float64(sent) / ph.rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
			}
			now := time.Now().UnixNano()
			for i := off; i < end; i++ {
				r := cur.recs[i]
				if p.stampHdr {
					r.Headers = []kgo.RecordHeader{{Key: "handoff", Value: binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))}}
				}
				if tr := cur.watched[i]; tr != nil {
					tr.handoff.Store(now)
					tr.phase.Store(&name)
					if tr.after == 0 {
						tr.injection.phase.Store(&name)
					}
					p.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
						if err == nil {
							tr.ack.Store(time.Now().UnixNano())
						}
						cb(r, err)
					})
				} else {
					p.cl.Produce(ctx, r, cb)
				}
			}
			sent += int64(end - off)
		}
		res.Steps++
		next := <-nextCh
		if (ph.steps > 0 && res.Steps >= ph.steps) || (ph.steps <= 0 && time.Since(start) >= ph.duration) {
			p.pending = next
			break
		}
		cur = next
	}
	res.Handed = sent
	res.Seconds = time.Since(start).Seconds()
	if res.Seconds > 0 {
		res.Rate = float64(sent) / res.Seconds
	}
	p.handed.Add(sent)
	res.Injected = len(g.injections()) - injectedBefore
	return res
}
