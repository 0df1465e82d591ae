package api_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron/internal/statedb"
)

func sqliteDB(t testing.TB) *statedb.DB {
	t.Helper()
	cfg := statedb.NewDefaultConfig()
	cfg.SQLite.Path = filepath.Join(t.TempDir(), "state.db")
	db, err := statedb.Open(context.Background(), cfg, statedb.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}
