package simtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
)

func TestSinkRecordsAndRejects(t *testing.T) {
	ctx := context.Background()
	var s Sink
	require.NoError(t, s.ConsumeSeries(ctx, []novacron.Series{{}}))
	require.NoError(t, s.ConsumeInventory(ctx, novacron.Inventory{Source: "x"}))
	require.NoError(t, s.ConsumeEvents(ctx, []novacron.Event{{ID: "a"}, {ID: "b"}}))
	down := errors.New("down")
	s.SetErr(down)
	require.ErrorIs(t, s.ConsumeSeries(ctx, []novacron.Series{{}}), down)
	require.ErrorIs(t, s.ConsumeEvents(ctx, []novacron.Event{{ID: "c"}}), down)
	require.Len(t, s.Batches(), 1)
	require.Equal(t, "x", s.Inventories()[0].Source)
	require.Len(t, s.Events(), 2)
}

func TestWaitFor(t *testing.T) {
	var s Sink
	go func() {
		for range 3 {
			time.Sleep(time.Millisecond)
			_ = s.ConsumeSeries(context.Background(), nil)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.WaitFor(ctx, func(s *Sink) bool { return len(s.Batches()) == 3 }))

	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	require.ErrorIs(t, s.WaitFor(short, func(s *Sink) bool { return len(s.Batches()) > 3 }), context.DeadlineExceeded)
}
