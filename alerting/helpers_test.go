package alerting_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/alertmanager/notify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/alerting"
	"github.com/novacron/novacron/internal/statedb"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/tsdbstore"
	"github.com/novacron/novacron/internal/testserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.StopPostgres()
	testserver.StopAlertmanager()
	os.Exit(code)
}

// sqliteDB opens a fresh SQLite state database.
func sqliteDB(t testing.TB) *statedb.DB {
	t.Helper()
	cfg := statedb.NewDefaultConfig()
	cfg.SQLite.Path = filepath.Join(t.TempDir(), "state.db")
	return openDB(t, cfg)
}

// postgresDB opens a fresh database on the shared PostgreSQL.
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

// backends runs f on SQLite and PostgreSQL.
func backends(t *testing.T, f func(t *testing.T, newDB func(t testing.TB) *statedb.DB)) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); f(t, sqliteDB) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); f(t, postgresDB) })
}

func openStore(t testing.TB) *tsdbstore.Store {
	t.Helper()
	cfg := tsdbstore.NewDefaultConfig()
	cfg.Path = t.TempDir()
	s, err := tsdbstore.Open(cfg, storage.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// write stores one sample per value at now for metric with labels kv.
func write(t testing.TB, s *tsdbstore.Store, name string, v float64, kv ...string) {
	t.Helper()
	ls := novacron.Labels{{Name: "__name__", Value: name}}
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, novacron.Label{Name: kv[i], Value: kv[i+1]})
	}
	require.NoError(t, s.Write(context.Background(), []novacron.Series{{Labels: ls.Sort(), Samples: []novacron.Sample{{T: time.Now().UnixMilli(), V: v}}}}))
}

// testConfig is a config with no shipped rules and fast loops.
func testConfig() alerting.Config {
	cfg := alerting.NewDefaultConfig()
	cfg.DefaultRules = false
	cfg.EvaluationInterval = 500 * time.Millisecond
	cfg.ResendDelay = 500 * time.Millisecond
	cfg.ForGracePeriod = 0
	return cfg
}

// notification is one call of a capture integration.
type notification struct {
	receiver string
	alerts   []*alert.Alert
	at       time.Time
}

// capture records what the pipeline delivers to receivers.
type capture struct {
	mu   sync.Mutex
	got  []notification
	wake chan struct{}
}

func newCapture() *capture { return &capture{wake: make(chan struct{}, 1)} }

type captureNotifier struct {
	c        *capture
	receiver string
}

func (n captureNotifier) Notify(ctx context.Context, alerts ...*alert.Alert) notify.NotifyVerdict {
	n.c.mu.Lock()
	n.c.got = append(n.c.got, notification{receiver: n.receiver, alerts: alerts, at: time.Now()})
	n.c.mu.Unlock()
	select {
	case n.c.wake <- struct{}{}:
	default:
	}
	return notify.Success()
}

type sendResolved bool

func (s sendResolved) SendResolved() bool { return bool(s) }

// integrations returns capture integrations for the named receivers.
func (c *capture) integrations(receivers ...string) map[string][]notify.Integration {
	out := map[string][]notify.Integration{}
	for _, r := range receivers {
		out[r] = []notify.Integration{notify.NewIntegration(captureNotifier{c: c, receiver: r}, sendResolved(true), "capture", 0, r)}
	}
	return out
}

func (c *capture) all() []notification {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]notification(nil), c.got...)
}

// waitFor waits until a notification satisfies ok.
func (c *capture) waitFor(t testing.TB, timeout time.Duration, ok func(n notification) bool) notification {
	t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		got := c.all()
		for ; seen < len(got); seen++ {
			if ok(got[seen]) {
				return got[seen]
			}
		}
		select {
		case <-c.wake:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no matching notification within %s; got %d", timeout, len(got))
		}
	}
}

func hasAlert(name string, resolved bool) func(n notification) bool {
	return func(n notification) bool {
		for _, a := range n.alerts {
			if string(a.Labels["alertname"]) == name && a.Resolved() == resolved {
				return true
			}
		}
		return false
	}
}

func start(t testing.TB, cfg alerting.Config, set alerting.Settings, deps alerting.Deps) *alerting.Alerting {
	t.Helper()
	if set.Registerer == nil {
		set.Registerer = prometheus.NewRegistry()
	}
	a, err := alerting.New(cfg, set, deps)
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	return a
}

// eventually polls cond every 50ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, timeout, 50*time.Millisecond, append([]any{msg}, args...)...)
}
