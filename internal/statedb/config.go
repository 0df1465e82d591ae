package statedb

import (
	"errors"
	"time"

	"github.com/novacron/novacron/internal/confutil"
)

// Driver names, the values of Config.Driver.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Config selects and configures the state database.
type Config struct {
	// Driver is "sqlite" (embedded, default) or "postgres".
	Driver string `yaml:"driver"`
	// SQLite configures the embedded database, used when driver is sqlite.
	SQLite SQLiteConfig `yaml:"sqlite"`
	// Postgres configures PostgreSQL, used when driver is postgres.
	Postgres PostgresConfig `yaml:"postgres"`
}

// SQLiteConfig configures the embedded SQLite database.
type SQLiteConfig struct {
	// Path is the database file, created when missing with its directory.
	// Default "data/state.db"; required.
	Path string `yaml:"path"`
	// BusyTimeout is how long a writer waits for another writer's lock
	// before failing. Default 5s; must be > 0.
	BusyTimeout time.Duration `yaml:"busy_timeout"`
}

// PostgresConfig configures a PostgreSQL database.
type PostgresConfig struct {
	// DSN is a libpq connection string or URL
	// (postgres://user:pass@host:5432/novacron?sslmode=require). Required
	// when driver is postgres. The environment variables libpq reads
	// (PGPASSWORD, ...) are honoured.
	DSN string `yaml:"dsn"`
	// MaxOpenConns caps the open connections. Default 10; must be > 0.
	MaxOpenConns int `yaml:"max_open_conns"`
	// ConnMaxLifetime closes connections older than this, so a fail-over
	// or a pooler restart is picked up. Default 30m; 0 keeps them forever.
	ConnMaxLifetime time.Duration `yaml:"conn_max_lifetime"`
}

// NewDefaultConfig returns the defaults: SQLite at data/state.db.
func NewDefaultConfig() Config {
	return Config{
		Driver:   DriverSQLite,
		SQLite:   SQLiteConfig{Path: "data/state.db", BusyTimeout: 5 * time.Second},
		Postgres: PostgresConfig{MaxOpenConns: 10, ConnMaxLifetime: 30 * time.Minute},
	}
}

// Validate returns every problem with cfg, joined, worded with the YAML
// keys. It never changes cfg.
func (cfg Config) Validate() error {
	var errs []error
	switch cfg.Driver {
	case DriverSQLite:
		if cfg.SQLite.Path == "" {
			errs = append(errs, confutil.Errorf("sqlite.path", "is required when driver is sqlite"))
		}
		if cfg.SQLite.BusyTimeout <= 0 {
			errs = append(errs, confutil.Errorf("sqlite.busy_timeout", "must be > 0, got %s", cfg.SQLite.BusyTimeout))
		}
	case DriverPostgres:
		if cfg.Postgres.DSN == "" {
			errs = append(errs, confutil.Errorf("postgres.dsn", "is required when driver is postgres"))
		}
		if cfg.Postgres.MaxOpenConns <= 0 {
			errs = append(errs, confutil.Errorf("postgres.max_open_conns", "must be > 0, got %d", cfg.Postgres.MaxOpenConns))
		}
		if cfg.Postgres.ConnMaxLifetime < 0 {
			errs = append(errs, confutil.Errorf("postgres.conn_max_lifetime", "must be >= 0, got %s", cfg.Postgres.ConnMaxLifetime))
		}
	default:
		errs = append(errs, confutil.Errorf("driver", "must be sqlite or postgres, not %q", cfg.Driver))
	}
	return errors.Join(errs...)
}
