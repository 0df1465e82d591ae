package statedb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Migrations is one component's schema: numbered SQL files in FS, applied
// in order, each once, each in its own transaction.
//
// A file is named NNNN_description.sql (portable SQL) or
// NNNN_description.<driver>.sql ("sqlite" or "postgres") when the two
// need different statements; a version then needs a file for each driver
// (or one portable file). Versions start at 1 and must not skip; a
// released file must never change. Statements run with Exec, several per
// file.
type Migrations struct {
	// Component names the schema's owner ("alerting", "actuator"); it
	// keys the applied versions, so it must never change.
	Component string
	// FS holds the files, at its root (use fs.Sub for a subdirectory).
	FS fs.FS
}

// Migration is one parsed migration file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

var migrationName = regexp.MustCompile(`^(\d+)_([a-z0-9_]+?)(?:\.(sqlite|postgres))?\.sql$`)

// ErrSchemaTooNew is returned by Migrate when the database records a
// version of a component that its files do not have: a newer release
// migrated it, and this one must not run against it.
var ErrSchemaTooNew = errors.New("database schema is newer than this release")

// Load returns the migrations of ms for driver, in version order, and
// checks their names and numbering.
func (ms Migrations) Load(driver string) ([]Migration, error) {
	if ms.Component == "" || ms.FS == nil {
		return nil, errors.New("migrations need a component and a file system")
	}
	entries, err := fs.ReadDir(ms.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("read %s migrations: %w", ms.Component, err)
	}
	generic := map[int]Migration{}
	specific := map[int]Migration{}
	seenDriver := map[int]map[string]bool{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("%s migration %q: name must be NNNN_description.sql or NNNN_description.<sqlite|postgres>.sql", ms.Component, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v <= 0 {
			return nil, fmt.Errorf("%s migration %q: version must be >= 1", ms.Component, e.Name())
		}
		b, err := fs.ReadFile(ms.FS, e.Name())
		if err != nil {
			return nil, fmt.Errorf("read %s migration %q: %w", ms.Component, e.Name(), err)
		}
		mig := Migration{Version: v, Name: path.Base(e.Name()), SQL: string(b)}
		if m[3] == "" {
			if _, dup := generic[v]; dup {
				return nil, fmt.Errorf("%s migration version %d: two portable files", ms.Component, v)
			}
			generic[v] = mig
			continue
		}
		if seenDriver[v] == nil {
			seenDriver[v] = map[string]bool{}
		}
		if seenDriver[v][m[3]] {
			return nil, fmt.Errorf("%s migration version %d: two %s files", ms.Component, v, m[3])
		}
		seenDriver[v][m[3]] = true
		if m[3] == driver {
			specific[v] = mig
		}
	}
	var out []Migration
	versions := map[int]bool{}
	for v := range generic {
		versions[v] = true
	}
	for v := range seenDriver {
		versions[v] = true
	}
	for v := range versions {
		g, hasG := generic[v]
		s, hasS := specific[v]
		switch {
		case hasG && len(seenDriver[v]) > 0:
			return nil, fmt.Errorf("%s migration version %d: both a portable and a driver-specific file", ms.Component, v)
		case hasG:
			out = append(out, g)
		case hasS:
			out = append(out, s)
		default:
			return nil, fmt.Errorf("%s migration version %d: no file for driver %s", ms.Component, v, driver)
		}
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("%s migrations: version %d missing", ms.Component, i+1)
		}
	}
	return out, nil
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS novacron_schema_migrations (
	component  TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	name       TEXT    NOT NULL,
	applied_at BIGINT  NOT NULL,
	PRIMARY KEY (component, version)
)`

// Migrate applies the migrations of each component that the database has
// not seen yet, in order, each in a transaction with its bookkeeping row.
// On PostgreSQL a transaction-scoped advisory lock serialises replicas
// migrating at once; on SQLite the write lock does. It fails with
// ErrSchemaTooNew when the database is ahead of the files.
func (d *DB) Migrate(ctx context.Context, sets ...Migrations) error {
	// Concurrent CREATE TABLE IF NOT EXISTS races on PostgreSQL's
	// catalogue: take the migration lock first.
	if err := d.InTx(ctx, func(tx *Tx) error {
		if err := d.lock(ctx, tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, migrationsTable)
		return err
	}); err != nil {
		return fmt.Errorf("create novacron_schema_migrations: %w", err)
	}
	for _, ms := range sets {
		migs, err := ms.Load(d.driver)
		if err != nil {
			return err
		}
		var current int
		if err := d.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM novacron_schema_migrations WHERE component = ?`, ms.Component).Scan(&current); err != nil {
			return fmt.Errorf("read %s schema version: %w", ms.Component, err)
		}
		if current > len(migs) {
			return fmt.Errorf("%s schema is at version %d, this release knows %d: %w", ms.Component, current, len(migs), ErrSchemaTooNew)
		}
		for _, m := range migs[current:] {
			if err := d.apply(ctx, ms.Component, m); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *DB) apply(ctx context.Context, component string, m Migration) error {
	start := time.Now()
	applied := false
	err := d.InTx(ctx, func(tx *Tx) error {
		if err := d.lock(ctx, tx); err != nil {
			return err
		}
		// Another replica may have applied it while we waited.
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM novacron_schema_migrations WHERE component = ? AND version = ?`, component, m.Version).Scan(&n); err != nil {
			return fmt.Errorf("check %s migration %d: %w", component, m.Version, err)
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("apply %s migration %s: %w", component, m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO novacron_schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)`,
			component, m.Version, m.Name, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("record %s migration %s: %w", component, m.Name, err)
		}
		applied = true
		return nil
	})
	if err == nil && applied {
		d.logger.Info("schema migration applied", "schema", component, "version", m.Version, "file", m.Name, "duration", time.Since(start))
	}
	return err
}

// Version returns the newest applied migration version of component, 0
// when none.
func (d *DB) Version(ctx context.Context, component string) (int, error) {
	var v int
	err := d.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM novacron_schema_migrations WHERE component = ?`, component).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read %s schema version: %w", component, err)
	}
	return v, nil
}

// lock takes PostgreSQL's transaction-scoped migration lock; SQLite's
// immediate transactions already hold the database's write lock.
func (d *DB) lock(ctx context.Context, tx *Tx) error {
	if d.driver != DriverPostgres {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7415370501)`); err != nil {
		return fmt.Errorf("lock for migration: %w", err)
	}
	return nil
}
