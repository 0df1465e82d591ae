package promapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/promapi"
	"github.com/novacron/novacron/internal/storage/tsdbstore"
	"github.com/novacron/novacron/internal/testserver"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testserver.StopVictoriaMetrics()
	os.Exit(code)
}

const t0 = int64(1_700_000_000_000) // 2023-11-14T22:13:20Z

// embedded returns a test server for the handler over a fresh store
// holding batch.
func embedded(t *testing.T, batch []novacron.Series) *httptest.Server {
	t.Helper()
	cfg := tsdbstore.NewDefaultConfig()
	cfg.Path = t.TempDir()
	st, err := tsdbstore.Open(cfg, storage.Settings{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Shutdown(context.Background()) })
	require.NoError(t, st.Write(context.Background(), batch))
	srv := httptest.NewServer(promapi.NewHandler(st, promapi.WithNow(func() time.Time { return time.UnixMilli(t0 + 60_000) })))
	t.Cleanup(srv.Close)
	return srv
}

func smallSet() []novacron.Series {
	mk := func(vm, host string, v float64) novacron.Series {
		return novacron.Series{
			Labels:  novacron.Labels{{Name: "__name__", Value: "mem_bytes"}, {Name: "host", Value: host}, {Name: "vm_id", Value: vm}},
			Samples: []novacron.Sample{{T: t0, V: v}, {T: t0 + 30_000, V: v * 2}},
		}
	}
	return []novacron.Series{mk("a", "h1", 1), mk("b", "h1", 2.5), mk("c", "h2", 4)}
}

func get(t *testing.T, base, path string, params url.Values) (int, string) {
	t.Helper()
	resp, err := http.Get(base + path + "?" + params.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestShapes pins the exact JSON Prometheus answers with.
func TestShapes(t *testing.T) {
	srv := embedded(t, smallSet())
	f := func(path string, params url.Values, wantCode int, want string) {
		t.Helper()
		code, body := get(t, srv.URL, path, params)
		require.Equal(t, wantCode, code, body)
		require.JSONEq(t, want, body)
	}
	f("/api/v1/query", url.Values{"query": {`mem_bytes{vm_id="a"}`}, "time": {"1700000030.5"}}, 200,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"mem_bytes","host":"h1","vm_id":"a"},"value":[1700000030.5,"2"]}]}}`)
	f("/api/v1/query", url.Values{"query": {`sum by (host) (mem_bytes)`}, "time": {"2023-11-14T22:13:50Z"}}, 200,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"host":"h1"},"value":[1700000030,"7"]},{"metric":{"host":"h2"},"value":[1700000030,"8"]}]}}`)
	f("/api/v1/query", url.Values{"query": {`1/0`}, "time": {"1700000000"}}, 200,
		`{"status":"success","data":{"resultType":"scalar","result":[1700000000,"+Inf"]}}`)
	f("/api/v1/query", url.Values{"query": {`"hi"`}, "time": {"1700000000"}}, 200,
		`{"status":"success","data":{"resultType":"string","result":[1700000000,"hi"]}}`)
	f("/api/v1/query", url.Values{"query": {`mem_bytes{vm_id="c"}[1m]`}, "time": {"1700000030"}}, 200,
		`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"mem_bytes","host":"h2","vm_id":"c"},"values":[[1700000000,"4"],[1700000030,"8"]]}]}}`)
	f("/api/v1/query_range", url.Values{"query": {`mem_bytes{vm_id="b"}`}, "start": {"1700000000"}, "end": {"1700000030"}, "step": {"15s"}}, 200,
		`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"mem_bytes","host":"h1","vm_id":"b"},"values":[[1700000000,"2.5"],[1700000015,"2.5"],[1700000030,"5"]]}]}}`)
	f("/api/v1/series", url.Values{"match[]": {`mem_bytes{host="h2"}`, `mem_bytes{vm_id="a"}`}}, 200,
		`{"status":"success","data":[{"__name__":"mem_bytes","host":"h1","vm_id":"a"},{"__name__":"mem_bytes","host":"h2","vm_id":"c"}]}`)
	f("/api/v1/series", url.Values{"match[]": {`mem_bytes`}, "limit": {"1"}}, 200,
		`{"status":"success","data":[{"__name__":"mem_bytes","host":"h1","vm_id":"a"}],"warnings":["results truncated due to limit"]}`)
	f("/api/v1/labels", nil, 200, `{"status":"success","data":["__name__","host","vm_id"]}`)
	f("/api/v1/labels", url.Values{"start": {"1800000000"}}, 200, `{"status":"success","data":[]}`)
	f("/api/v1/label/vm_id/values", nil, 200, `{"status":"success","data":["a","b","c"]}`)
	f("/api/v1/label/vm_id/values", url.Values{"match[]": {`{host="h1"}`}}, 200, `{"status":"success","data":["a","b"]}`)
	f("/api/v1/label/vm_id/values", url.Values{"limit": {"2"}}, 200, `{"status":"success","data":["a","b"],"warnings":["results truncated due to limit"]}`)
	f("/api/v1/label/nope/values", nil, 200, `{"status":"success","data":[]}`)

	// Default time is "now" from WithNow: t0+60s, still within lookback.
	f("/api/v1/query", url.Values{"query": {`count(mem_bytes)`}}, 200,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000060,"3"]}]}}`)
}

func TestPOST(t *testing.T) {
	srv := embedded(t, smallSet())
	resp, err := http.PostForm(srv.URL+"/api/v1/query", url.Values{"query": {"count(mem_bytes)"}, "time": {"1700000030"}})
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, 200, resp.StatusCode)
	require.JSONEq(t, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000030,"3"]}]}}`, string(b))

	resp, err = http.PostForm(srv.URL+"/api/v1/series", url.Values{"match[]": {`{vm_id="b"}`}})
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.JSONEq(t, `{"status":"success","data":[{"__name__":"mem_bytes","host":"h1","vm_id":"b"}]}`, string(b))
}

