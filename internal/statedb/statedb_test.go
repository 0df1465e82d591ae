package statedb_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron/internal/confutil"
	"github.com/novacron/novacron/internal/statedb"
	"github.com/novacron/novacron/internal/testserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.StopPostgres()
	os.Exit(code)
}

// backends returns a fresh config per backend: SQLite in a temporary
// directory and a fresh database on the shared PostgreSQL.
func backends(t *testing.T) map[string]func(t *testing.T) statedb.Config {
	return map[string]func(t *testing.T) statedb.Config{
		statedb.DriverSQLite: func(t *testing.T) statedb.Config {
			cfg := statedb.NewDefaultConfig()
			cfg.SQLite.Path = filepath.Join(t.TempDir(), "sub", "state.db")
			return cfg
		},
		statedb.DriverPostgres: func(t *testing.T) statedb.Config {
			cfg := statedb.NewDefaultConfig()
			cfg.Driver = statedb.DriverPostgres
			cfg.Postgres.DSN = testserver.PostgresDSN(t)
			return cfg
		},
	}
}

func open(t *testing.T, cfg statedb.Config) *statedb.DB {
	t.Helper()
	db, err := statedb.Open(context.Background(), cfg, statedb.Settings{Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	return db
}

var notes = statedb.Migrations{Component: "notes", FS: fstest.MapFS{
	"0001_notes.sqlite.sql":   {Data: []byte(`CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);`)},
	"0001_notes.postgres.sql": {Data: []byte(`CREATE TABLE notes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body TEXT NOT NULL);`)},
	"0002_tags.sql": {Data: []byte(`CREATE TABLE tags (note_id BIGINT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (note_id, tag));
CREATE INDEX tags_by_tag ON tags (tag);`)},
	"README.md": {Data: []byte("not a migration")},
}}

var other = statedb.Migrations{Component: "other", FS: fstest.MapFS{
	"0001_kv.sql": {Data: []byte(`CREATE TABLE other_kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)`)},
}}

func TestBackends(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := mk(t)
			ctx := context.Background()
			db := open(t, cfg)
			require.Equal(t, name, db.Driver())
			require.NoError(t, db.Ping(ctx))
			require.NoError(t, db.Migrate(ctx, notes, other))
			v, err := db.Version(ctx, "notes")
			require.NoError(t, err)
			require.Equal(t, 2, v)

			// Placeholders, upserts and transactions work the same.
			require.NoError(t, db.InTx(ctx, func(tx *statedb.Tx) error {
				for _, b := range []string{"a?b", "second"} {
					if _, err := tx.Exec(ctx, `INSERT INTO notes (body) VALUES (?)`, b); err != nil {
						return err
					}
				}
				return nil
			}))
			_, err = db.Exec(ctx, `INSERT INTO other_kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, "k", "1")
			require.NoError(t, err)
			_, err = db.Exec(ctx, `INSERT INTO other_kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, "k", "2")
			require.NoError(t, err)
			var got string
			require.NoError(t, db.QueryRow(ctx, `SELECT v FROM other_kv WHERE k = ?`, "k").Scan(&got))
			require.Equal(t, "2", got)
			require.NoError(t, db.QueryRow(ctx, `SELECT body FROM notes WHERE body LIKE '%?%' AND id = ?`, 1).Scan(&got))
			require.Equal(t, "a?b", got)

			// A failing transaction leaves nothing behind.
			boom := errors.New("boom")
			err = db.InTx(ctx, func(tx *statedb.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO notes (body) VALUES (?)`, "rolled back"); err != nil {
					return err
				}
				return boom
			})
			require.ErrorIs(t, err, boom)
			var n int
			require.NoError(t, db.QueryRow(ctx, `SELECT COUNT(*) FROM notes`).Scan(&n))
			require.Equal(t, 2, n)

			// Migrating again is a no-op; reopening keeps the data.
			require.NoError(t, db.Migrate(ctx, notes, other))
			db2 := open(t, cfg)
			require.NoError(t, db2.Migrate(ctx, notes))
			require.NoError(t, db2.QueryRow(ctx, `SELECT COUNT(*) FROM notes`).Scan(&n))
			require.Equal(t, 2, n)

			// A database ahead of the files refuses to run.
			older := statedb.Migrations{Component: "notes", FS: fstest.MapFS{"0001_notes.sql": {Data: []byte(`SELECT 1`)}}}
			require.ErrorIs(t, db.Migrate(ctx, older), statedb.ErrSchemaTooNew)
		})
	}
}

// TestConcurrentMigrate checks that replicas migrating at once apply each
// migration exactly once.
func TestConcurrentMigrate(t *testing.T) {
	for name, mk := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := mk(t)
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				db := open(t, cfg)
				wg.Go(func() { errs[i] = db.Migrate(ctx, notes, other) })
			}
			wg.Wait()
			for _, err := range errs {
				require.NoError(t, err)
			}
			db := open(t, cfg)
			var n int
			require.NoError(t, db.QueryRow(ctx, `SELECT COUNT(*) FROM novacron_schema_migrations`).Scan(&n))
			require.Equal(t, 3, n)
		})
	}
}

func TestBadMigrationFails(t *testing.T) {
	cfg := statedb.NewDefaultConfig()
	cfg.SQLite.Path = filepath.Join(t.TempDir(), "state.db")
	db := open(t, cfg)
	ctx := context.Background()
	bad := statedb.Migrations{Component: "bad", FS: fstest.MapFS{
		"0001_ok.sql":     {Data: []byte(`CREATE TABLE bad_ok (x INTEGER)`)},
		"0002_broken.sql": {Data: []byte(`CREATE TABLE bad_broken (x INTEGER); INSERT INTO nowhere VALUES (1);`)},
	}}
	err := db.Migrate(ctx, bad)
	require.ErrorContains(t, err, "0002_broken.sql")
	v, err := db.Version(ctx, "bad")
	require.NoError(t, err)
	require.Equal(t, 1, v)
	// The failed migration's first statement was rolled back with it.
	_, err = db.Exec(ctx, `SELECT x FROM bad_broken`)
	require.Error(t, err)
}

func TestLoad(t *testing.T) {
	f := func(files map[string]string, driver, wantErr string, wantVersions ...int) {
		t.Helper()
		fsys := fstest.MapFS{}
		for n, s := range files {
			fsys[n] = &fstest.MapFile{Data: []byte(s)}
		}
		migs, err := statedb.Migrations{Component: "c", FS: fsys}.Load(driver)
		if wantErr != "" {
			require.ErrorContains(t, err, wantErr)
			return
		}
		require.NoError(t, err)
		var got []int
		for _, m := range migs {
			got = append(got, m.Version)
		}
		require.Equal(t, wantVersions, got)
	}
	f(map[string]string{"0001_a.sql": "", "0002_b.sql": ""}, "sqlite", "", 1, 2)
	f(map[string]string{"0002_b.sql": "", "0001_a.sql": ""}, "postgres", "", 1, 2)
	f(map[string]string{"0001_a.sqlite.sql": "", "0001_a.postgres.sql": ""}, "postgres", "", 1)
	f(map[string]string{}, "sqlite", "")
	f(map[string]string{"0001_a.sql": "", "0003_c.sql": ""}, "sqlite", "version 2 missing")
	f(map[string]string{"0001_a.sqlite.sql": ""}, "postgres", "no file for driver postgres")
	f(map[string]string{"0001_a.sql": "", "0001_a.sqlite.sql": ""}, "sqlite", "both a portable")
	f(map[string]string{"0001_a.sql": "", "0001_b.sql": ""}, "sqlite", "two portable files")
	f(map[string]string{"init.sql": ""}, "sqlite", `"init.sql": name must be`)
	f(map[string]string{"0000_zero.sql": ""}, "sqlite", "version must be >= 1")
}

func TestRebind(t *testing.T) {
	cfg := statedb.NewDefaultConfig()
	cfg.SQLite.Path = filepath.Join(t.TempDir(), "state.db")
	db := open(t, cfg)
	require.Equal(t, "SELECT ? FROM t", db.Rebind("SELECT ? FROM t"))
}

func TestConfig(t *testing.T) {
	require.NoError(t, statedb.NewDefaultConfig().Validate())
	f := func(mut func(*statedb.Config), fields ...string) {
		t.Helper()
		cfg := statedb.NewDefaultConfig()
		mut(&cfg)
		err := cfg.Validate()
		var got []string
		for _, e := range confutil.Flatten(err) {
			var fe *confutil.FieldError
			require.ErrorAs(t, e, &fe)
			got = append(got, fe.Field)
		}
		require.Equal(t, fields, got)
	}
	f(func(c *statedb.Config) { c.Driver = "mysql" }, "driver")
	f(func(c *statedb.Config) { c.SQLite.Path = ""; c.SQLite.BusyTimeout = 0 }, "sqlite.path", "sqlite.busy_timeout")
	f(func(c *statedb.Config) { c.Driver = "postgres" }, "postgres.dsn")
	f(func(c *statedb.Config) {
		c.Driver = "postgres"
		c.Postgres.DSN = "postgres://x"
		c.Postgres.MaxOpenConns = 0
		c.Postgres.ConnMaxLifetime = -1
	}, "postgres.max_open_conns", "postgres.conn_max_lifetime")
	// Settings of the driver not chosen are not checked.
	f(func(c *statedb.Config) { c.Postgres.MaxOpenConns = -1 })
}

func TestOpenErrorNamesTarget(t *testing.T) {
	cfg := statedb.NewDefaultConfig()
	cfg.Driver = statedb.DriverPostgres
	cfg.Postgres.DSN = "postgres://u:secret@127.0.0.1:1/db?connect_timeout=1"
	_, err := statedb.Open(context.Background(), cfg, statedb.Settings{})
	require.ErrorContains(t, err, "127.0.0.1:1")
	require.NotContains(t, err.Error(), "secret")
}
