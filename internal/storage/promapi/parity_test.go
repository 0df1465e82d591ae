package promapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/promapi"
	"github.com/novacron/novacron/internal/storage/remotewrite"
	"github.com/novacron/novacron/internal/storage/tsdbstore"
	"github.com/novacron/novacron/internal/testserver"
)

// paritySet is the fixed data set of the parity test: 6 VMs on 2 hosts,
// a linear counter and a gauge, sampled every 15s for 20 minutes from
// base+7s (off the minute grid, so no sample sits on a window boundary).
func paritySet(base int64) []novacron.Series {
	var out []novacron.Series
	for i := range 6 {
		vm := fmt.Sprintf("vm-%d", i)
		host := fmt.Sprintf("h%d", i%2+1)
		provider := []string{"sim", "libvirt"}[i/3]
		cpu := novacron.Series{Labels: novacron.Labels{
			{Name: "__name__", Value: "nc_parity_cpu_seconds_total"}, {Name: "host", Value: host},
			{Name: "provider", Value: provider}, {Name: "vm_id", Value: vm},
		}}
		mem := novacron.Series{Labels: novacron.Labels{
			{Name: "__name__", Value: "nc_parity_mem_bytes"}, {Name: "host", Value: host},
			{Name: "provider", Value: provider}, {Name: "vm_id", Value: vm},
		}}
		slope := float64(i+1) * 0.25 // CPU seconds per second
		for k := range 80 {
			ts := base + 7_000 + int64(k)*15_000
			cpu.Samples = append(cpu.Samples, novacron.Sample{T: ts, V: slope * float64(ts-base) / 1000})
			mem.Samples = append(mem.Samples, novacron.Sample{T: ts, V: 1e9 + float64(i)*1e8 + float64(k%7)*1e6})
		}
		out = append(out, cpu, mem)
	}
	return out
}

// TestParity writes the same data to the embedded store and to
// VictoriaMetrics, then asks both the same questions through the two
// handlers the API mounts (Handler for embedded mode, Proxy for
// production) and compares the answers numerically, order-insensitive.
func TestParity(t *testing.T) {
	vm := testserver.VictoriaMetrics(t)
	ctx := context.Background()
	base := time.Now().Add(-30 * time.Minute).Truncate(time.Minute).UnixMilli()
	data := paritySet(base)

	cfg := tsdbstore.NewDefaultConfig()
	cfg.Path = t.TempDir()
	st, err := tsdbstore.Open(cfg, storage.Settings{})
	require.NoError(t, err)
	defer st.Shutdown(ctx)
	require.NoError(t, st.Write(ctx, data))
	emb := httptest.NewServer(promapi.NewHandler(st))
	defer emb.Close()

	w, err := remotewrite.New(remotewrite.Config{URL: vm.WriteURL(), Timeout: 10 * time.Second}, storage.Settings{})
	require.NoError(t, err)
	require.NoError(t, w.Write(ctx, data))
	require.NoError(t, vm.ForceFlush())
	proxy, err := promapi.NewProxy(promapi.ProxyConfig{URL: vm.URL()})
	require.NoError(t, err)
	prod := httptest.NewServer(proxy)
	defer prod.Close()

	sec := func(ms int64) string { return strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64) }
	at := sec(base + 15*60_000)
	start, end := sec(base+5*60_000), sec(base+15*60_000)
	// ignoreName marks the one known difference in this query set:
	// VictoriaMetrics (MetricsQL) keeps the metric name on the result of
	// avg_over_time and similar rollups, PromQL drops it. The values and
	// the other labels must still agree.
	compareOpt := func(name, path string, params url.Values, ignoreName bool) {
		t.Run(name, func(t *testing.T) {
			want := fetch(t, emb.URL, path, params)
			got := fetch(t, prod.URL, path, params)
			if ignoreName {
				got = dropName(t, got)
			}
			require.NotEmpty(t, want, "the embedded answer is empty: the test would prove nothing")
			require.Equal(t, keys(want), keys(got), "series differ")
			for k, wv := range want {
				gv := got[k]
				require.Len(t, gv, len(wv), k)
				for i := range wv {
					require.Equal(t, wv[i].t, gv[i].t, "%s point %d time", k, i)
					require.InDelta(t, wv[i].v, gv[i].v, 1e-9*math.Max(1, math.Abs(wv[i].v)), "%s point %d at %v", k, i, wv[i].t)
				}
			}
		})
	}
	compare := func(name, path string, params url.Values) { compareOpt(name, path, params, false) }
	for _, q := range []string{
		`nc_parity_mem_bytes`,
		`nc_parity_mem_bytes{host="h1"}`,
		`nc_parity_mem_bytes{vm_id=~"vm-[0-2]",provider!="libvirt"}`,
		`rate(nc_parity_cpu_seconds_total[1m])`,
		`sum by (host) (rate(nc_parity_cpu_seconds_total[2m]))`,
		`max by (provider) (nc_parity_mem_bytes)`,
		`count(nc_parity_mem_bytes)`,
	} {
		compare("instant "+q, "/api/v1/query", url.Values{"query": {q}, "time": {at}})
	}
	for _, q := range []string{
		`rate(nc_parity_cpu_seconds_total{provider="sim"}[1m])`,
		`sum by (host) (nc_parity_mem_bytes)`,
	} {
		compare("range "+q, "/api/v1/query_range", url.Values{"query": {q}, "start": {start}, "end": {end}, "step": {"60"}})
	}
	compareOpt("instant avg_over_time", "/api/v1/query",
		url.Values{"query": {`avg_over_time(nc_parity_mem_bytes[5m])`}, "time": {at}}, true)
	compareOpt("range avg_over_time", "/api/v1/query_range",
		url.Values{"query": {`avg_over_time(nc_parity_mem_bytes{host="h2"}[2m])`}, "start": {start}, "end": {end}, "step": {"60"}}, true)
	window := url.Values{"start": {start}, "end": {end}}
	with := func(v url.Values, k string, vals ...string) url.Values {
		out := url.Values{}
		for kk, vv := range v {
			out[kk] = vv
		}
		out[k] = vals
		return out
	}
	compare("series", "/api/v1/series", with(window, "match[]", `nc_parity_mem_bytes{host="h1"}`, `nc_parity_cpu_seconds_total{vm_id="vm-5"}`))
	compare("labels", "/api/v1/labels", with(window, "match[]", `{__name__=~"nc_parity_.*"}`))
	compare("label values", "/api/v1/label/vm_id/values", with(window, "match[]", `nc_parity_mem_bytes{provider="sim"}`))
	compare("metric names", "/api/v1/label/__name__/values", with(window, "match[]", `{__name__=~"nc_parity_.*"}`))
}

