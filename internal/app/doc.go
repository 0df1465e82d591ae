// Package app builds NovaCron's roles from the configuration and runs
// them: `novacron run` (every role in one process), `novacron collector`,
// `novacron processor` and `novacron api`. The binary's main is a thin
// wrapper around Main so end-to-end tests can run the same code.
package app
