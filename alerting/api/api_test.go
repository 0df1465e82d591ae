package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/alerting"
	alertapi "github.com/novacron/novacron/alerting/api"
	"github.com/novacron/novacron/api"
	"github.com/novacron/novacron/internal/statedb"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/tsdbstore"
	"github.com/novacron/novacron/internal/testserver"
)

// TestOpenAPIDocumentsRoutes checks that every route Mount registers is
// documented in api/openapi.yaml, method by method.
func TestOpenAPIDocumentsRoutes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testserver.RepoRoot(), "api", "openapi.yaml"))
	require.NoError(t, err)
	var spec struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(b, &spec))
	documented := map[string]bool{}
	for p, ops := range spec.Paths {
		for m := range ops {
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	base, err := api.New(api.Options{ListenAddress: "127.0.0.1:0", Token: "x"}, api.Settings{}, api.Deps{})
	require.NoError(t, err)
	baseRoutes := map[string]bool{}
	for _, r := range base.Handler().(*gin.Engine).Routes() {
		baseRoutes[r.Method+" "+r.Path] = true
	}
	s, err := api.New(api.Options{ListenAddress: "127.0.0.1:0", Token: "x"}, api.Settings{},
		api.Deps{Mount: []func(*gin.RouterGroup){alertapi.Mount(nil, nil)}})
	require.NoError(t, err)
	param := regexp.MustCompile(`:([a-z_]+)`)
	n := 0
	for _, r := range s.Handler().(*gin.Engine).Routes() {
		if baseRoutes[r.Method+" "+r.Path] {
			continue
		}
		n++
		key := r.Method + " " + param.ReplaceAllString(r.Path, "{$1}")
		require.True(t, documented[key], "%s is not documented in api/openapi.yaml", key)
	}
	require.Equal(t, 11, n)
}

type client struct {
	t   *testing.T
	url string
}

func (c client) do(method, path string, body any, out any) int {
	c.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.t, err)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, c.url+path, rd)
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	if out != nil && resp.StatusCode != http.StatusNoContent {
		require.NoError(c.t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

// TestRoutes exercises every route through the API server with a running
// alerting component on SQLite.
func TestRoutes(t *testing.T) {
	dbCfg := statedb.NewDefaultConfig()
	dbCfg.SQLite.Path = filepath.Join(t.TempDir(), "state.db")
	db, err := statedb.Open(context.Background(), dbCfg, statedb.Settings{})
	require.NoError(t, err)
	defer db.Close()
	stCfg := tsdbstore.NewDefaultConfig()
	stCfg.Path = t.TempDir()
	st, err := tsdbstore.Open(stCfg, storage.Settings{})
	require.NoError(t, err)
	defer st.Shutdown(context.Background())
	cfg := alerting.NewDefaultConfig()
	cfg.DefaultRules = false
	a, err := alerting.New(cfg, alerting.Settings{}, alerting.Deps{DB: db, Query: st})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, a.Start(ctx))
	defer a.Shutdown(ctx)

	srv, err := api.New(api.Options{ListenAddress: "127.0.0.1:0", Token: "tok"}, api.Settings{},
		api.Deps{Mount: []func(*gin.RouterGroup){alertapi.Mount(a, nil)}})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	c := client{t: t, url: hs.URL + "/api/v1"}

	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{
		{ID: "e1", Kind: novacron.EventAnomalyOpened, VMID: "vm-1", Labels: map[string]string{"metric": "m"}, Severity: "critical"},
		{ID: "e2", Kind: novacron.EventAnomalyOpened, VMID: "vm-2", Labels: map[string]string{"metric": "m"}},
	}))
	var al alertapi.AlertList
	require.Equal(t, 200, c.do("GET", `/alerts?filter={severity="critical"}`, nil, &al))
	require.Len(t, al.Alerts, 1)
	require.Equal(t, "vm-1", al.Alerts[0].Labels["vm_id"])
	var e struct{ Error, Code string }
	require.Equal(t, 400, c.do("GET", `/alerts?filter={bad`, nil, &e))
	require.Equal(t, "invalid", e.Code)
	require.Equal(t, 400, c.do("GET", `/alerts?state=sleeping`, nil, &e))

	var sil alerting.Silence
	require.Equal(t, 200, c.do("POST", "/silences", alerting.Silence{
		Matchers: []alerting.SilenceMatcher{{Name: "vm_id", Value: "vm-2"}}, EndsAt: time.Now().Add(time.Hour), CreatedBy: "me", Comment: "test",
	}, &sil))
	require.NotEmpty(t, sil.ID)
	require.Equal(t, 400, c.do("POST", "/silences", map[string]any{"matchers": []any{}}, &e))
	require.Contains(t, e.Error, "matchers: at least one is required")
	require.Equal(t, 400, c.do("POST", "/silences", map[string]any{"bogus": 1}, &e))
	require.Equal(t, 200, c.do("GET", "/alerts?muted=true", nil, &al))
	require.Len(t, al.Alerts, 1)
	require.Equal(t, "vm-2", al.Alerts[0].Labels["vm_id"])
	var sl alertapi.SilenceList
	require.Equal(t, 200, c.do("GET", "/silences", nil, &sl))
	require.Len(t, sl.Silences, 1)
	require.Equal(t, 204, c.do("DELETE", "/silences/"+sil.ID, nil, nil))
	require.Equal(t, 404, c.do("DELETE", "/silences/nope", nil, &e))
	require.Equal(t, 200, c.do("GET", "/alerts?muted=true", nil, &al))
	require.Empty(t, al.Alerts)

	var th alerting.Threshold
	require.Equal(t, 201, c.do("POST", "/thresholds", map[string]any{"id": "cpu", "metric": "novacron_vm_cpu_usage_ratio", "selector": `tenant="prod"`, "op": ">", "value": 0.9, "for": "10m"}, &th))
	require.Equal(t, "cpu", th.ID)
	require.Equal(t, 409, c.do("POST", "/thresholds", map[string]any{"id": "cpu", "metric": "x", "op": ">"}, &e))
	require.Equal(t, 400, c.do("POST", "/thresholds", map[string]any{"metric": "x", "op": "~"}, &e))
	th.Value = 0.8
	require.Equal(t, 200, c.do("PUT", "/thresholds/cpu", th, &th))
	require.Equal(t, 0.8, th.Value)
	require.Equal(t, 400, c.do("PUT", "/thresholds/cpu", map[string]any{"id": "other", "metric": "x", "op": ">"}, &e))
	require.Equal(t, 404, c.do("PUT", "/thresholds/none", map[string]any{"metric": "x", "op": ">"}, &e))
	require.Equal(t, 200, c.do("GET", "/thresholds/cpu", nil, &th))
	var tl alertapi.ThresholdList
	require.Equal(t, 200, c.do("GET", "/thresholds", nil, &tl))
	require.Len(t, tl.Thresholds, 1)
	var rl alertapi.RuleList
	require.Equal(t, 200, c.do("GET", "/rules", nil, &rl))
	require.Len(t, rl.Groups, 1)
	require.Equal(t, `novacron_vm_cpu_usage_ratio{tenant="prod"} > 0.8`, rl.Groups[0].Rules[0].Query)
	require.Equal(t, 600.0, rl.Groups[0].Rules[0].For)
	require.Equal(t, 204, c.do("DELETE", "/thresholds/cpu", nil, nil))
	require.Equal(t, 404, c.do("GET", "/thresholds/cpu", nil, &e))

	var hp alertapi.HistoryPage
	require.Equal(t, 200, c.do("GET", "/alerts/history?limit=1", nil, &hp))
	require.Len(t, hp.History, 1)
	require.NotZero(t, hp.Next)
	require.Equal(t, 200, c.do("GET", "/alerts/history?alertname=NovaCronAnomaly&filter={vm_id=\"vm-1\"}", nil, &hp))
	require.Len(t, hp.History, 1)
	require.Equal(t, 400, c.do("GET", "/alerts/history?limit=0", nil, &e))
	require.Equal(t, 400, c.do("GET", "/alerts/history?since=yesterday", nil, &e))

	// Without the token nothing is served.
	resp, err := http.Get(hs.URL + "/api/v1/alerts")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 401, resp.StatusCode)
}
