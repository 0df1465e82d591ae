package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/inventory"
)

const token = "test-token"

func mustOpen(t *testing.T, deps Deps) (*Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(Options{ListenAddress: "127.0.0.1:0", Token: token}, Settings{Registerer: reg, Gatherer: reg}, deps)
	require.NoError(t, err)
	require.NoError(t, s.Open())
	t.Cleanup(func() { require.NoError(t, s.Close(context.Background())) })
	return s, reg
}

func get(t *testing.T, url, tok string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(b, out), string(b))
	}
	return resp.StatusCode
}

func TestNewRequiresToken(t *testing.T) {
	_, err := New(Options{ListenAddress: "127.0.0.1:0"}, Settings{}, Deps{})
	require.Error(t, err)
}

func TestAuthentication(t *testing.T) {
	s, reg := mustOpen(t, Deps{Fleet: inventory.NewStore()})
	require.Equal(t, 200, get(t, s.URL()+"/healthz", "", nil))
	require.Equal(t, 200, get(t, s.URL()+"/metrics", "", nil))
	var body ErrorBody
	require.Equal(t, 401, get(t, s.URL()+"/api/v1/fleet", "", &body))
	require.Equal(t, novacron.EUNAUTHORIZED, body.Code)
	require.Equal(t, 401, get(t, s.URL()+"/api/v1/fleet", "wrong", nil))
	require.Equal(t, 401, get(t, s.URL()+"/api/v1/query?query=up", "", nil))
	require.Equal(t, 200, get(t, s.URL()+"/api/v1/fleet", token, nil))
	require.Equal(t, 3.0, testutil.ToFloat64(s.metrics.authFail))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

func TestReadyz(t *testing.T) {
	healthy := true
	s, _ := mustOpen(t, Deps{Ready: []ReadyCheck{
		{Name: "bus", Check: func(context.Context) error { return nil }},
		{Name: "storage", Check: func(context.Context) error {
			if healthy {
				return nil
			}
			return errors.New("connection refused")
		}},
	}})
	var st ReadyStatus
	require.Equal(t, 200, get(t, s.URL()+"/readyz", "", &st))
	require.True(t, st.Ready)
	healthy = false
	require.Equal(t, 503, get(t, s.URL()+"/readyz", "", &st))
	require.False(t, st.Ready)
	require.Equal(t, "connection refused", st.Checks["storage"])
	require.Equal(t, "ok", st.Checks["bus"])
}

func TestQueryForwarding(t *testing.T) {
	var gotPath, gotQuery string
	q := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		gotPath, gotQuery = r.URL.Path, r.Form.Get("query")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
	})
	s, _ := mustOpen(t, Deps{Query: q})
	var out map[string]any
	require.Equal(t, 200, get(t, s.URL()+"/api/v1/query?query=up", token, &out))
	require.Equal(t, "success", out["status"])
	require.Equal(t, "/api/v1/query", gotPath)
	require.Equal(t, "up", gotQuery)

	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/api/v1/label/job/values", strings.NewReader("match[]=up"))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "/api/v1/label/job/values", gotPath)

	s2, _ := mustOpen(t, Deps{})
	var body ErrorBody
	require.Equal(t, 503, get(t, s2.URL()+"/api/v1/query?query=up", token, &body))
	require.Equal(t, novacron.EUNAVAILABLE, body.Code)
}

func TestFleet(t *testing.T) {
	st := inventory.NewStore()
	inv := novacron.Inventory{Source: "sim", Time: time.Now(), Hosts: []novacron.Host{{ID: "h-0", Name: "host-0", Provider: "sim"}}}
	for i, name := range []string{"web-1", "web-2", "db-1", "batch-1"} {
		state := novacron.PowerRunning
		if i == 3 {
			state = novacron.PowerStopped
		}
		inv.VMs = append(inv.VMs, novacron.VM{ID: "vm-" + name, Name: name, Provider: "sim", Host: "host-0",
			State: state, Size: novacron.Size{VCPUs: i + 1}, Tags: map[string]string{"tier": name[:len(name)-2]}})
	}
	require.NoError(t, st.ConsumeInventory(context.Background(), inv))
	s, _ := mustOpen(t, Deps{Fleet: st})

	var sum FleetSummary
	require.Equal(t, 200, get(t, s.URL()+"/api/v1/fleet?limit=2", token, &sum))
	require.Equal(t, 4, sum.Total)
	require.Len(t, sum.VMs, 2)
	require.Equal(t, []string{"batch-1", "db-1"}, []string{sum.VMs[0].Name, sum.VMs[1].Name})
	require.Equal(t, map[string]int{"running": 3, "stopped": 1}, sum.ByState)
	require.Len(t, sum.Hosts, 1)

	var page FleetPage
	require.Equal(t, 200, get(t, s.URL()+"/api/v1/fleet/vms?tag=tier=web&sort=-vcpus", token, &page))
	require.Equal(t, 2, page.Total)
	require.Equal(t, "web-2", page.VMs[0].Name)

	require.Equal(t, 200, get(t, s.URL()+"/api/v1/fleet/vms?state=stopped", token, &page))
	require.Equal(t, 1, page.Total)

	var vm novacron.VM
	require.Equal(t, 200, get(t, s.URL()+"/api/v1/fleet/vms/vm-db-1", token, &vm))
	require.Equal(t, "db-1", vm.Name)

	var body ErrorBody
	require.Equal(t, 404, get(t, s.URL()+"/api/v1/fleet/vms/nope", token, &body))
	require.Contains(t, body.Error, `"nope"`)
	require.Equal(t, 400, get(t, s.URL()+"/api/v1/fleet?limit=0", token, &body))
	require.Contains(t, body.Error, "limit")
	require.Equal(t, 400, get(t, s.URL()+"/api/v1/fleet?sort=colour", token, &body))
	require.Contains(t, body.Error, "sort")
	require.Equal(t, 400, get(t, s.URL()+"/api/v1/fleet?tag=novalue", token, &body))
	require.Contains(t, body.Error, "tag")
}

func TestResolveToken(t *testing.T) {
	dir := t.TempDir()
	ts, err := ResolveToken("", "", dir)
	require.NoError(t, err)
	require.True(t, ts.Generated)
	require.Len(t, ts.Token, 64)
	fi, err := os.Stat(filepath.Join(dir, TokenFileName))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	again, err := ResolveToken("", "", dir)
	require.NoError(t, err)
	require.False(t, again.Generated)
	require.Equal(t, ts.Token, again.Token, "a second start reuses the generated token")

	fromCfg, err := ResolveToken("explicit", "", dir)
	require.NoError(t, err)
	require.Equal(t, "explicit", fromCfg.Token)

	f := filepath.Join(dir, "tok")
	require.NoError(t, os.WriteFile(f, []byte("from-file\n"), 0o600))
	fromFile, err := ResolveToken("", f, dir)
	require.NoError(t, err)
	require.Equal(t, "from-file", fromFile.Token)
	_, err = ResolveToken("", f+".missing", dir)
	require.ErrorContains(t, err, "api.token_file")
}

func TestCloseWithoutOpenAndTwice(t *testing.T) {
	s, err := New(Options{ListenAddress: "127.0.0.1:0", Token: token}, Settings{}, Deps{})
	require.NoError(t, err)
	require.NoError(t, s.Close(context.Background()))
	require.NoError(t, s.Close(context.Background()))
}
