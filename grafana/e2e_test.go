package grafana

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/api"
	"github.com/novacron/novacron/collectors/sim"
	"github.com/novacron/novacron/internal/buildinfo"
	"github.com/novacron/novacron/internal/bus/membus"
	"github.com/novacron/novacron/internal/config"
	"github.com/novacron/novacron/internal/storage"
	"github.com/novacron/novacron/internal/storage/promapi"
	"github.com/novacron/novacron/internal/storage/tsdbstore"
	"github.com/novacron/novacron/pipeline/ingest"
	"github.com/novacron/novacron/pipeline/publish"
)

// expectedEmpty lists the panel queries that return nothing on an hour of
// healthy simulated fleet: each shows a failure that does not happen and
// whose counter has no series until it does (most of NovaCron's error
// counters start at zero for each label value, so they do return a series).
// The test requires them to be empty, so the list stays true.
var expectedEmpty = map[string]string{
	"novacron-self.json / API errors and unauthorized / A": "no request fails with 5xx",
}

// Simulated time of the test's hour: a Monday morning, when the fleet's
// daily cycles are climbing.
var (
	simStart = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	simEnd   = simStart.Add(time.Hour)
)

// harness is NovaCron's pipeline in one test process, built from the same
// components as `novacron run`: the sim collector publishes through the
// in-process bus, the ingest stage writes through the storage sender into
// the embedded TSDB, and the API serves the Prometheus query API from it.
// A scraper writes the registry of all of them into the same store every
// simulated 15s, as a Prometheus scraping /metrics would, so the
// self-monitoring dashboard has data too.
type harness struct {
	// reg holds the pipeline's metrics; storeReg the embedded store's,
	// apart so that waiting for the pipeline does not gather the TSDB's.
	reg, storeReg *prometheus.Registry
	store         *tsdbstore.Store
	bus           *membus.Bus
	sender        *storage.Sender
	ingest        *ingest.Ingest
	pub           *publish.Publisher
	api           http.Handler
	token         string
}

const scrapeInstance = "novacron-test:8090"

// The test fleet's size.
const fleetVMs, fleetHosts = 16, 4

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := context.Background()
	cfg := config.NewDefault()
	h := &harness{reg: prometheus.NewRegistry(), storeReg: prometheus.NewRegistry(), token: "grafana-test-token"}
	h.reg.MustRegister(buildinfo.NewCollector())
	set := storage.Settings{Registerer: h.reg}

	scfg := tsdbstore.NewDefaultConfig()
	scfg.Path = t.TempDir()
	store, err := tsdbstore.Open(scfg, storage.Settings{Registerer: h.storeReg})
	require.NoError(t, err)
	h.store = store
	t.Cleanup(func() { _ = store.Shutdown(context.Background()) })

	bus, err := membus.New(cfg.Bus.Memory, membus.Settings{Registerer: h.reg})
	require.NoError(t, err)
	h.bus = bus
	t.Cleanup(func() { _ = bus.Close() })
	tp := cfg.Topics
	require.NoError(t, bus.EnsureTopics(ctx, []novacron.TopicSpec{
		{Name: tp.Samples, Partitions: tp.Partitions, ReplicationFactor: 1},
		{Name: tp.Events, Partitions: tp.Partitions, ReplicationFactor: 1},
		{Name: tp.Inventory, Partitions: 1, ReplicationFactor: 1},
		{Name: tp.DeadLetter, Partitions: 1, ReplicationFactor: 1},
	}))

	h.sender = storage.NewSender(store, cfg.Storage.Sender, set)
	require.NoError(t, h.sender.Start(ctx))
	t.Cleanup(func() { _ = h.sender.Shutdown(context.Background()) })
	h.ingest = ingest.New(ingest.Config{
		Group: cfg.Ingest.Group, SamplesTopic: tp.Samples, DeadLetterTopic: tp.DeadLetter,
		MaxPollRecords: cfg.Ingest.MaxPollRecords,
	}, ingest.Settings{Registerer: h.reg}, bus, h.sender)
	require.NoError(t, h.ingest.Start(ctx))
	t.Cleanup(func() { _ = h.ingest.Shutdown(context.Background()) })
	h.pub = publish.New(bus, publish.Topics{Samples: tp.Samples, Inventory: tp.Inventory, Events: tp.Events},
		publish.Settings{Registerer: h.reg})

	srv, err := api.New(api.Options{ListenAddress: "127.0.0.1:0", Token: h.token},
		api.Settings{Registerer: h.reg, Gatherer: h.reg}, api.Deps{Query: promapi.NewHandler(store)})
	require.NoError(t, err)
	h.api = srv.Handler()
	return h
}

