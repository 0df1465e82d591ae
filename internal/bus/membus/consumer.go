package membus

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/bus/internal/acktrack"
	"github.com/novacron/novacron/internal/bus/internal/busmetrics"
)

// Consumer is one member of an in-process consumer group. See
// novacron.Consumer and the package documentation for the assignment.
type Consumer struct {
	bus    *Bus
	group  *group
	topics []string
	opts   novacron.ConsumerOptions
	lag    *busmetrics.LagReporter

	// listener serialises this member's rebalance callbacks.
	listener sync.Mutex

	// Guarded by bus.mu.
	closing bool // Close is running the revoke listener
	owned   map[tp]*owned
	order   []tp // owned partitions, sorted, for fair polling
	next    int  // index in order where the next Poll starts
	closed  bool
}

type owned struct {
	pos   int64 // next offset to hand out
	track acktrack.Partition
	state partState
}

// partState is where an owned partition is in a hand-over.
type partState uint8

const (
	// stateActive partitions are polled.
	stateActive partState = iota
	// stateAssigning partitions wait for the assigned listener.
	stateAssigning
	// stateRevoking partitions wait for the revoked listener; acks on
	// them still count.
	stateRevoking
)

var _ novacron.Consumer = (*Consumer)(nil)

// Consumer joins group for topics. Topics that do not exist yet are
// consumed from their first record once EnsureTopics creates them.
func (b *Bus) Consumer(groupName string, topics []string, opts ...novacron.ConsumerOption) (novacron.Consumer, error) {
	if groupName == "" || len(topics) == 0 {
		return nil, fmt.Errorf("membus consumer: group and topics are required (group=%q topics=%v)", groupName, topics)
	}
	o := novacron.ApplyConsumerOptions(opts)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, novacron.ErrBusClosed
	}
	g := b.groups[groupName]
	if g == nil {
		g = &group{name: groupName, committed: make(map[tp]int64), topics: make(map[string]bool)}
		b.groups[groupName] = g
	}
	c := &Consumer{
		bus:    b,
		group:  g,
		topics: slices.Clone(topics),
		opts:   o,
		lag:    b.metrics.NewLagReporter(groupName),
		owned:  make(map[tp]*owned),
	}
	for _, name := range topics {
		g.topics[name] = true
		if t := b.topics[name]; t != nil {
			b.subscribe(g, t, o.StartAtEnd)
		}
	}
	g.members = append(g.members, c)
	b.rebalance(g)
	return c, nil
}

// rebalance assigns the partitions of g's topics to its members: for each
// topic, partition p goes to member p mod n of the n members subscribed
// to it, in join order. b.mu must be held.
//
// A member with a rebalance listener hands a partition over in two steps,
// as Kafka's cooperative protocol does: its revoked callback runs (on a
// goroutine of its own, acks still counting) and only then may the next
// owner take the partition; the next owner's assigned callback runs
// before its Poll returns records of the partition.
func (b *Bus) rebalance(g *group) {
	want := make(map[*Consumer]map[tp]bool, len(g.members))
	for _, c := range g.members {
		want[c] = make(map[tp]bool)
	}
	for name := range g.topics {
		t := b.topics[name]
		if t == nil {
			continue
		}
		var subs []*Consumer
		for _, c := range g.members {
			if slices.Contains(c.topics, name) && !c.closing {
				subs = append(subs, c)
			}
		}
		if len(subs) == 0 {
			continue
		}
		for i := range t.parts {
			want[subs[i%len(subs)]][tp{name, int32(i)}] = true
		}
	}
	held := make(map[tp]*Consumer)
	revoke := make(map[*Consumer]map[string][]int32)
	for _, c := range g.members {
		w := want[c]
		for k, st := range c.owned {
			if !w[k] && st.state == stateActive && !c.closing {
				if c.opts.Revoked == nil {
					delete(c.owned, k) // later acks are ignored
					continue
				}
				st.state = stateRevoking
				if revoke[c] == nil {
					revoke[c] = make(map[string][]int32)
				}
				revoke[c][k.topic] = append(revoke[c][k.topic], k.partition)
			}
			if c.owned[k] != nil {
				held[k] = c
			}
		}
	}
	assign := make(map[*Consumer]map[string][]int32)
	for _, c := range g.members {
		for k := range want[c] {
			if h := held[k]; h != nil && h != c {
				continue // the old owner's revoke is still running
			}
			if c.owned[k] != nil {
				continue
			}
			st := &owned{pos: g.committed[k]}
			if c.opts.Assigned != nil {
				st.state = stateAssigning
				if assign[c] == nil {
					assign[c] = make(map[string][]int32)
				}
				assign[c][k.topic] = append(assign[c][k.topic], k.partition)
			}
			c.owned[k] = st
		}
		c.order = c.order[:0]
		for k := range c.owned {
			c.order = append(c.order, k)
		}
		slices.SortFunc(c.order, func(a, b tp) int {
			return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
		})
		c.next = 0
		c.lag.Set(c.lagLocked())
	}
	for c, parts := range revoke {
		go b.handOver(g, c, c.opts.Revoked, parts, stateRevoking)
	}
	for c, parts := range assign {
		go b.handOver(g, c, c.opts.Assigned, parts, stateAssigning)
	}
	b.broadcast()
}

