// Package statedb is NovaCron's state database: the small relational store
// where components keep what must survive a restart and be shared between
// replicas (alert state and history, silences, thresholds, and later the
// actuator's actions). It sits beside the time-series store, not in the
// metrics path: the pipeline never writes here.
//
// SQLite (pure Go, modernc.org/sqlite) under the data directory is the
// embedded default; PostgreSQL (pgx) is used when configured, for split
// roles and several replicas.
//
// Each component brings its own schema as an embedded fs.FS of numbered
// SQL files (Migrations) and applies it with DB.Migrate at start. Versions
// are tracked per component in the novacron_schema_migrations table, so
// components evolve their schemas independently. Queries are written with
// "?" placeholders; DB rewrites them for PostgreSQL.
package statedb
