// Package sim is a simulated fleet of hypervisor hosts and VMs: a collector
// at the start of the pipeline that needs no infrastructure, for demos,
// tests, benchmarks and model evaluation.
//
// It has two layers:
//
//   - Fleet, the pure model. Seeded and deterministic: given a Config, a
//     start time, the simulated times passed to Step and the actions applied
//     between steps, its output is always the same. It never reads the
//     clock. VMs have personalities (web, batch, db, idle) with daily and
//     weekly cycles, slow trends and noise; scheduled incidents (cpu_runaway,
//     memory_leak, noisy_neighbor, disk_fill, idle) shift their metrics in
//     known windows (Fleet.Incidents is the ground truth). Fleet implements
//     novacron.Driver, so the actuator can start, stop, reboot, resize and
//     migrate VMs and see the metrics respond. Generate backfills days of
//     data quickly.
//   - Collector, the component. It steps the fleet on a ticker, interval of
//     simulated time every interval/speed of real time, and delivers
//     series, inventory snapshots and VM lifecycle events to a novacron.Sink.
//
// Every series is in the catalogue (docs/metrics.md, internal/catalog) with
// provider="sim". Series labels are built once per VM and shared between
// batches: consumers must treat Labels as read-only.
package sim