// counterValue returns the value of an unlabelled counter or gauge in mfs.
func counterValue(mfs []*dto.MetricFamily, name string) float64 {
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) == 0 {
			continue
		}
		m := mf.GetMetric()[0]
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return math.NaN()
}

// waitIngested waits until the ingest stage has written every sample the
// publisher published.
func (h *harness) waitIngested(ctx context.Context) error {
	deadline := time.Now().Add(20 * time.Second)
	wait := 500 * time.Microsecond
	for {
		mfs, err := h.reg.Gather()
		if err != nil {
			return err
		}
		pub := counterValue(mfs, "novacron_publish_samples_total")
		ing := counterValue(mfs, "novacron_ingest_samples_total")
		if ing >= pub {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ingest stuck at %v of %v published samples", ing, pub)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		// Gathering the whole registry is not free: back off.
		wait = min(2*wait, 10*time.Millisecond)
	}
}

// scrape writes NovaCron's own metrics (novacron_*, the only ones the
// dashboards use) into the store at simulated time at, with the job and
// instance labels a scraper adds.
func (h *harness) scrape(ctx context.Context, at time.Time) error {
	mfs, err := prometheus.Gatherers{h.reg, h.storeReg}.Gather()
	if err != nil {
		return err
	}
	ts := at.UnixMilli()
	var batch []novacron.Series
	add := func(name string, base []*dto.LabelPair, v float64, extra ...novacron.Label) {
		ls := novacron.Labels{
			{Name: novacron.MetricNameLabel, Value: name},
			{Name: "job", Value: "novacron"},
			{Name: "instance", Value: scrapeInstance},
		}
		for _, lp := range base {
			ls = append(ls, novacron.Label{Name: lp.GetName(), Value: lp.GetValue()})
		}
		ls = append(ls, extra...)
		batch = append(batch, novacron.Series{Labels: ls.Sort(), Samples: []novacron.Sample{{T: ts, V: v}}})
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "novacron_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			lps := m.GetLabel()
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add(name, lps, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add(name, lps, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				add(name, lps, m.GetUntyped().GetValue())
			case dto.MetricType_HISTOGRAM:
				hg := m.GetHistogram()
				for _, b := range hg.GetBucket() {
					if math.IsInf(b.GetUpperBound(), +1) {
						continue
					}
					add(name+"_bucket", lps, float64(b.GetCumulativeCount()),
						novacron.Label{Name: "le", Value: strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)})
				}
				add(name+"_bucket", lps, float64(hg.GetSampleCount()), novacron.Label{Name: "le", Value: "+Inf"})
				add(name+"_sum", lps, hg.GetSampleSum())
				add(name+"_count", lps, float64(hg.GetSampleCount()))
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					add(name, lps, q.GetValue(),
						novacron.Label{Name: "quantile", Value: strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64)})
				}
				add(name+"_sum", lps, s.GetSampleSum())
				add(name+"_count", lps, float64(s.GetSampleCount()))
			}
		}
	}
	return h.store.Write(ctx, batch)
}

