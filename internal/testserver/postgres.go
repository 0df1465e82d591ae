package testserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PostgresBinDirEnv names the environment variable that points at the
// directory holding PostgreSQL's initdb and pg_ctl; by default Debian's
// /usr/lib/postgresql/15/bin (package postgresql), or the newest
// /usr/lib/postgresql/*/bin.
const PostgresBinDirEnv = "NOVACRON_POSTGRES_BIN"

// Postgres is a throwaway PostgreSQL cluster on 127.0.0.1: initdb with
// trust authentication and no fsync, owned by the postgres system user
// when the tests run as root (initdb refuses root).
type Postgres struct {
	binDir string
	dir    string // data directory and socket directory
	port   int
	osUser *user.User // nil: run as the current user
}

var (
	sharedPGOnce sync.Once
	sharedPG     *Postgres
	sharedPGErr  error
	pgDBSeq      int
	pgDBMu       sync.Mutex
)

// PostgresServer returns the PostgreSQL cluster shared by every test of
// the binary, starting it on first use; it stays up until StopPostgres,
// which TestMain should call. When PostgreSQL is missing or does not
// start, tb is failed or skipped through Unavailable.
func PostgresServer(tb testing.TB) *Postgres {
	tb.Helper()
	sharedPGOnce.Do(func() { sharedPG, sharedPGErr = startPostgres() })
	if sharedPGErr != nil {
		Unavailable(tb, "PostgreSQL", sharedPGErr)
	}
	return sharedPG
}

// PostgresDSN creates a fresh database on the shared cluster for tb and
// returns its connection URL, so tests never see each other's tables.
func PostgresDSN(tb testing.TB) string {
	tb.Helper()
	pg := PostgresServer(tb)
	pgDBMu.Lock()
	pgDBSeq++
	name := fmt.Sprintf("t%d_%d", os.Getpid(), pgDBSeq)
	pgDBMu.Unlock()
	if err := pg.psql("CREATE DATABASE " + name); err != nil {
		tb.Fatalf("create database %s: %v", name, err)
	}
	return pg.DSN(name)
}

// StopPostgres stops the shared cluster and removes its files. Call it
// from TestMain after m.Run.
func StopPostgres() {
	if sharedPG != nil {
		_ = sharedPG.Stop()
		_ = os.RemoveAll(sharedPG.dir)
	}
}

func pgBinDir() (string, error) {
	if d := os.Getenv(PostgresBinDirEnv); d != "" {
		return d, nil
	}
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/initdb"); err == nil {
		return "/usr/lib/postgresql/15/bin", nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("PostgreSQL's initdb not found (apt-get install postgresql, or set %s)", PostgresBinDirEnv)
}

func startPostgres() (*Postgres, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	pg := &Postgres{binDir: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs the postgres system user (initdb refuses root): %w", err)
		}
		pg.osUser = u
	}
	dir, err := os.MkdirTemp("", "novacron-pg-")
	if err != nil {
		return nil, err
	}
	pg.dir = dir
	if pg.osUser != nil {
		uid, _ := strconv.Atoi(pg.osUser.Uid)
		gid, _ := strconv.Atoi(pg.osUser.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	if out, err := pg.cmd(filepath.Join(bin, "initdb"), "-D", pg.dataDir(), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8").CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	var lastErr error
	for range 3 {
		port, err := vmFreePort()
		if err != nil {
			return nil, err
		}
		pg.port = port
		if lastErr = pg.Start(); lastErr == nil {
			return pg, nil
		}
	}
	_ = os.RemoveAll(dir)
	return nil, lastErr
}

func (pg *Postgres) dataDir() string { return filepath.Join(pg.dir, "data") }

func (pg *Postgres) cmd(name string, args ...string) *exec.Cmd {
	c := exec.Command(name, args...)
	c.Dir = pg.dir
	c.Env = append(os.Environ(), "LC_ALL=C")
	if pg.osUser != nil {
		uid, _ := strconv.Atoi(pg.osUser.Uid)
		gid, _ := strconv.Atoi(pg.osUser.Gid)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	return c
}

// Start starts the cluster on its port (pg_ctl -w waits until it accepts
// connections).
func (pg *Postgres) Start() error {
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off", pg.port, pg.dir)
	out, err := pg.cmd(filepath.Join(pg.binDir, "pg_ctl"), "-D", pg.dataDir(), "-w", "-t", "30",
		"-l", filepath.Join(pg.dir, "postgres.log"), "-o", opts, "start").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(pg.dir, "postgres.log"))
		if len(log) > 2000 {
			log = log[len(log)-2000:]
		}
		return fmt.Errorf("pg_ctl start on port %d: %v: %s\n%s", pg.port, err, out, log)
	}
	return nil
}

// Stop stops the cluster (fast shutdown).
func (pg *Postgres) Stop() error {
	out, err := pg.cmd(filepath.Join(pg.binDir, "pg_ctl"), "-D", pg.dataDir(), "-w", "-t", "30", "-m", "fast", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	return nil
}

// DSN returns the connection URL of database db as user postgres.
func (pg *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", net.JoinHostPort("127.0.0.1", strconv.Itoa(pg.port)), db)
}

// psql runs one statement through the psql next to initdb.
func (pg *Postgres) psql(stmt string) error {
	psql := filepath.Join(pg.binDir, "psql")
	if _, err := os.Stat(psql); err != nil {
		p, lerr := exec.LookPath("psql")
		if lerr != nil {
			return errors.Join(err, lerr)
		}
		psql = p
	}
	c := exec.Command(psql, "-h", "127.0.0.1", "-p", strconv.Itoa(pg.port), "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", stmt)
	c.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	done := make(chan error, 1)
	var out []byte
	go func() {
		var err error
		out, err = c.CombinedOutput()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = c.Process.Kill()
		return errors.New("psql timed out")
	}
}
