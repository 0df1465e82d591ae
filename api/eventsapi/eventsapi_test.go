package eventsapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/api"
	"github.com/novacron/novacron/api/eventsapi"
	"github.com/novacron/novacron/pipeline/events"
)

func newServer(t *testing.T, idx *events.Index) *api.Server {
	s, err := api.New(api.Options{ListenAddress: "127.0.0.1:0", Token: "tok"}, api.Settings{},
		api.Deps{Mount: []func(*gin.RouterGroup){eventsapi.Mount(idx)}})
	require.NoError(t, err)
	return s
}

// TestRoutesDocumented checks that every route Mount adds is in
// api/openapi.yaml with its method.
func TestRoutesDocumented(t *testing.T) {
	b, err := os.ReadFile("../openapi.yaml")
	require.NoError(t, err)
	var spec struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(b, &spec))
	g := gin.New()
	eventsapi.Mount(events.NewIndex(events.NewDefaultConfig()))(g.Group("/api/v1"))
	param := regexp.MustCompile(`:([a-z_]+)`)
	routes := g.Routes()
	require.Len(t, routes, 4)
	for _, r := range routes {
		p := param.ReplaceAllString(r.Path, "{$1}")
		_, ok := spec.Paths[p][strings.ToLower(r.Method)]
		require.True(t, ok, "%s %s not in api/openapi.yaml", r.Method, p)
	}
}

func ev(kind, id string, t time.Time, details map[string]any) novacron.Event {
	return novacron.Event{ID: id, Kind: kind, Time: t, VMID: details["vm"].(string), Host: details["host"].(string), Details: details}
}

func get(t *testing.T, h http.Handler, url string) (int, eventsapi.Page) {
	req := httptest.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer tok")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var p eventsapi.Page
	if w.Code == http.StatusOK {
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	}
	return w.Code, p
}

func TestListFiltersSortsPages(t *testing.T) {
	idx := events.NewIndex(events.NewDefaultConfig())
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	d := func(id, vm, host, metric string, score float64) map[string]any {
		return map[string]any{"anomaly_id": id, "vm": vm, "host": host, "metric": metric, "peak_score": score}
	}
	require.NoError(t, idx.ConsumeEvents(context.Background(), []novacron.Event{
		ev(novacron.EventAnomalyOpened, "a1-opened", t0, d("a1", "vm-1", "h1", "m_cpu", 0.9)),
		ev(novacron.EventAnomalyOpened, "a2-opened", t0.Add(time.Hour), d("a2", "vm-2", "h1", "m_mem", 0.95)),
		ev(novacron.EventAnomalyOpened, "a3-opened", t0.Add(2*time.Hour), d("a3", "vm-3", "h2", "m_cpu", 1)),
		ev(novacron.EventAnomalyClosed, "a1-closed", t0.Add(30*time.Minute), d("a1", "vm-1", "h1", "m_cpu", 0.9)),
		// A duplicate delivery changes nothing.
		ev(novacron.EventAnomalyOpened, "a1-opened", t0, d("a1", "vm-1", "h1", "m_cpu", 0.9)),
	}))
	h := newServer(t, idx).Handler()

	code, p := get(t, h, "/api/v1/anomalies")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 3, p.Total)
	require.Equal(t, []string{"a3", "a2", "a1"}, ids(p))
	require.Equal(t, "closed", p.Items[2].State)
	require.Equal(t, []string{"a1-opened", "a1-closed"}, p.Items[2].EventIDs)

	f := func(url string, want ...string) {
		t.Helper()
		code, p := get(t, h, url)
		require.Equal(t, http.StatusOK, code, url)
		if want == nil {
			want = []string{}
		}
		require.Equal(t, want, ids(p), url)
	}
	f("/api/v1/anomalies?host=h1", "a2", "a1")
	f("/api/v1/anomalies?vm_id=vm-3", "a3")
	f("/api/v1/anomalies?metric=m_cpu&sort=%2Bstart", "a1", "a3")
	f("/api/v1/anomalies?state=open&sort=score", "a3", "a2")
	f("/api/v1/anomalies?from="+t0.Add(45*time.Minute).Format(time.RFC3339), "a3", "a2")
	f("/api/v1/anomalies?to="+t0.Add(10*time.Minute).Format(time.RFC3339), "a1")
	f("/api/v1/anomalies?limit=1&offset=1", "a2")
	f("/api/v1/incidents")

	for _, bad := range []string{"limit=0", "limit=x", "offset=-1", "sort=name", "state=predicted", "from=yesterday",
		"from=2026-03-02T01:00:00Z&to=2026-03-02T00:00:00Z"} {
		code, _ := get(t, h, "/api/v1/anomalies?"+bad)
		require.Equal(t, http.StatusBadRequest, code, bad)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/anomalies", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	require.Equal(t, http.StatusUnauthorized, w.Code)
}

func ids(p eventsapi.Page) []string {
	out := []string{}
	for _, it := range p.Items {
		out = append(out, it.ID)
	}
	return out
}

func TestStream(t *testing.T) {
	idx := events.NewIndex(events.NewDefaultConfig())
	s := newServer(t, idx)
	require.NoError(t, s.Open())
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/api/v1/events/stream?kind=anomaly_opened", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadString('\n') // the opening comment: subscribed
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, ":"))
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	d := map[string]any{"anomaly_id": "a1", "vm": "vm-1", "host": "h1"}
	require.NoError(t, idx.ConsumeEvents(ctx, []novacron.Event{
		ev(novacron.EventAnomalyClosed, "a0-closed", t0, d), // filtered out by kind
		ev(novacron.EventAnomalyOpened, "a1-opened", t0, d),
	}))
	var got []string
	for len(got) < 3 {
		line, err := rd.ReadString('\n')
		require.NoError(t, err)
		if line == "\n" || strings.HasPrefix(line, ":") {
			continue
		}
		got = append(got, strings.TrimSpace(line))
	}
	require.Equal(t, "id: a1-opened", got[0])
	require.Equal(t, "event: anomaly_opened", got[1])
	require.True(t, strings.HasPrefix(got[2], `data: {"schema_version"`), got[2])
}