// do serves one authenticated request through the API, as Grafana's
// Prometheus data source sends it, and decodes the Prometheus JSON
// envelope. POST sends params as a form (the data sources' httpMethod).
func (h *harness) do(method, path string, params url.Values) (json.RawMessage, error) {
	var req *http.Request
	if method == http.MethodPost {
		req = httptest.NewRequest(method, path, strings.NewReader(params.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path+"?"+params.Encode(), nil)
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	rec := httptest.NewRecorder()
	h.api.ServeHTTP(rec, req)
	var body struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		return nil, fmt.Errorf("%s %s: status %d, body %q: %w", method, path, rec.Code, rec.Body.String(), err)
	}
	if rec.Code != http.StatusOK || body.Status != "success" {
		return nil, fmt.Errorf("%s %s: status %d: %s", method, path, rec.Code, body.Error)
	}
	return body.Data, nil
}

// query runs expr as an instant query at at, or as a range query over the
// 30 minutes before it, and returns how many series came back (1 for a
// scalar).
func (h *harness) query(expr string, instant bool, at time.Time) (int, error) {
	params := url.Values{"query": {expr}}
	path := "/api/v1/query"
	if instant {
		params.Set("time", strconv.FormatInt(at.Unix(), 10))
	} else {
		path = "/api/v1/query_range"
		params.Set("start", strconv.FormatInt(at.Add(-30*time.Minute).Unix(), 10))
		params.Set("end", strconv.FormatInt(at.Unix(), 10))
		params.Set("step", "60")
	}
	data, err := h.do(http.MethodPost, path, params)
	if err != nil {
		return 0, err
	}
	var res struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return 0, err
	}
	if res.ResultType == "scalar" || res.ResultType == "string" {
		return 1, nil
	}
	var series []json.RawMessage
	if err := json.Unmarshal(res.Result, &series); err != nil {
		return 0, err
	}
	return len(series), nil
}

// sample is one element of an instant vector.
type sample struct {
	Metric map[string]string
	Value  float64
}

// vector runs an instant query that must return a vector.
func (h *harness) vector(expr string, at time.Time) ([]sample, error) {
	data, err := h.do(http.MethodPost, "/api/v1/query", url.Values{"query": {expr}, "time": {strconv.FormatInt(at.Unix(), 10)}})
	if err != nil {
		return nil, err
	}
	var res struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, err
	}
	if res.ResultType != "vector" {
		return nil, fmt.Errorf("%s: result type %s, want vector", expr, res.ResultType)
	}
	out := make([]sample, 0, len(res.Result))
	for _, r := range res.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: value %v: %w", expr, r.Value[1], err)
		}
		out = append(out, sample{Metric: r.Metric, Value: v})
	}
	return out, nil
}

// labelValues answers a label_values(selector, label) variable query the
// way Grafana does, through /api/v1/label/<label>/values.
func (h *harness) labelValues(selector, label string, from, to time.Time) ([]string, error) {
	params := url.Values{
		"match[]": {selector},
		"start":   {strconv.FormatInt(from.Unix(), 10)},
		"end":     {strconv.FormatInt(to.Unix(), 10)},
	}
	data, err := h.do(http.MethodGet, "/api/v1/label/"+label+"/values", params)
	if err != nil {
		return nil, err
	}
	var values []string
	return values, json.Unmarshal(data, &values)
}

// scrapingSink sits between the sim collector and the publisher: it
// publishes each batch, waits for the pipeline to store it, issues one API
// query (the API's own traffic) and scrapes the registry at the batch's
// simulated time. Batches from simEnd on are not delivered; the first one
// closes done.
type scrapingSink struct {
	h        *harness
	half     chan struct{}
	done     chan struct{}
	halfOnce sync.Once
	doneOnce sync.Once
	mu       sync.Mutex
	err      error
}

func (s *scrapingSink) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	s.doneOnce.Do(func() { close(s.done) })
}

func (s *scrapingSink) ConsumeSeries(ctx context.Context, batch []novacron.Series) error {
	if len(batch) == 0 || len(batch[0].Samples) == 0 {
		return nil
	}
	at := time.UnixMilli(batch[0].Samples[0].T)
	if !at.Before(simEnd) {
		s.doneOnce.Do(func() { close(s.done) })
		return nil
	}
	if err := s.h.pub.ConsumeSeries(ctx, batch); err != nil {
		s.fail(err)
		return err
	}
	if err := s.h.waitIngested(ctx); err != nil {
		s.fail(err)
		return err
	}
	if _, err := s.h.query("count(novacron_vm_up)", true, at); err != nil {
		s.fail(err)
		return err
	}
	if err := s.h.scrape(ctx, at); err != nil {
		s.fail(fmt.Errorf("scrape at %s: %w", at, err))
		return err
	}
	if !at.Before(simStart.Add(30 * time.Minute)) {
		s.halfOnce.Do(func() { close(s.half) })
	}
	return nil
}

