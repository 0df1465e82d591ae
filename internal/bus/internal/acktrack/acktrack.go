// Package acktrack turns out-of-order acknowledgements into the offset a
// consumer may commit, for the bus implementations in internal/bus.
//
// A consumer polls the records of one partition in offset order and its
// caller acknowledges them in any order. The committable offset is the
// end of the longest prefix of polled records that are all acknowledged:
// committing anything past an unacknowledged record could lose it on a
// crash.
package acktrack

// Partition tracks the polled and acknowledged records of one partition.
// It is not safe for concurrent use.
type Partition struct {
	offsets []int64 // polled, not yet committable, in increasing order
	epochs  []int32 // leader epoch of each entry of offsets
	acked   []bool  // whether each entry of offsets is acknowledged
	head    int     // entries before head are committable and dropped

	started   bool
	next      int64 // offset to commit: every polled record below it is acked
	nextEpoch int32 // leader epoch of the last committable record
	last      int64 // highest polled offset
}

// Add records that the record at offset was handed to the caller. Offsets
// must increase; an offset at or below the last one added is ignored and
// Add returns false (the caller should drop such a duplicate).
func (p *Partition) Add(offset int64, epoch int32) bool {
	if !p.started {
		p.started = true
		p.next, p.nextEpoch = offset, -1
	} else if offset <= p.last {
		return false
	}
	p.last = offset
	p.offsets = append(p.offsets, offset)
	p.epochs = append(p.epochs, epoch)
	p.acked = append(p.acked, false)
	return true
}

// Ack marks the record at offset acknowledged and reports whether the
// committable offset advanced. Unknown offsets (never added, or already
// committable) are ignored.
func (p *Partition) Ack(offset int64) bool {
	pending := p.offsets[p.head:]
	i, ok := search(pending, offset)
	if !ok {
		return false
	}
	p.acked[p.head+i] = true
	if i != 0 {
		return false
	}
	for p.head < len(p.offsets) && p.acked[p.head] {
		p.next, p.nextEpoch = p.offsets[p.head]+1, p.epochs[p.head]
		p.head++
	}
	p.compact()
	return true
}

// Committable returns the offset to commit (the next offset to consume
// after a restart) and the leader epoch of the record before it (-1 when
// unknown). ok is false until a record has been added.
func (p *Partition) Committable() (offset int64, epoch int32, ok bool) {
	return p.next, p.nextEpoch, p.started
}

// Pending returns the number of polled records not yet committable.
func (p *Partition) Pending() int { return len(p.offsets) - p.head }

func (p *Partition) compact() {
	if p.head == len(p.offsets) {
		p.offsets, p.epochs, p.acked, p.head = p.offsets[:0], p.epochs[:0], p.acked[:0], 0
		return
	}
	if p.head < 1024 || p.head < len(p.offsets)/2 {
		return
	}
	n := copy(p.offsets, p.offsets[p.head:])
	copy(p.epochs, p.epochs[p.head:])
	copy(p.acked, p.acked[p.head:])
	p.offsets, p.epochs, p.acked, p.head = p.offsets[:n], p.epochs[:n], p.acked[:n], 0
}

// search finds offset in the increasing slice s.
func search(s []int64, offset int64) (int, bool) {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m] < offset {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(s) && s[lo] == offset
}
