package novacron

import "context"

// Component is the lifecycle every collector, processor, sink and driver
// shares.
//
// Start returns quickly; background work runs on its own context. Shutdown
// cancels that work and flushes buffers within ctx's deadline; it is safe
// to call without Start and to call more than once.
type Component interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// SeriesConsumer accepts batches of series. The callee owns the slice and
// everything it points to once Consume is called; the caller must not
// touch it again. Consume returns when the batch is durably accepted (for a
// bus: acknowledged by the broker), or with an error.
type SeriesConsumer interface {
	ConsumeSeries(ctx context.Context, batch []Series) error
}

// InventoryConsumer accepts inventory snapshots.
type InventoryConsumer interface {
	ConsumeInventory(ctx context.Context, inv Inventory) error
}

// EventConsumer accepts events.
type EventConsumer interface {
	ConsumeEvents(ctx context.Context, events []Event) error
}

// Sink is where a collector delivers what it collects.
type Sink interface {
	SeriesConsumer
	InventoryConsumer
	EventConsumer
}

// Collector reads metrics and inventory from one source and delivers them
// to a Sink given at construction.
type Collector interface {
	Component
}
