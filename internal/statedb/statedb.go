package statedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Settings is what code injects: never read from user configuration.
type Settings struct {
	// Logger receives the database's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the connection pool's metrics (go_sql_*, with
	// db_name="novacron_state"); nil registers nothing.
	Registerer prometheus.Registerer
}

// DB is an open state database. It is safe for concurrent use. Queries
// given to its methods use "?" placeholders, rewritten to $1, $2, ... for
// PostgreSQL; write portable SQL (INSERT ... ON CONFLICT ... DO UPDATE is
// understood by both), and put what is not portable in dialect-specific
// migration files.
type DB struct {
	db      *sql.DB
	driver  string
	logger  *slog.Logger
	closed  bool
	cleanup func()
}

// Open opens (creating when missing, for SQLite) the database cfg names
// and checks that it answers. Close releases it.
func Open(ctx context.Context, cfg Config, set Settings) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("state database config: %w", err)
	}
	logger := set.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "statedb", "driver", cfg.Driver)
	var (
		sqlDB *sql.DB
		err   error
		where string
	)
	switch cfg.Driver {
	case DriverSQLite:
		where = cfg.SQLite.Path
		if dir := filepath.Dir(cfg.SQLite.Path); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("create directory of sqlite.path %q: %w", cfg.SQLite.Path, err)
			}
		}
		sqlDB, err = sql.Open("sqlite", sqliteDSN(cfg.SQLite))
		if err != nil {
			return nil, fmt.Errorf("open sqlite.path %q: %w", cfg.SQLite.Path, err)
		}
		// WAL allows readers beside one writer; more writers would only
		// queue on the busy timeout.
		sqlDB.SetMaxOpenConns(4)
	case DriverPostgres:
		where = redactDSN(cfg.Postgres.DSN)
		sqlDB, err = sql.Open("pgx", cfg.Postgres.DSN)
		if err != nil {
			return nil, fmt.Errorf("open postgres.dsn %q: %w", where, err)
		}
		sqlDB.SetMaxOpenConns(cfg.Postgres.MaxOpenConns)
		sqlDB.SetMaxIdleConns(min(cfg.Postgres.MaxOpenConns, 4))
		sqlDB.SetConnMaxLifetime(cfg.Postgres.ConnMaxLifetime)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect to state database %s: %w", where, err)
	}
	d := &DB{db: sqlDB, driver: cfg.Driver, logger: logger, cleanup: func() {}}
	if set.Registerer != nil {
		c := collectors.NewDBStatsCollector(sqlDB, "novacron_state")
		if err := set.Registerer.Register(c); err == nil {
			d.cleanup = func() { set.Registerer.Unregister(c) }
		}
	}
	logger.Info("state database open", "at", where)
	return d, nil
}

func sqliteDSN(c SQLiteConfig) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(c.BusyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Writers take the lock when their transaction begins, so two
	// read-then-write transactions never deadlock on the upgrade.
	q.Set("_txlock", "immediate")
	return "file:" + c.Path + "?" + q.Encode()
}

// redactDSN hides a password in a URL-form DSN, for messages.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	if strings.Contains(dsn, "password") {
		return "(dsn with password)"
	}
	return dsn
}

// Driver returns DriverSQLite or DriverPostgres.
func (d *DB) Driver() string { return d.driver }

// SQL returns the underlying *sql.DB. Queries through it must use the
// driver's own placeholders; prefer the methods of DB.
func (d *DB) SQL() *sql.DB { return d.db }

// Rebind rewrites "?" placeholders for the driver: $1, $2, ... for
// PostgreSQL, unchanged for SQLite. Question marks inside single-quoted
// string literals are left alone.
func (d *DB) Rebind(query string) string {
	if d.driver != DriverPostgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n, inString := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			inString = !inString
		case c == '?' && !inString:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Exec runs a statement with "?" placeholders.
func (d *DB) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.db.ExecContext(ctx, d.Rebind(query), args...)
}

// Query runs a query with "?" placeholders. Close the rows.
func (d *DB) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.db.QueryContext(ctx, d.Rebind(query), args...)
}

// QueryRow runs a query expected to return at most one row.
func (d *DB) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return d.db.QueryRowContext(ctx, d.Rebind(query), args...)
}

// Tx is a transaction with the same placeholder rewriting as DB.
type Tx struct {
	tx *sql.Tx
	d  *DB
}

// Exec runs a statement in the transaction.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.d.Rebind(query), args...)
}

// Query runs a query in the transaction. Close the rows.
func (t *Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.d.Rebind(query), args...)
}

// QueryRow runs a query expected to return at most one row.
func (t *Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.d.Rebind(query), args...)
}

// InTx runs fn in a transaction, committing when it returns nil and
// rolling back otherwise (fn's error is returned).
func (d *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(&Tx{tx: tx, d: d}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// Ping checks that the database answers, for readiness probes.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.db.PingContext(ctx); err != nil {
		return fmt.Errorf("state database: %w", err)
	}
	return nil
}

// Close closes the database. It is safe to call more than once.
func (d *DB) Close() error {
	if d == nil || d.closed {
		return nil
	}
	d.closed = true
	d.cleanup()
	err := d.db.Close()
	if err != nil && !errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("close state database: %w", err)
	}
	return nil
}
