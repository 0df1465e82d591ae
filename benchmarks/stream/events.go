package main

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/novacron/novacron"
)

// match is one anomaly_opened event joined to its triggering sample.
type match struct {
	phase string
	// latency is from the record's handoff to the producer to the event
	// read back; stage from the handoff to the event's record timestamp
	// (when the stage produced it, ms precision); ackDelay from the
	// handoff to the broker's acknowledgement of the sample's record.
	latency, stage, ackDelay time.Duration
	// after is the triggering sample's index since its shift began.
	after int
}

// eventReader reads the events topic from its start and joins each
// anomaly_opened event to the watched sample it reports.
type eventReader struct {
	cl  *kgo.Client
	gen *generator

	mu        sync.Mutex
	matches   []match
	kinds     map[string]int
	unmatched int // anomaly_opened events on no watched sample
	dupes     int
	done      chan struct{}
}

func newEventReader(brokers []string, topic string, gen *generator) (*eventReader, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return nil, err
	}
	return &eventReader{cl: cl, gen: gen, kinds: map[string]int{}, done: make(chan struct{})}, nil
}

func (r *eventReader) run(ctx context.Context) {
	defer close(r.done)
	for ctx.Err() == nil {
		fs := r.cl.PollFetches(ctx)
		now := time.Now()
		fs.EachRecord(func(rec *kgo.Record) {
			var e novacron.Event
			if json.Unmarshal(rec.Value, &e) != nil {
				return
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			r.kinds[e.Kind]++
			if e.Kind != novacron.EventAnomalyOpened {
				return
			}
			series, _ := e.Details["series"].(string)
			tr := r.gen.lookup(series, e.Time.UnixMilli())
			if tr == nil || tr.handoff.Load() == 0 {
				r.unmatched++
				return
			}
			if tr.injection.matched.Swap(true) {
				r.dupes++
				return
			}
			h := time.Unix(0, tr.handoff.Load())
			m := match{latency: now.Sub(h), stage: rec.Timestamp.Sub(h), after: tr.after}
			if a := tr.ack.Load(); a > 0 {
				m.ackDelay = time.Unix(0, a).Sub(h)
			}
			if p := tr.phase.Load(); p != nil {
				m.phase = *p
			}
			r.matches = append(r.matches, m)
		})
	}
}

func (r *eventReader) close() {
	r.cl.Close()
}

// snapshot returns the matches so far and the counts.
func (r *eventReader) snapshot() (ms []match, kinds map[string]int, unmatched, dupes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	kinds = map[string]int{}
	for k, v := range r.kinds {
		kinds[k] = v
	}
	return append([]match(nil), r.matches...), kinds, r.unmatched, r.dupes
}
