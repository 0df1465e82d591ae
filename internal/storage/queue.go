package storage

import (
	"context"
	"sync"

	"github.com/novacron/novacron"
)

// item is one enqueued batch with its completion callback. A batch given
// to EnqueueEncoded has raw set; batch then holds its decoding once a
// Writer without WriteEncoded needed it.
type item struct {
	batch   []novacron.Series
	raw     []byte
	samples int
	done    func(error)
}

// queue is a FIFO bounded both in batches and in samples. push blocks
// while it is full and pop while it is empty; both give up when their
// context ends. Waiters are woken by closing a channel that is replaced
// after each change, so a blocked call can also select on its context.
type queue struct {
	mu         sync.Mutex
	items      []*item // items[head:] are queued, oldest first
	head       int
	samples    int
	maxItems   int
	maxSamples int // 0: unbounded
	closed     bool
	changed    chan struct{} // closed and replaced on every push, pop and close
	onChange   func(items, samples int)
}

func newQueue(maxItems, maxSamples int, onChange func(items, samples int)) *queue {
	return &queue{
		items:      make([]*item, 0, maxItems),
		maxItems:   maxItems,
		maxSamples: maxSamples,
		changed:    make(chan struct{}),
		onChange:   onChange,
	}
}

// lenLocked returns the number of queued items; q.mu must be held.
func (q *queue) lenLocked() int { return len(q.items) - q.head }

// notifyLocked wakes every waiter; q.mu must be held.
func (q *queue) notifyLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
	q.onChange(q.lenLocked(), q.samples)
}

// fitsLocked reports whether it can be admitted now. A batch larger than
// maxSamples is admitted only into an empty queue, so it cannot wait
// forever.
func (q *queue) fitsLocked(it *item) bool {
	n := q.lenLocked()
	if n >= q.maxItems {
		return false
	}
	return q.maxSamples == 0 || n == 0 || q.samples+it.samples <= q.maxSamples
}

// push adds it, blocking while the queue is full. It returns
// ErrSenderClosed once the queue is closed, or ctx.Err().
func (q *queue) push(ctx context.Context, it *item) error {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrSenderClosed
		}
		if q.fitsLocked(it) {
			if q.head > 0 && len(q.items) == cap(q.items) {
				// Slide the live items to the front instead of growing.
				n := copy(q.items, q.items[q.head:])
				clear(q.items[n:])
				q.items = q.items[:n]
				q.head = 0
			}
			q.items = append(q.items, it)
			q.samples += it.samples
			q.notifyLocked()
			q.mu.Unlock()
			return nil
		}
		ch := q.changed
		q.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// pop removes the oldest item, blocking while the queue is empty. It
// returns false when the queue is closed and empty, or ctx ends.
func (q *queue) pop(ctx context.Context) (*item, bool) {
	for {
		q.mu.Lock()
		if q.lenLocked() > 0 {
			it := q.items[q.head]
			q.items[q.head] = nil
			q.head++
			if q.head == len(q.items) {
				q.items = q.items[:0]
				q.head = 0
			}
			q.samples -= it.samples
			q.notifyLocked()
			q.mu.Unlock()
			return it, true
		}
		if q.closed {
			q.mu.Unlock()
			return nil, false
		}
		ch := q.changed
		q.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// close refuses further pushes; queued items can still be popped.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		q.notifyLocked()
	}
}

// drain removes and returns every queued item.
func (q *queue) drain() []*item {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := append([]*item(nil), q.items[q.head:]...)
	clear(q.items)
	q.items = q.items[:0]
	q.head = 0
	q.samples = 0
	q.notifyLocked()
	return out
}
