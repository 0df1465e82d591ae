// Package novacron holds NovaCron's domain types and the provider-neutral
// interfaces that connect its adapters.
//
// Data flows one way: collectors produce Series and Inventory, the bus
// carries them as Records, the pipeline stores them through a SeriesWriter,
// and the API reads them back. Every adapter package (collectors/...,
// pipeline/..., actuator/..., api/...) talks to the others only through the
// types in this package, which imports nothing but the standard library.
package novacron