// dropName removes __name__ from every series key of an answer.
func dropName(t *testing.T, m map[string][]tv) map[string][]tv {
	out := map[string][]tv{}
	for k, v := range m {
		nk := strings.Replace(strings.Replace(k, "__name__=nc_parity_mem_bytes,", "", 1), "__name__=nc_parity_mem_bytes", "", 1)
		_, dup := out[nk]
		require.False(t, dup, "dropping __name__ merged two series")
		out[nk] = v
	}
	return out
}

type tv struct {
	t float64
	v float64
}

// fetch GETs a query API answer and flattens it to series key -> points.
// Series and label lists become keys with no points.
func fetch(t *testing.T, base, path string, params url.Values) map[string][]tv {
	t.Helper()
	code, body := get(t, base, path, params)
	require.Equal(t, 200, code, "%s%s: %s", base, path, body)
	var r struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &r), body)
	require.Equal(t, "success", r.Status, body)
	out := map[string][]tv{}
	if path != "/api/v1/query" && path != "/api/v1/query_range" {
		var list []any
		require.NoError(t, json.Unmarshal(r.Data, &list), body)
		for _, e := range list {
			switch e := e.(type) {
			case string:
				out[e] = nil
			case map[string]any:
				out[metricKey(e)] = nil
			}
		}
		return out
	}
	var qd struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]any `json:"metric"`
			Value  []any          `json:"value"`
			Values [][]any        `json:"values"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(r.Data, &qd), body)
	for _, s := range qd.Result {
		k := metricKey(s.Metric)
		if s.Value != nil {
			out[k] = append(out[k], point(t, s.Value))
		}
		for _, p := range s.Values {
			out[k] = append(out[k], point(t, p))
		}
	}
	return out
}

func point(t *testing.T, p []any) tv {
	require.Len(t, p, 2)
	ts, ok := p[0].(float64)
	require.True(t, ok, "timestamp %v", p[0])
	vs, ok := p[1].(string)
	require.True(t, ok, "value %v", p[1])
	v, err := strconv.ParseFloat(vs, 64)
	require.NoError(t, err)
	return tv{t: ts, v: v}
}

func metricKey(m map[string]any) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%v", k, v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

func keys(m map[string][]tv) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