func (s *scrapingSink) ConsumeInventory(ctx context.Context, inv novacron.Inventory) error {
	if !inv.Time.Before(simEnd) {
		return nil
	}
	return s.h.pub.ConsumeInventory(ctx, inv)
}

func (s *scrapingSink) ConsumeEvents(ctx context.Context, events []novacron.Event) error {
	return s.h.pub.ConsumeEvents(ctx, events)
}

// runSimHour runs the sim collector through one simulated hour as fast as
// the pipeline takes it, stopping one VM half-way so that the fleet has a
// VM that is not running. It returns the stopped VM's ID.
func (h *harness) runSimHour(t *testing.T) string {
	t.Helper()
	cfg := sim.NewDefaultConfig()
	cfg.StartTime = simStart
	// One 15s step per real millisecond, or slower when the pipeline
	// needs longer: the collector never skips samples.
	cfg.Speed = float64(cfg.Interval / time.Millisecond)
	cfg.InventoryInterval = 15 * time.Minute
	// A small fleet keeps the test fast; the dashboards aggregate the same
	// way over 60 VMs or 6000.
	cfg.VMs, cfg.Hosts = fleetVMs, fleetHosts
	// Incidents inside the hour, so that steal and a filling disk show.
	cfg.Incidents = []sim.IncidentConfig{
		{Kind: sim.IncidentNoisyNeighbor, At: 10 * time.Minute, Duration: 40 * time.Minute},
		{Kind: sim.IncidentDiskFill, Target: "vm-0002", At: 0, Duration: time.Hour},
		{Kind: sim.IncidentCPURunaway, At: 20 * time.Minute, Duration: 30 * time.Minute},
	}
	sink := &scrapingSink{h: h, half: make(chan struct{}), done: make(chan struct{})}
	c, err := sim.New(*cfg, sim.Settings{Registerer: h.reg}, sink)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))

	inv := c.Fleet().Inventory(simStart)
	ids := make([]string, 0, len(inv.VMs))
	for _, vm := range inv.VMs {
		ids = append(ids, vm.ID)
	}
	slices.Sort(ids)
	// The last VM in order: the VM detail dashboard shows the first one.
	stopped := ids[len(ids)-1]

	timeout := time.After(60 * time.Second)
	select {
	case <-sink.half:
		require.NoError(t, c.Driver().Stop(ctx, stopped, 0))
	case <-sink.done:
	case <-timeout:
	}
	select {
	case <-sink.done:
	case <-timeout:
		t.Fatal("the simulated hour did not finish within 60s")
	}
	require.NoError(t, c.Shutdown(ctx))
	sink.mu.Lock()
	require.NoError(t, sink.err)
	sink.mu.Unlock()
	require.NoError(t, h.waitIngested(ctx))
	return stopped
}

