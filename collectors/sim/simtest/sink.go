// Package simtest holds test kits for collectors: a Sink that records what
// a collector delivers, so tests can assert on it.
package simtest

import (
	"context"
	"sync"

	novacron "github.com/novacron/novacron"
)

// Sink records every batch, inventory and event batch it is given. It is
// safe for concurrent use. The zero value is ready.
type Sink struct {
	mu          sync.Mutex
	batches     [][]novacron.Series
	inventories []novacron.Inventory
	events      []novacron.Event
	err         error
	changed     chan struct{}
}

var _ novacron.Sink = (*Sink)(nil)

// SetErr makes every Consume call return err (nil to accept again).
// Rejected deliveries are not recorded.
func (s *Sink) SetErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

// ConsumeSeries records the batch.
func (s *Sink) ConsumeSeries(_ context.Context, batch []novacron.Series) error {
	return s.record(func() { s.batches = append(s.batches, batch) })
}

// ConsumeInventory records the snapshot.
func (s *Sink) ConsumeInventory(_ context.Context, inv novacron.Inventory) error {
	return s.record(func() { s.inventories = append(s.inventories, inv) })
}

// ConsumeEvents records the events.
func (s *Sink) ConsumeEvents(_ context.Context, events []novacron.Event) error {
	return s.record(func() { s.events = append(s.events, events...) })
}

func (s *Sink) record(add func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	add()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return nil
}

// Batches returns the recorded series batches, oldest first.
func (s *Sink) Batches() [][]novacron.Series {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]novacron.Series(nil), s.batches...)
}

// Inventories returns the recorded inventory snapshots, oldest first.
func (s *Sink) Inventories() []novacron.Inventory {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]novacron.Inventory(nil), s.inventories...)
}

// Events returns the recorded events, oldest first.
func (s *Sink) Events() []novacron.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]novacron.Event(nil), s.events...)
}

// WaitFor blocks until cond, called after each recorded delivery (and
// once at the start), returns true, or until ctx is done, when it returns
// ctx.Err().
func (s *Sink) WaitFor(ctx context.Context, cond func(*Sink) bool) error {
	for {
		if cond(s) {
			return nil
		}
		s.mu.Lock()
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		ch := s.changed
		s.mu.Unlock()
		if cond(s) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
