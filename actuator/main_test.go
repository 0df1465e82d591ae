package actuator_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron/internal/statedb"
	"github.com/novacron/novacron/internal/testserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.StopAll()
	os.Exit(code)
}

// sqliteDB opens a fresh SQLite state database.
func sqliteDB(t testing.TB) *statedb.DB {
	t.Helper()
	cfg := statedb.NewDefaultConfig()
	cfg.SQLite.Path = filepath.Join(t.TempDir(), "state.db")
	return openDB(t, cfg)
}

// postgresDB opens a fresh database on the PostgreSQL shared by the
// package's tests.
func postgresDB(t testing.TB) *statedb.DB {
	t.Helper()
	cfg := statedb.NewDefaultConfig()
	cfg.Driver = statedb.DriverPostgres
	cfg.Postgres.DSN = testserver.PostgresDSN(t)
	return openDB(t, cfg)
}

func openDB(t testing.TB, cfg statedb.Config) *statedb.DB {
	t.Helper()
	db, err := statedb.Open(context.Background(), cfg, statedb.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// backends runs f on SQLite and on PostgreSQL, in parallel.
func backends(t *testing.T, f func(t *testing.T, newDB func(testing.TB) *statedb.DB)) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); f(t, sqliteDB) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); f(t, postgresDB) })
}