func TestErrors(t *testing.T) {
	srv := embedded(t, smallSet())
	f := func(path string, params url.Values, wantCode int, wantType, wantErr string) {
		t.Helper()
		code, body := get(t, srv.URL, path, params)
		require.Equal(t, wantCode, code, body)
		var r struct {
			Status, ErrorType, Error string
		}
		require.NoError(t, json.Unmarshal([]byte(body), &r))
		require.Equal(t, "error", r.Status)
		require.Equal(t, wantType, r.ErrorType)
		require.Contains(t, r.Error, wantErr)
	}
	f("/api/v1/query", nil, 400, "bad_data", `invalid parameter "query": query is empty`)
	f("/api/v1/query", url.Values{"query": {"sum("}}, 400, "bad_data", `invalid parameter "query"`)
	f("/api/v1/query", url.Values{"query": {"up"}, "time": {"yesterday"}}, 400, "bad_data", `invalid parameter "time": cannot parse "yesterday" to a valid timestamp`)
	f("/api/v1/query", url.Values{"query": {"up"}, "timeout": {"-1s"}}, 400, "bad_data", `invalid parameter "timeout"`)
	f("/api/v1/query", url.Values{"query": {`mem_bytes + on(host) mem_bytes`}, "time": {"1700000000"}}, 422, "execution", "many-to-many matching not allowed")
	f("/api/v1/query_range", url.Values{"query": {"up"}, "end": {"1"}, "step": {"1"}}, 400, "bad_data", `invalid parameter "start": missing`)
	f("/api/v1/query_range", url.Values{"query": {"up"}, "start": {"2"}, "end": {"1"}, "step": {"1"}}, 400, "bad_data", "end timestamp must not be before start time")
	f("/api/v1/query_range", url.Values{"query": {"up"}, "start": {"1"}, "end": {"2"}, "step": {"0"}}, 400, "bad_data", "zero or negative query resolution step")
	f("/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"100000"}, "step": {"1"}}, 400, "bad_data", "exceeded maximum resolution of 11,000 points")
	f("/api/v1/query_range", url.Values{"query": {"up"}, "start": {"1"}, "end": {"2"}}, 400, "bad_data", `invalid parameter "step": missing`)
	f("/api/v1/series", nil, 400, "bad_data", "no match[] parameter provided")
	f("/api/v1/series", url.Values{"match[]": {"{"}}, 400, "bad_data", `invalid parameter "match[]"`)
	f("/api/v1/labels", url.Values{"limit": {"x"}}, 400, "bad_data", `invalid parameter "limit"`)
	f("/api/v1/label/bad-name/values", nil, 400, "bad_data", `invalid label name: "bad-name"`)
	f("/api/v1/status/config", nil, 404, "not_found", "unknown path")
	f("/elsewhere", nil, 404, "not_found", "unknown path")

	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/api/v1/query", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 400, resp.StatusCode)
	require.Equal(t, "GET, POST", resp.Header.Get("Allow"))
}

// TestMountedUnderPrefix: the handler finds /api/v1/ anywhere in the
// path, as when gin mounts it under a group.
func TestMountedUnderPrefix(t *testing.T) {
	srv := embedded(t, smallSet())
	code, body := get(t, srv.URL, "/prometheus/api/v1/label/host/values", nil)
	require.Equal(t, 200, code)
	require.JSONEq(t, `{"status":"success","data":["h1","h2"]}`, body)
}

func TestParseTime(t *testing.T) {
	f := func(in string, wantMs int64) {
		t.Helper()
		got, err := promapi.ParseTime(in)
		require.NoError(t, err, in)
		require.Equal(t, wantMs, got.UnixMilli(), in)
	}
	f("1700000000", t0)
	f("1700000000.123", t0+123)
	f("1700000000.1239", t0+124)
	f("-1.5", -1500)
	f("2023-11-14T22:13:20Z", t0)
	f("2023-11-14T23:13:20.25+01:00", t0+250)
	for _, bad := range []string{"", "x", "1e400", "NaN", "Inf", "2023-11-14"} {
		_, err := promapi.ParseTime(bad)
		require.Error(t, err, bad)
	}
}

func TestParseDuration(t *testing.T) {
	f := func(in string, want time.Duration) {
		t.Helper()
		got, err := promapi.ParseDuration(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	f("15", 15*time.Second)
	f("0.5", 500*time.Millisecond)
	f("1m30s", 90*time.Second)
	f("5m", 5*time.Minute)
	f("1d", 24*time.Hour)
	for _, bad := range []string{"", "x", "1e300", "NaN", "5 minutes"} {
		_, err := promapi.ParseDuration(bad)
		require.Error(t, err, bad)
	}
}

// FuzzParams checks the parameter parsers never panic.
func FuzzParams(f *testing.F) {
	for _, s := range []string{"1700000000.5", "2023-11-14T22:13:20Z", "1m30s", "-1e18", "NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 256 {
			t.Skip()
		}
		_, _ = promapi.ParseTime(s)
		_, _ = promapi.ParseDuration(s)
	})
}

func TestProxy(t *testing.T) {
	var got []*http.Request
	var bodies []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r)
		bodies = append(bodies, string(b))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"success","data":[]}`)
	}))
	defer backend.Close()

	f := func(cfg promapi.ProxyConfig, path, wantPath string) {
		t.Helper()
		p, err := promapi.NewProxy(cfg)
		require.NoError(t, err)
		srv := httptest.NewServer(p)
		defer srv.Close()
		code, body := get(t, srv.URL, path, url.Values{"match[]": {`{a="b"}`}})
		require.Equal(t, 200, code, body)
		require.JSONEq(t, `{"status":"success","data":[]}`, body)
		last := got[len(got)-1]
		require.Equal(t, wantPath, last.URL.Path)
		require.Equal(t, `{a="b"}`, last.URL.Query().Get("match[]"))
	}
	f(promapi.ProxyConfig{URL: backend.URL}, "/api/v1/labels", "/api/v1/labels")
	f(promapi.ProxyConfig{URL: backend.URL, Tenant: "42"}, "/api/v1/series", "/select/42/prometheus/api/v1/series")
	f(promapi.ProxyConfig{URL: backend.URL + "/vm/", Tenant: "1:2"}, "/x/api/v1/label/vm_id/values", "/vm/select/1:2/prometheus/api/v1/label/vm_id/values")

	p, err := promapi.NewProxy(promapi.ProxyConfig{URL: backend.URL})
	require.NoError(t, err)
	srv := httptest.NewServer(p)
	defer srv.Close()

	// POST bodies pass through.
	resp, err := http.PostForm(srv.URL+"/api/v1/query", url.Values{"query": {"up"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.MethodPost, got[len(got)-1].Method)
	require.Equal(t, "query=up", bodies[len(bodies)-1])

	// Other paths never reach the backend.
	n := len(got)
	code, body := get(t, srv.URL, "/api/v1/admin/tsdb/delete_series", nil)
	require.Equal(t, 404, code)
	require.Contains(t, body, `"errorType":"not_found"`)
	require.Len(t, got, n)

	// A dead backend is "unavailable".
	backend.Close()
	code, body = get(t, srv.URL, "/api/v1/query", url.Values{"query": {"up"}})
	require.Equal(t, 503, code)
	require.Contains(t, body, `"errorType":"unavailable"`)

	err = promapi.ProxyConfig{Tenant: "a/b", Timeout: -1}.Validate()
	require.ErrorContains(t, err, "url is required")
	require.ErrorContains(t, err, `tenant "a/b"`)
	require.ErrorContains(t, err, "timeout must be >= 0")
	require.ErrorContains(t, promapi.ProxyConfig{URL: "localhost:8428"}.Validate(), "must be an http or https URL")
	require.ErrorContains(t, promapi.NewDefaultProxyConfig().Validate(), "url is required")
}