// TestDashboardsAgainstSimulatedFleet runs every dashboard query, the way
// Grafana sends it, against an hour of the simulated fleet stored by the
// real pipeline, with NovaCron's own metrics scraped alongside.
func TestDashboardsAgainstSimulatedFleet(t *testing.T) {
	h := newHarness(t)
	stopped := h.runSimHour(t)

	// The stopped VM shows up as such: the fleet has a VM not running.
	n, err := h.query(fmt.Sprintf(`novacron_vm_power_state{vm_id=%q,state="stopped"} == 1`, stopped), true, simEnd)
	require.NoError(t, err)
	require.Equal(t, 1, n, "VM %s was stopped half-way", stopped)

	dashboards := loadDashboards(t)
	seen := map[string]bool{}
	total, empty := 0, 0
	var problems []string
	exprs := map[string]string{}
	for _, d := range dashboards {
		// Resolve the variables in order, as Grafana does: All (".*")
		// where a variable offers it, else the first value in sort order.
		values := map[string]string{}
		for _, v := range d.Templating.List {
			if v.Type == "datasource" {
				values[v.Name] = "novacron"
				continue
			}
			text, err := v.queryText()
			require.NoError(t, err)
			sel, label, err := parseLabelValues(text)
			require.NoError(t, err)
			sel, err = substitute(sel, values)
			require.NoError(t, err)
			got, err := h.labelValues(sel, label, simEnd.Add(-6*time.Hour), simEnd)
			require.NoError(t, err, "%s: variable %s", d.file, v.Name)
			require.NotEmpty(t, got, "%s: variable %s (%s) has no values", d.file, v.Name, text)
			if v.IncludeAll {
				values[v.Name] = v.AllValue
			} else {
				slices.Sort(got)
				values[v.Name] = got[0]
			}
		}
		for _, q := range d.queries() {
			key := q.String()
			seen[key] = true
			expr, err := substitute(q.target.Expr, values)
			require.NoError(t, err, key)
			exprs[key] = expr
			n, err := h.query(expr, q.target.Instant, simEnd)
			require.NoError(t, err, "%s: %s", key, expr)
			total++
			if reason, ok := expectedEmpty[key]; ok {
				empty++
				if n != 0 {
					problems = append(problems, fmt.Sprintf("%s is listed as empty (%s) but returned %d series", key, reason, n))
				}
				continue
			}
			if n == 0 {
				problems = append(problems, fmt.Sprintf("%s returned nothing: %s", key, expr))
			}
		}
	}
	require.Empty(t, problems, "update the dashboards, or expectedEmpty when a query is rightly empty")
	for key := range expectedEmpty {
		require.True(t, seen[key], "expectedEmpty names %s, which no dashboard has", key)
	}
	require.Greater(t, total, 3*empty, "most panel queries must show data")
	t.Logf("%d panel queries, %d non-empty, %d expected empty", total, total-empty, empty)

	// Some panels against what the fleet is known to be.
	value := func(key string) float64 {
		t.Helper()
		require.Contains(t, exprs, key)
		vec, err := h.vector(exprs[key], simEnd)
		require.NoError(t, err, key)
		require.Len(t, vec, 1, key)
		return vec[0].Value
	}
	require.Equal(t, float64(fleetVMs), value("fleet-overview.json / VMs / A"))
	require.Equal(t, float64(fleetVMs-1), value("fleet-overview.json / Running VMs / A"))
	require.Equal(t, 1.0, value("fleet-overview.json / Not running / A"))
	require.Equal(t, float64(fleetHosts), value("fleet-overview.json / Hosts up / A"))
	require.Equal(t, float64(fleetHosts), value("fleet-overview.json / Hosts up / B"))
	states, err := h.vector(exprs["fleet-overview.json / VMs by power state / A"], simEnd)
	require.NoError(t, err)
	byState := map[string]float64{}
	for _, s := range states {
		byState[s.Metric["state"]] = s.Value
	}
	require.Equal(t, float64(fleetVMs-1), byState["running"])
	require.Equal(t, 1.0, byState["stopped"])
	// Every series of a step is one sample: the fleet's sample rate is
	// its series count per 15s, and ingest keeps up with publishing.
	published := value("novacron-self.json / Samples published /s / A")
	require.InDelta(t, published, value("novacron-self.json / Samples ingested /s / A"), published*0.01)
	require.Greater(t, published, float64(fleetVMs*10)/15, "at least ten series per running VM each 15s")
	full, err := h.vector(exprs["fleet-overview.json / Disks near full (> 85%) / A"], simEnd)
	require.NoError(t, err)
	require.Len(t, full, 1, "only the disk_fill incident's disk is near full")
	require.Equal(t, "vm-0002", full[0].Metric["vm_id"])
	require.Equal(t, 1.0, value("fleet-overview.json / Disks above 85% / A"))
	power, err := h.vector(exprs["vm-detail.json / Power state / A"], simEnd)
	require.NoError(t, err)
	require.Len(t, power, 1)
	require.Equal(t, "running", power[0].Metric["state"])

	// A wrong metric name returns nothing: the non-empty checks above
	// can fail.
	n, err = h.query(`novacron_vm_cpu_usage_percent`, true, simEnd)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = h.query(`sum(`, true, simEnd)
	require.ErrorContains(t, err, "status 400", "a query that does not parse fails the check")
}
