package grafana

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/novacron/novacron/internal/catalog"
)

// dashboard is the part of a Grafana dashboard model the tests read.
type dashboard struct {
	file          string
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	SchemaVersion int      `json:"schemaVersion"`
	Tags          []string `json:"tags"`
	Panels        []panel  `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  *datasourceRef `json:"datasource"`
	GridPos     *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets     []target `json:"targets"`
	Panels      []panel  `json:"panels"` // collapsed rows
	FieldConfig struct {
		Defaults struct {
			Links []struct {
				URL string `json:"url"`
			} `json:"links"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

type target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Instant    bool           `json:"instant"`
	Range      bool           `json:"range"`
	Datasource *datasourceRef `json:"datasource"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *datasourceRef  `json:"datasource"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

// queryText returns a query variable's query, which Grafana stores either
// as a string or as {"query": "..."}.
func (v variable) queryText() (string, error) {
	var s string
	if err := json.Unmarshal(v.Query, &s); err == nil {
		return s, nil
	}
	var o struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(v.Query, &o); err != nil {
		return "", fmt.Errorf("variable %s: query is neither a string nor an object: %w", v.Name, err)
	}
	return o.Query, nil
}

// dataPanels returns every panel that queries data, rows' children included.
func (d dashboard) dataPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return out
}

func (d dashboard) variable(name string) (variable, bool) {
	for _, v := range d.Templating.List {
		if v.Name == name {
			return v, true
		}
	}
	return variable{}, false
}

// query is one PromQL expression of a dashboard: a panel target.
type query struct {
	dashboard *dashboard
	panel     string
	target    target
}

func (q query) String() string {
	return fmt.Sprintf("%s / %s / %s", filepath.Base(q.dashboard.file), q.panel, q.target.RefID)
}

func (d *dashboard) queries() []query {
	var out []query
	for _, p := range d.dataPanels() {
		for _, t := range p.Targets {
			out = append(out, query{dashboard: d, panel: p.Title, target: t})
		}
	}
	return out
}

func loadDashboards(t testing.TB) []*dashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("dashboards", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no dashboards under grafana/dashboards")
	var out []*dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		d := &dashboard{file: f}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		require.NoError(t, dec.Decode(d), "parse %s", f)
		out = append(out, d)
	}
	return out
}

// The Grafana variable syntaxes: ${name}, ${name:format} and $name.
var varRE = regexp.MustCompile(`\$\{(\w+)(?::[^}]*)?\}|\$(\w+)`)

// builtinVars are Grafana's own interval variables, given the values they
// take with the data sources' 15s scrape interval.
var builtinVars = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "1m",
	"__range":         "1h",
}

// plausibleValues are values of the dashboards' variables in the shapes the
// sim collector produces, for parsing expressions offline.
var plausibleValues = map[string]string{
	"provider": "sim",
	"region":   "sim-1",
	"host":     "host-01",
	"tenant":   "acme",
	"vm":       "web-0001",
	"vm_id":    "vm-0001",
	"instance": "127.0.0.1:8090",
}

// substitute replaces Grafana variables in expr with values[name] (or the
// built-in interval values); it fails on a variable the map lacks, so an
// expression cannot use a variable its dashboard does not define.
func substitute(expr string, values map[string]string) (string, error) {
	var missing []string
	out := varRE.ReplaceAllStringFunc(expr, func(m string) string {
		sm := varRE.FindStringSubmatch(m)
		name := sm[1] + sm[2]
		if v, ok := builtinVars[name]; ok {
			return v
		}
		if v, ok := values[name]; ok {
			return v
		}
		missing = append(missing, name)
		return m
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("undefined variables %v in %q", missing, expr)
	}
	return out, nil
}

// offlineValues gives every variable a dashboard defines a plausible value.
func offlineValues(t testing.TB, d *dashboard) map[string]string {
	t.Helper()
	values := map[string]string{}
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			values[v.Name] = "novacron"
			continue
		}
		val, ok := plausibleValues[v.Name]
		require.True(t, ok, "%s: variable %s has no plausible value in the test; add one", d.file, v.Name)
		values[v.Name] = val
	}
	return values
}

