package main

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// rawReader is the peer: a plain franz-go consumer (no group, no
// decoding) of the records the pacer stamped with their handoff time,
// measuring the bus' own produce-to-consume latency.
type rawReader struct {
	cl   *kgo.Client
	mu   sync.Mutex
	lats []time.Duration
	all  int // records read, stamped or not
	done chan struct{}
}

func newRawReader(brokers []string, topic string) (*rawReader, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return nil, err
	}
	return &rawReader{cl: cl, done: make(chan struct{})}, nil
}

func (r *rawReader) run(ctx context.Context) {
	defer close(r.done)
	for ctx.Err() == nil {
		fs := r.cl.PollFetches(ctx)
		now := time.Now()
		var lats []time.Duration
		n := 0
		fs.EachRecord(func(rec *kgo.Record) {
			n++
			for _, h := range rec.Headers {
				if h.Key == "handoff" && len(h.Value) == 8 {
					lats = append(lats, now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(h.Value)))))
				}
			}
		})
		r.mu.Lock()
		r.lats = append(r.lats, lats...)
		r.all += n
		r.mu.Unlock()
	}
}

func (r *rawReader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.lats)
}

func (r *rawReader) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all
}

func (r *rawReader) latencies() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.lats...)
}
