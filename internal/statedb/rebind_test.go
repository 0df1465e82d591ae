package statedb

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRebindPostgres(t *testing.T) {
	d := &DB{driver: DriverPostgres}
	f := func(in, want string) {
		t.Helper()
		require.Equal(t, want, d.Rebind(in))
	}
	f("SELECT 1", "SELECT 1")
	f("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2")
	f("SELECT '?' , ?", "SELECT '?' , $1")
	f("INSERT INTO t VALUES (?, 'it''s ?', ?)", "INSERT INTO t VALUES ($1, 'it''s ?', $2)")
}

func FuzzRebind(f *testing.F) {
	for _, s := range []string{"SELECT ?", "'?'", "?,?,'?", ""} {
		f.Add(s)
	}
	d := &DB{driver: DriverPostgres}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4096 {
			return
		}
		_ = d.Rebind(s)
	})
}
