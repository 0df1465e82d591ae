package app

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/api"
	"github.com/novacron/novacron/internal/testserver"
)

// TestRunEmbeddedDefaults is `make run`: every role in one process on the
// in-process bus and the embedded store, the simulated fleet queryable
// with PromQL through the API.
func TestRunEmbeddedDefaults(t *testing.T) {
	cfg := testConfig(t)
	a := openApp(t, cfg)
	base, tok := a.APIURL(), a.Token()
	require.NotEmpty(t, tok)
	fi, err := os.Stat(filepath.Join(cfg.DataDir, api.TokenFileName))
	require.NoError(t, err, "the generated token is written to the data directory")
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	ahead := func() time.Time { return time.Now().Add(2 * time.Minute) }
	waitValue(t, base, tok, `count(count by (vm_id) (novacron_vm_cpu_usage_ratio{provider="sim"}))`, ahead, 60, time.Minute)
	waitValue(t, base, tok, `count(count by (host) (novacron_host_cpu_usage_ratio))`, ahead, 8, time.Minute)

	var fleet api.FleetSummary
	require.Eventually(t, func() bool {
		return apiGet(t, base, tok, "/api/v1/fleet?limit=1000", &fleet) == http.StatusOK && fleet.Total == 60
	}, time.Minute, 200*time.Millisecond)
	require.Len(t, fleet.Hosts, 8)
	require.Equal(t, 60, fleet.ByProvider["sim"])

	// The process's own metrics are scraped into the same store.
	now := func() time.Time { return time.Now() }
	waitValue(t, base, tok, `count(novacron_build_info{job="novacron"})`, now, 1, 30*time.Second)

	// The actuator runs with the simulated fleet's driver and the shipped
	// policies in dry-run mode.
	var policies json.RawMessage
	require.Equal(t, http.StatusOK, apiGet(t, base, tok, "/api/v1/remediation/policies", &policies))
	require.Contains(t, string(policies), "dry_run")
	fi, err = os.Stat(filepath.Join(cfg.DataDir, OperatorTokenFileName))
	require.NoError(t, err, "an operator token is generated for approvals")
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// The actuator's verification queries go through the same engine.
	v, err := queryOne(t.Context(), a.queryHandlerForTest(t), `count(count by (vm_id) (novacron_vm_up{provider="sim"}))`, ahead())
	require.NoError(t, err)
	require.Equal(t, 60.0, v)
	_, err = queryOne(t.Context(), a.queryHandlerForTest(t), `novacron_vm_up{vm_id="nope"}`, ahead())
	require.Equal(t, novacron.ENOTFOUND, novacron.ErrorCode(err))

	require.Equal(t, http.StatusUnauthorized, apiGet(t, base, "", "/api/v1/query?query=up", nil))
	var ready api.ReadyStatus
	require.Equal(t, http.StatusOK, apiGet(t, base, "", "/readyz", &ready))
	require.Equal(t, map[string]string{"bus": "ok", "storage": "ok"}, ready.Checks)

	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body := new(strings.Builder)
	_, _ = io.Copy(body, resp.Body)
	for _, m := range []string{"novacron_ingest_samples_total", "novacron_storage_write_duration_seconds_bucket",
		"novacron_publish_samples_total", "novacron_build_info", "novacron_ingest_consumer_lag_records"} {
		require.Contains(t, body.String(), m)
	}
}

// TestSelfMetricsDocumented checks that every novacron_* metric a running
// process exports is listed in docs/metrics.md, and that the set passes
// client_golang's lint.
func TestSelfMetricsDocumented(t *testing.T) {
	cfg := testConfig(t)
	a := openApp(t, cfg)
	// One request of each kind so the labelled API metrics have children.
	apiGet(t, a.APIURL(), a.Token(), "/api/v1/fleet", nil)
	doc, err := os.ReadFile(filepath.Join(testserver.RepoRoot(), "docs", "metrics.md"))
	require.NoError(t, err)
	mfs, err := a.Registry.Gather()
	require.NoError(t, err)
	n := 0
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "novacron_") {
			continue
		}
		n++
		if strings.HasPrefix(name, "novacron_collector_") {
			continue
		}
		require.True(t, strings.Contains(string(doc), "`"+name+"`"), "metric %s is not documented in docs/metrics.md", name)
	}
	require.Greater(t, n, 30)
	problems, err := testutil.GatherAndLint(a.Registry)
	require.NoError(t, err)
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "novacron_") {
			t.Errorf("lint %s: %s", p.Metric, p.Text)
		}
	}
}

func (a *App) queryHandlerForTest(t *testing.T) http.Handler {
	t.Helper()
	h, err := a.queryHandler()
	require.NoError(t, err)
	return h
}
