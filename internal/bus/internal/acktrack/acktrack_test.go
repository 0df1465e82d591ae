package acktrack

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPartition(t *testing.T) {
	var p Partition
	_, _, ok := p.Committable()
	require.False(t, ok, "nothing added yet")

	for _, o := range []int64{10, 11, 12, 15, 16} { // 13, 14: compacted away
		require.True(t, p.Add(o, 3))
	}
	require.False(t, p.Add(12, 3), "duplicate offset")
	next, _, ok := p.Committable()
	require.True(t, ok)
	require.Equal(t, int64(10), next, "nothing acked: commit where polling started")

	require.False(t, p.Ack(11), "ack after a gap does not advance")
	require.False(t, p.Ack(99), "unknown offset")
	require.True(t, p.Ack(10))
	next, epoch, _ := p.Committable()
	require.Equal(t, int64(12), next, "10 and 11 acked")
	require.Equal(t, int32(3), epoch)

	require.False(t, p.Ack(15))
	require.True(t, p.Ack(12))
	next, _, _ = p.Committable()
	require.Equal(t, int64(16), next, "offsets missing from the log do not block")
	require.Equal(t, 1, p.Pending())
	require.True(t, p.Ack(16))
	require.False(t, p.Ack(16), "acking twice is harmless")
	next, _, _ = p.Committable()
	require.Equal(t, int64(17), next)
	require.Zero(t, p.Pending())
}

// TestPartitionRandom checks the committable offset against a direct
// computation for random ack orders, across compactions.
func TestPartitionRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var p Partition
	var polled []int64
	acked := map[int64]bool{}
	off := int64(100)
	for range 20 {
		n := r.IntN(3000)
		for range n {
			off += 1 + int64(r.IntN(2))
			require.True(t, p.Add(off, 0))
			polled = append(polled, off)
		}
		for range r.IntN(4000) {
			o := polled[r.IntN(len(polled))]
			acked[o] = true
			p.Ack(o)
		}
		want := polled[0]
		for _, o := range polled {
			if !acked[o] {
				want = o
				break
			}
			want = o + 1
		}
		got, _, _ := p.Committable()
		require.Equal(t, want, got)
	}
}

// BenchmarkPartition measures add+ack in order, the common case.
//
//	go test -run=^$ -bench=Partition -count 6 ./internal/bus/internal/acktrack | benchstat -
func BenchmarkPartition(b *testing.B) {
	b.ReportAllocs()
	var p Partition
	var o int64
	for b.Loop() {
		p.Add(o, 0)
		p.Ack(o)
		o++
	}
}
