// Package catalog names NovaCron's VM and host metrics and their labels.
//
// It sits at the very start of the pipeline: every collector (sim,
// libvirt, vSphere, the cloud collectors) maps what its source reports into
// these names, so the stream processors, the alert rules, the dashboards
// and the API can query one vocabulary whatever the provider. The prose
// catalogue, with units, label rules and the source of each metric per
// provider, is docs/metrics.md; a test keeps the two in step.
//
// The package holds only constants and a read-only description table; it
// imports nothing but the standard library.
package catalog