// handOver runs a rebalance listener outside the bus lock, then finishes
// the step: revoked partitions are released, assigned ones become
// pollable, and the group is rebalanced again.
func (b *Bus) handOver(g *group, c *Consumer, f func(context.Context, string, []int32), parts map[string][]int32, from partState) {
	c.listener.Lock()
	notify(context.Background(), f, parts)
	c.listener.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			k := tp{topic, p}
			st := c.owned[k]
			if st == nil || st.state != from {
				continue
			}
			if from == stateRevoking {
				delete(c.owned, k)
			} else {
				st.state = stateActive
			}
		}
	}
	if !b.closed {
		b.rebalance(g)
	}
}

// notify calls a rebalance listener once per topic, partitions sorted.
func notify(ctx context.Context, f func(context.Context, string, []int32), parts map[string][]int32) {
	if f == nil {
		return
	}
	topics := make([]string, 0, len(parts))
	for t := range parts {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		if len(parts[t]) > 0 {
			f(ctx, t, slices.Sorted(slices.Values(parts[t])))
		}
	}
}

// Poll implements novacron.Consumer. The records are copies the caller
// owns.
func (c *Consumer) Poll(ctx context.Context) ([]*novacron.Record, error) {
	b := c.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		if c.closed || c.closing || b.closed {
			return nil, novacron.ErrBusClosed
		}
		if out := c.take(); len(out) > 0 {
			return out, nil
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
			b.mu.Lock()
		case <-ctx.Done():
			b.mu.Lock()
			return nil, ctx.Err()
		}
	}
}

// take hands out up to MaxPollRecords records from the owned partitions,
// starting at a rotating partition so none starves. b.mu must be held.
func (c *Consumer) take() []*novacron.Record {
	var out []*novacron.Record
	limit := c.opts.MaxPollRecords
	n := len(c.order)
	for i := 0; i < n && len(out) < limit; i++ {
		k := c.order[(c.next+i)%n]
		st := c.owned[k]
		if st.state != stateActive {
			continue
		}
		p := c.bus.topics[k.topic].parts[k.partition]
		st.pos = max(st.pos, p.base)
		from := len(out)
		for st.pos < p.end() && len(out) < limit {
			r := p.recs[st.pos-p.base]
			st.track.Add(r.Offset, -1)
			out = append(out, copyRecord(r))
			st.pos++
		}
		if got := len(out) - from; got > 0 {
			c.bus.metrics.ConsumedRecords.WithLabelValues(k.topic).Add(float64(got))
		}
	}
	if n > 0 {
		c.next = (c.next + 1) % n
	}
	if len(out) > 0 {
		c.lag.Set(c.lagLocked())
	}
	return out
}

// Ack implements novacron.Consumer: the contiguous acknowledged prefix of
// each partition is committed at once, which may free space for blocked
// producers.
func (c *Consumer) Ack(recs ...*novacron.Record) {
	b := c.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.closed {
		return
	}
	advanced := false
	for _, r := range recs {
		k := tp{r.Topic, r.Partition}
		st := c.owned[k]
		if st == nil || !st.track.Ack(r.Offset) {
			continue
		}
		off, _, _ := st.track.Committable()
		if off > c.group.committed[k] {
			c.group.committed[k] = off
			if t := b.topics[k.topic]; t != nil {
				b.trim(t, k.partition)
			}
			advanced = true
		}
	}
	if advanced {
		c.lag.Set(c.lagLocked())
		b.broadcast()
	}
}

// Lag implements novacron.Consumer: records in owned partitions past the
// group's committed offsets.
func (c *Consumer) Lag() int64 {
	c.bus.mu.Lock()
	defer c.bus.mu.Unlock()
	return c.lagLocked()
}

func (c *Consumer) lagLocked() int64 {
	var lag int64
	for k := range c.owned {
		if t := c.bus.topics[k.topic]; t != nil {
			lag += max(t.parts[k.partition].end()-c.group.committed[k], 0)
		}
	}
	return lag
}

// Close leaves the group; what was acknowledged is already committed.
// A rebalance listener is told of the revoke of every partition still
// owned first (its acks count). The partitions go to the remaining
// members. Close is idempotent.
func (c *Consumer) Close(ctx context.Context) error {
	b := c.bus
	b.mu.Lock()
	if c.closed || c.closing {
		b.mu.Unlock()
		return nil
	}
	if c.opts.Revoked != nil {
		c.closing = true
		parts := map[string][]int32{}
		for k, st := range c.owned {
			if st.state == stateActive {
				parts[k.topic] = append(parts[k.topic], k.partition)
			}
		}
		b.mu.Unlock()
		c.listener.Lock()
		notify(ctx, c.opts.Revoked, parts)
		c.listener.Unlock()
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	c.closed = true
	c.group.members = slices.DeleteFunc(c.group.members, func(m *Consumer) bool { return m == c })
	clear(c.owned)
	c.order = nil
	c.lag.Clear()
	b.rebalance(c.group)
	return nil
}