var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(?:(.*\S)\s*,\s*)?(\w+)\s*\)\s*$`)

// parseLabelValues splits label_values(selector, label) (or
// label_values(label)) into its parts.
func parseLabelValues(q string) (selector, label string, err error) {
	m := labelValuesRE.FindStringSubmatch(q)
	if m == nil {
		return "", "", fmt.Errorf("%q is not label_values([selector,] label)", q)
	}
	return m[1], m[2], nil
}

// metricDocs maps every metric documented in a table row of
// docs/metrics.md (| `name` | type | ...) to its type.
func metricDocs(t testing.TB) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "metrics.md"))
	require.NoError(t, err)
	row := regexp.MustCompile("(?m)^\\|\\s*`(novacron_[a-z0-9_]+)`\\s*\\|\\s*(gauge|counter|histogram)\\s*\\|")
	out := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = m[2]
	}
	require.NotEmpty(t, out, "no metric table rows found in docs/metrics.md")
	return out
}

// metricInfo says whether name is a known metric (or a series of a known
// histogram) and its type: "counter" for counters and a histogram's
// _bucket/_sum/_count series.
type metricInfo struct {
	known bool
	typ   string
	// catalogued is set for catalogue metrics, whose labels are known.
	catalogued bool
	labels     []string
}

func lookupMetric(docs map[string]string, name string) metricInfo {
	if m, ok := catalog.Lookup(name); ok {
		info := metricInfo{known: true, typ: string(m.Type), catalogued: true}
		switch m.Subject {
		case catalog.SubjectVM:
			info.labels = append(catalog.VMIdentityLabels(), m.Labels...)
		case catalog.SubjectHost:
			info.labels = append(catalog.HostIdentityLabels(), m.Labels...)
		default:
			info.catalogued = false
		}
		return info
	}
	if typ, ok := docs[name]; ok {
		return metricInfo{known: true, typ: typ}
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		typ := docs[base]
		if m, ok := catalog.Lookup(base); ok {
			typ = string(m.Type)
		}
		if typ == "histogram" {
			return metricInfo{known: true, typ: "counter"}
		}
	}
	return metricInfo{}
}

// checkExpr parses expr and returns every problem with it: unknown metric
// names, labels a catalogue metric does not have, rate-like functions over
// gauges.
func checkExpr(p parser.Parser, docs map[string]string, expr string) []error {
	ast, err := p.ParseExpr(expr)
	if err != nil {
		return []error{fmt.Errorf("parse %q: %w", expr, err)}
	}
	var errs []error
	parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			if n.Name == "" {
				errs = append(errs, fmt.Errorf("selector %s has no metric name", n))
				return nil
			}
			info := lookupMetric(docs, n.Name)
			if !info.known {
				errs = append(errs, fmt.Errorf("metric %s is neither in internal/catalog nor in docs/metrics.md", n.Name))
				return nil
			}
			if info.catalogued {
				for _, m := range n.LabelMatchers {
					if m.Name != "__name__" && !slices.Contains(info.labels, m.Name) {
						errs = append(errs, fmt.Errorf("metric %s has no label %q (it has %v)", n.Name, m.Name, info.labels))
					}
				}
			}
		case *parser.Call:
			switch n.Func.Name {
			case "rate", "irate", "increase", "resets":
				ms, ok := n.Args[0].(*parser.MatrixSelector)
				if !ok {
					return nil
				}
				vs := ms.VectorSelector.(*parser.VectorSelector)
				if info := lookupMetric(docs, vs.Name); info.known && info.typ != "counter" {
					errs = append(errs, fmt.Errorf("%s() over %s, a %s", n.Func.Name, vs.Name, info.typ))
				}
			}
		}
		return nil
	})
	return errs
}

var rangeRE = regexp.MustCompile(`\[[^\]]*\]`)

func TestDashboardsAreWellFormed(t *testing.T) {
	dashboards := loadDashboards(t)
	want := []string{"fleet-overview.json", "novacron-self.json", "vm-detail.json"}
	var got []string
	for _, d := range dashboards {
		got = append(got, filepath.Base(d.file))
	}
	require.Subset(t, got, want)

	uids, titles := map[string]string{}, map[string]string{}
	for _, d := range dashboards {
		t.Run(filepath.Base(d.file), func(t *testing.T) {
			require.NotEmpty(t, d.UID)
			require.LessOrEqual(t, len(d.UID), 40, "Grafana limits uids to 40 characters")
			require.NotEmpty(t, d.Title)
			require.Contains(t, d.Tags, "novacron", "the dashboards link to each other by the novacron tag")
			require.GreaterOrEqual(t, d.SchemaVersion, 36, "datasource references by uid need schemaVersion 36+")
			require.NotContains(t, uids, d.UID, "uid %s also in %s", d.UID, uids[d.UID])
			require.NotContains(t, titles, d.Title, "title %q also in %s", d.Title, titles[d.Title])
			uids[d.UID], titles[d.Title] = d.file, d.file

			ds, ok := d.variable("datasource")
			require.True(t, ok, "no datasource variable")
			require.Equal(t, "datasource", ds.Type)
			require.Equal(t, "prometheus", string(mustUnquote(t, ds.Query)))

			ids := map[int]bool{}
			var walk func([]panel)
			walk = func(ps []panel) {
				for _, p := range ps {
					require.NotContains(t, ids, p.ID, "panel id %d used twice", p.ID)
					ids[p.ID] = true
					require.NotNil(t, p.GridPos, "panel %q has no gridPos", p.Title)
					require.LessOrEqual(t, p.GridPos.X+p.GridPos.W, 24, "panel %q is wider than the grid", p.Title)
					require.NotEmpty(t, p.Title, "panel %d has no title", p.ID)
					if p.Type == "row" {
						walk(p.Panels)
						continue
					}
					require.NotEmpty(t, p.Description, "panel %q has no description", p.Title)
					require.Equal(t, &datasourceRef{Type: "prometheus", UID: "${datasource}"}, p.Datasource,
						"panel %q must use the ${datasource} variable", p.Title)
					require.NotEmpty(t, p.Targets, "panel %q has no queries", p.Title)
					refs := map[string]bool{}
					for _, tg := range p.Targets {
						require.NotEmpty(t, tg.Expr, "panel %q target %s has no expr", p.Title, tg.RefID)
						require.False(t, refs[tg.RefID], "panel %q: refId %s twice", p.Title, tg.RefID)
						refs[tg.RefID] = true
						if tg.Datasource != nil {
							require.Equal(t, "${datasource}", tg.Datasource.UID, "panel %q target %s", p.Title, tg.RefID)
						}
						require.NotEqual(t, tg.Instant, tg.Range, "panel %q target %s: exactly one of instant and range", p.Title, tg.RefID)
					}
				}
			}
			walk(d.Panels)

			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				require.Equal(t, &datasourceRef{Type: "prometheus", UID: "${datasource}"}, v.Datasource,
					"variable %s must use the ${datasource} variable", v.Name)
				q, err := v.queryText()
				require.NoError(t, err)
				require.Equal(t, v.Definition, q, "variable %s: definition and query differ", v.Name)
				if v.IncludeAll {
					require.Equal(t, ".*", v.AllValue, "variable %s: All must match every value, absent labels included", v.Name)
				}
			}
		})
	}

	// Data links to other dashboards must name a dashboard that exists.
	linkRE := regexp.MustCompile(`^/d/([^/?]+)`)
	for _, d := range dashboards {
		for _, p := range d.dataPanels() {
			for _, l := range p.FieldConfig.Defaults.Links {
				m := linkRE.FindStringSubmatch(l.URL)
				require.NotNil(t, m, "%s / %s: link %q is not a dashboard link", d.file, p.Title, l.URL)
				require.Contains(t, uids, m[1], "%s / %s: link to unknown dashboard", d.file, p.Title)
			}
		}
	}
}

func mustUnquote(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var s string
	require.NoError(t, json.Unmarshal(raw, &s))
	return s
}

// TestDashboardExpressionsParse parses every panel and variable query with
// the Prometheus PromQL parser and checks the metrics they name.
func TestDashboardExpressionsParse(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	docs := metricDocs(t)
	n := 0
	for _, d := range loadDashboards(t) {
		values := offlineValues(t, d)
		for _, q := range d.queries() {
			n++
			for _, r := range rangeRE.FindAllString(q.target.Expr, -1) {
				require.Equal(t, "[$__rate_interval]", r, "%s: range vectors use $__rate_interval", q)
			}
			expr, err := substitute(q.target.Expr, values)
			require.NoError(t, err, "%s", q)
			require.Empty(t, checkExpr(p, docs, expr), "%s: %s", q, expr)
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			text, err := v.queryText()
			require.NoError(t, err)
			sel, label, err := parseLabelValues(text)
			require.NoError(t, err, "%s: variable %s", d.file, v.Name)
			require.NotEmpty(t, sel, "%s: variable %s: label_values without a selector scans every series", d.file, v.Name)
			expr, err := substitute(sel, values)
			require.NoError(t, err, "%s: variable %s", d.file, v.Name)
			require.Empty(t, checkExpr(p, docs, expr), "%s: variable %s", d.file, v.Name)
			ast, err := p.ParseExpr(expr)
			require.NoError(t, err)
			vs, ok := ast.(*parser.VectorSelector)
			require.True(t, ok, "%s: variable %s: %q is not a series selector", d.file, v.Name, sel)
			if info := lookupMetric(docs, vs.Name); info.catalogued {
				require.Contains(t, info.labels, label, "%s: variable %s: %s has no label %s", d.file, v.Name, vs.Name, label)
			}
		}
	}
	require.Greater(t, n, 50, "suspiciously few dashboard queries")
}

// TestCheckExprCatchesMistakes shows that the expression checks above can
// fail: each input has one mistake the dashboards must not make.
func TestCheckExprCatchesMistakes(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	docs := metricDocs(t)
	for _, tc := range []struct{ name, expr, want string }{
		{"syntax", `sum(rate(novacron_vm_cpu_seconds_total[1m])`, "parse"},
		{"unknown metric", `novacron_vm_cpu_percent`, "neither in internal/catalog"},
		{"misspelt own metric", `rate(novacron_publish_sample_total[1m])`, "neither in internal/catalog"},
		{"label a VM metric lacks", `novacron_vm_up{device="vda"}`, `no label "device"`},
		{"rate over a gauge", `rate(novacron_vm_memory_used_bytes[1m])`, "rate() over novacron_vm_memory_used_bytes, a gauge"},
		{"bucket of a non-histogram", `novacron_storage_queue_length_bucket`, "neither in internal/catalog"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := checkExpr(p, docs, tc.expr)
			require.NotEmpty(t, errs)
			require.Contains(t, fmt.Sprint(errs), tc.want)
		})
	}
	require.Empty(t, checkExpr(p, docs,
		`histogram_quantile(0.99, sum by (le) (rate(novacron_storage_write_duration_seconds_bucket[1m])))`))

	_, err := substitute(`novacron_vm_up{vm_id="$vm_idd"}`, map[string]string{"vm_id": "x"})
	require.ErrorContains(t, err, "vm_idd")
	got, err := substitute(`rate(x{a=~"${a}",b="$b"}[$__rate_interval])`, map[string]string{"a": "1", "b": "2"})
	require.NoError(t, err)
	require.Equal(t, `rate(x{a=~"1",b="2"}[1m])`, got)

	sel, label, err := parseLabelValues(`label_values(novacron_vm_info{provider=~"$provider"}, region)`)
	require.NoError(t, err)
	require.Equal(t, `novacron_vm_info{provider=~"$provider"}`, sel)
	require.Equal(t, "region", label)
	_, _, err = parseLabelValues(`query_result(up)`)
	require.Error(t, err)
}

// provisionedDatasources is the shape of provisioning/datasources/*.yaml.
type provisionedDatasources struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name           string            `yaml:"name"`
		UID            string            `yaml:"uid"`
		Type           string            `yaml:"type"`
		Access         string            `yaml:"access"`
		URL            string            `yaml:"url"`
		IsDefault      bool              `yaml:"isDefault"`
		Editable       bool              `yaml:"editable"`
		JSONData       map[string]any    `yaml:"jsonData"`
		SecureJSONData map[string]string `yaml:"secureJsonData"`
	} `yaml:"datasources"`
}

// provisionedDashboards is the shape of provisioning/dashboards/*.yaml.
type provisionedDashboards struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name                  string `yaml:"name"`
		OrgID                 int    `yaml:"orgId"`
		Folder                string `yaml:"folder"`
		FolderUID             string `yaml:"folderUid"`
		Type                  string `yaml:"type"`
		DisableDeletion       bool   `yaml:"disableDeletion"`
		AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
		UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
		Options               struct {
			Path                      string `yaml:"path"`
			FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

// decodeStrict decodes a YAML file, rejecting keys the target lacks.
func decodeStrict(t testing.TB, file string, v any) {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(v), "parse %s", file)
}

// grafanaExpand expands $VAR and ${VAR} the way Grafana's provisioning does.
func grafanaExpand(s string, env map[string]string) string {
	return os.Expand(s, func(k string) string { return env[k] })
}

func TestProvisioning(t *testing.T) {
	env := map[string]string{
		"NOVACRON_URL":         "http://127.0.0.1:8090",
		"NOVACRON_API_TOKEN":   "s3cret",
		"NOVACRON_SELF_URL":    "http://127.0.0.1:9090",
		"NOVACRON_GRAFANA_DIR": ".",
	}

	var ds provisionedDatasources
	decodeStrict(t, filepath.Join("provisioning", "datasources", "novacron.yaml"), &ds)
	require.Equal(t, 1, ds.APIVersion)
	byUID := map[string]int{}
	defaults := 0
	for i, d := range ds.Datasources {
		require.Equal(t, "prometheus", d.Type, d.Name)
		require.Equal(t, "proxy", d.Access, "%s: the browser must not need the token", d.Name)
		require.NotContains(t, byUID, d.UID)
		byUID[d.UID] = i
		require.Contains(t, d.URL, "${", "%s: url comes from the environment", d.Name)
		u, err := url.Parse(grafanaExpand(d.URL, env))
		require.NoError(t, err)
		require.Equal(t, "http", u.Scheme)
		require.Equal(t, "", strings.TrimSuffix(u.Path, "/"), "%s: base URL, without /api/v1", d.Name)
		if d.IsDefault {
			defaults++
		}
	}
	require.Equal(t, 1, defaults, "exactly one default data source")

	// The NovaCron data source sends the API token as a bearer token, from
	// the environment, never written in the file.
	nc := ds.Datasources[byUID["novacron"]]
	require.Contains(t, byUID, "novacron")
	require.Equal(t, "Authorization", nc.JSONData["httpHeaderName1"])
	require.Equal(t, "Bearer ${NOVACRON_API_TOKEN}", nc.SecureJSONData["httpHeaderValue1"])
	require.Equal(t, "Bearer s3cret", grafanaExpand(nc.SecureJSONData["httpHeaderValue1"], env))
	require.Contains(t, byUID, "novacron-self")

	// Each dashboard's default data source is provisioned.
	for _, d := range loadDashboards(t) {
		v, ok := d.variable("datasource")
		require.True(t, ok)
		uid, _ := v.Current.Value.(string)
		require.Contains(t, byUID, uid, "%s: default data source %q is not provisioned", d.file, uid)
	}

	var dp provisionedDashboards
	decodeStrict(t, filepath.Join("provisioning", "dashboards", "novacron.yaml"), &dp)
	require.Equal(t, 1, dp.APIVersion)
	require.Len(t, dp.Providers, 1)
	prov := dp.Providers[0]
	require.Equal(t, "file", prov.Type)
	dir := grafanaExpand(prov.Options.Path, env)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	sort.Strings(names)
	require.Equal(t, []string{"fleet-overview.json", "novacron-self.json", "vm-detail.json"}, names,
		"the provider's path, with NOVACRON_GRAFANA_DIR set to grafana/, must hold the dashboards")

	var prom struct {
		Global struct {
			ScrapeInterval     string `yaml:"scrape_interval"`
			EvaluationInterval string `yaml:"evaluation_interval"`
		} `yaml:"global"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	decodeStrict(t, "prometheus.yml", &prom)
	require.Len(t, prom.ScrapeConfigs, 1)
	require.Equal(t, "/metrics", prom.ScrapeConfigs[0].MetricsPath)
	require.Equal(t, []string{"127.0.0.1:8090"}, prom.ScrapeConfigs[0].StaticConfigs[0].Targets,
		"the default API address (api.listen_address)")
	require.Equal(t, nc.JSONData["timeInterval"], prom.Global.ScrapeInterval,
		"$__rate_interval assumes the data sources' timeInterval is the scrape interval")
}
