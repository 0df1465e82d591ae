package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron/internal/config"
	"github.com/novacron/novacron/internal/testserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.StopAll()
	os.Exit(code)
}

// testConfig is the default configuration with a private data directory,
// a free API port and a fast simulated fleet.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := config.NewDefault()
	cfg.DataDir = t.TempDir()
	cfg.API.ListenAddress = "127.0.0.1:0"
	cfg.Log.Level = "warn"
	cfg.Collectors.Sim.Speed = 60
	cfg.Ingest.DrainTimeout = 10 * time.Second
	cfg.SelfScrapeInterval = 200 * time.Millisecond
	return cfg
}

func openApp(t *testing.T, cfg *config.Config, roles ...string) *App {
	t.Helper()
	if len(roles) == 0 {
		roles = AllRoles
	}
	require.NoError(t, cfg.Validate())
	require.NoError(t, checkRoles(cfg, roles))
	a := New(cfg, roles, NewLogger(cfg.Log, os.Stderr))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := a.Open(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, a.Close(ctx))
	})
	require.NoError(t, err)
	return a
}

// apiGet does an authenticated GET and decodes the JSON body into out.
func apiGet(t *testing.T, base, token, path string, out any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, out), string(b))
	}
	return resp.StatusCode
}

type promResponse struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

// instant runs a PromQL instant query through the API and returns the
// value of a single-element vector result; ok is false for an empty result.
func instant(t *testing.T, base, token, q string, at time.Time) (float64, bool) {
	t.Helper()
	var r promResponse
	code := apiGet(t, base, token, "/api/v1/query?"+url.Values{
		"query": {q}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)},
	}.Encode(), &r)
	require.Equal(t, http.StatusOK, code, "query %s: %s", q, r.Error)
	require.Equal(t, "success", r.Status)
	if len(r.Data.Result) == 0 {
		return 0, false
	}
	require.Len(t, r.Data.Result, 1, "query %s", q)
	v, err := strconv.ParseFloat(fmt.Sprint(r.Data.Result[0].Value[1]), 64)
	require.NoError(t, err)
	return v, true
}

// waitValue polls an instant query until it returns want.
func waitValue(t *testing.T, base, token, q string, at func() time.Time, want float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last float64
	var ok bool
	for time.Now().Before(deadline) {
		last, ok = instant(t, base, token, q, at())
		if ok && last == want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("query %s: want %v within %s, last got %v (present %v)", q, want, timeout, last, ok)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}
