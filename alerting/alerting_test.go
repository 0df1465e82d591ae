package alerting_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/alerting"
	"github.com/novacron/novacron/internal/confutil"
	"github.com/novacron/novacron/internal/statedb"
)

func TestDefaultConfigValidates(t *testing.T) {
	require.NoError(t, alerting.NewDefaultConfig().Validate())
}

func TestConfigErrors(t *testing.T) {
	f := func(mut func(c *alerting.Config), fields ...string) {
		t.Helper()
		c := alerting.NewDefaultConfig()
		mut(&c)
		var got []string
		for _, e := range confutil.Flatten(c.Validate()) {
			var fe *confutil.FieldError
			require.ErrorAs(t, e, &fe)
			got = append(got, fe.Field)
		}
		require.Equal(t, fields, got)
	}
	f(func(c *alerting.Config) {})
	f(func(c *alerting.Config) { c.RuleFiles = []string{"", "a[.yaml"} }, "rule_files", "rule_files")
	f(func(c *alerting.Config) { c.EvaluationInterval = 0; c.ResendDelay = -1 }, "evaluation_interval", "resend_delay")
	f(func(c *alerting.Config) { c.ExternalURL = "ftp://x" }, "external_url")
	f(func(c *alerting.Config) { c.ExternalLabels = map[string]string{"bad-name": "x"} }, "external_labels")
	f(func(c *alerting.Config) { c.DashboardURL = "{{ .VMID" }, "dashboard_url")
	f(func(c *alerting.Config) { c.Notifications.Config = "route: {receiver: nobody}" }, "notifications.config")
	f(func(c *alerting.Config) { c.Notifications.Config = "x: 1"; c.Notifications.ConfigFile = "f" }, "notifications.config", "notifications.config")
	f(func(c *alerting.Config) { c.Forward.URLs = []string{"localhost:9093"}; c.Forward.Timeout = 0 }, "forward.urls", "forward.timeout")
	f(func(c *alerting.Config) { c.EventResolveTimeout = 0; c.HistoryRetention = -1 }, "event_resolve_timeout", "history_retention")
}

func TestShutdownWithoutStart(t *testing.T) {
	a, err := alerting.New(testConfig(), alerting.Settings{}, alerting.Deps{DB: sqliteDB(t), Query: openStore(t)})
	require.NoError(t, err)
	require.NoError(t, a.Shutdown(context.Background()))
	require.NoError(t, a.Shutdown(context.Background()))
	_, err = a.Silences(context.Background())
	require.ErrorIs(t, err, alerting.ErrNotRunning)
}

func TestNewRequiresOneBackend(t *testing.T) {
	_, err := alerting.New(testConfig(), alerting.Settings{}, alerting.Deps{DB: sqliteDB(t)})
	require.ErrorContains(t, err, "exactly one query backend")
	_, err = alerting.New(testConfig(), alerting.Settings{}, alerting.Deps{Query: openStore(t)})
	require.ErrorContains(t, err, "state database")
}

// TestShippedRulesLoad starts with the shipped rule set on an empty store.
func TestShippedRulesLoad(t *testing.T) {
	cfg := testConfig()
	cfg.DefaultRules = true
	a := start(t, cfg, alerting.Settings{}, alerting.Deps{DB: sqliteDB(t), Query: openStore(t)})
	groups := a.RuleGroups()
	require.Len(t, groups, 4)
	for _, g := range groups {
		require.Contains(t, g.File, "alerting/rules/")
		require.NotEmpty(t, g.Rules)
	}
}

// TestInvalidRuleFiles checks that each bad file fails startup with an
// error naming the file and, for content errors, the line.
func TestInvalidRuleFiles(t *testing.T) {
	f := func(file string, want ...string) {
		t.Helper()
		path := filepath.Join("testdata", file)
		want = append(want, path)
		err := alerting.CheckRuleFiles(path)
		for _, w := range want {
			require.ErrorContains(t, err, w)
		}
		cfg := testConfig()
		cfg.RuleFiles = []string{path}
		a, err := alerting.New(cfg, alerting.Settings{}, alerting.Deps{DB: sqliteDB(t), Query: openStore(t)})
		require.NoError(t, err)
		err = a.Start(context.Background())
		for _, w := range want {
			require.ErrorContains(t, err, w)
		}
		require.NoError(t, a.Shutdown(context.Background()))
	}
	f("badexpr.bad.yaml", "7:15", `"Broken"`)
	f("badyaml.bad.yaml", `not a valid duration string: "ten minutes"`)
	f("unknownfield.bad.yaml", "line 6", "field severity not found")
	f("duplicate.bad.yaml", `groupname: "same" is repeated`)
	f("badtemplate.bad.yaml", `group "broken", rule 1, "X": annotation "summary"`, "unclosed action")
	require.NoError(t, alerting.CheckRuleFiles("testdata/fast.good.yaml", "testdata/restore.good.yaml"))

	cfg := testConfig()
	cfg.RuleFiles = []string{"testdata/missing.yaml"}
	_, err := alerting.New(cfg, alerting.Settings{}, alerting.Deps{DB: sqliteDB(t), Query: openStore(t)})
	require.ErrorContains(t, err, `rule_files "testdata/missing.yaml": no such file`)
}

// TestRuleAlertLifecycle evaluates a rule with `for` against the embedded
// store: pending, then firing, then resolved, each in the history and in
// the notifications.
func TestRuleAlertLifecycle(t *testing.T) {
	st := openStore(t)
	c := newCapture()
	cfg := testConfig()
	cfg.RuleFiles = []string{"testdata/fast.good.yaml"}
	cfg.Notifications.Config = `route: {receiver: team, group_wait: 0s, group_interval: 200ms, repeat_interval: 1h, group_by: [alertname]}
receivers: [{name: team}]`
	reg := prometheus.NewRegistry()
	a := start(t, cfg, alerting.Settings{Integrations: c.integrations("team"), Registerer: reg}, alerting.Deps{DB: sqliteDB(t), Query: st, Appendable: st.DB()})
	ctx := context.Background()
	write(t, st, "test_load", 0.9, "vm_id", "vm-1")

	eventually(t, 5*time.Second, func() bool {
		as, _ := a.Alerts(ctx, alerting.AlertsQuery{State: alerting.StatePending})
		return len(as) == 1
	}, "alert never pending")
	as, err := a.Alerts(ctx, alerting.AlertsQuery{})
	require.NoError(t, err)
	require.Equal(t, "TestLoadHigh", as[0].Name())
	require.Equal(t, "load on vm-1 is 0.9", as[0].Annotations["summary"])
	require.Equal(t, alerting.SourceRule, as[0].Source)

	n := c.waitFor(t, 10*time.Second, hasAlert("TestLoadHigh", false))
	require.Equal(t, "team", n.receiver)
	// The notification is sent during the evaluation; the state is
	// recorded right after it.
	eventually(t, 5*time.Second, func() bool {
		as, _ = a.Alerts(ctx, alerting.AlertsQuery{})
		return len(as) == 1 && as[0].State == alerting.StateFiring
	}, "alert never firing")
	// `for: 2s` held: pending for at least two seconds before firing.
	require.GreaterOrEqual(t, as[0].FiredAt.Sub(as[0].ActiveAt), 2*time.Second)

	// The recording rule reached the store through the appendable.
	eventually(t, 5*time.Second, func() bool {
		q, err := st.Engine().NewInstantQuery(ctx, st.Queryable(), nil, `test:load:doubled`, time.Now())
		require.NoError(t, err)
		defer q.Close()
		v, err := q.Exec(ctx).Vector()
		return err == nil && len(v) == 1 && v[0].F == 1.8
	}, "recording rule result missing")

	// Drop the load: the alert resolves.
	write(t, st, "test_load", 0.1, "vm_id", "vm-1")
	c.waitFor(t, 10*time.Second, hasAlert("TestLoadHigh", true))
	eventually(t, 5*time.Second, func() bool {
		as, _ := a.Alerts(ctx, alerting.AlertsQuery{})
		return len(as) == 0
	}, "alert still active")

	h, err := a.History(ctx, alerting.HistoryQuery{Alertname: "TestLoadHigh"})
	require.NoError(t, err)
	var steps []string
	for i := len(h) - 1; i >= 0; i-- {
		steps = append(steps, h[i].From+">"+h[i].To)
	}
	require.Equal(t, []string{"inactive>pending", "pending>firing", "firing>resolved"}, steps)
	require.Equal(t, "vm-1", h[0].Labels["vm_id"])
	require.Equal(t, 3.0, testutil.ToFloat64(mustCounter(t, reg, "novacron_alerting_transitions_total")))
	problems, err := testutil.GatherAndLint(reg, "novacron_alerting_transitions_total", "novacron_alerting_alerts", "novacron_alerting_events_total")
	require.NoError(t, err)
	require.Empty(t, problems)
}

func mustCounter(t *testing.T, reg prometheus.Gatherer, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sum"})
	c.Add(sum)
	return c
}

// TestForStateSurvivesRestart checks that a pending alert's activation
// time is restored after a restart, on both state databases.
func TestForStateSurvivesRestart(t *testing.T) {
	backends(t, func(t *testing.T, newDB func(t testing.TB) *statedb.DB) {
		st := openStore(t)
		db := newDB(t)
		cfg := testConfig()
		cfg.RuleFiles = []string{"testdata/restore.good.yaml"}
		ctx := context.Background()
		write(t, st, "test_burn", 1, "vm_id", "vm-9")
		a, err := alerting.New(cfg, alerting.Settings{}, alerting.Deps{DB: db, Query: st})
		require.NoError(t, err)
		require.NoError(t, a.Start(ctx))
		var first time.Time
		eventually(t, 5*time.Second, func() bool {
			as, _ := a.Alerts(ctx, alerting.AlertsQuery{})
			if len(as) == 1 {
				first = as[0].ActiveAt
			}
			return len(as) == 1
		}, "no pending alert")
		time.Sleep(1200 * time.Millisecond) // a few evaluations write the for state
		require.NoError(t, a.Shutdown(ctx))

		write(t, st, "test_burn", 1, "vm_id", "vm-9")
		b, err := alerting.New(cfg, alerting.Settings{}, alerting.Deps{DB: db, Query: st})
		require.NoError(t, err)
		require.NoError(t, b.Start(ctx))
		defer b.Shutdown(ctx)
		// The first evaluation after the restart starts afresh; the
		// restore that follows brings back the old activation time.
		eventually(t, 5*time.Second, func() bool {
			as, _ := b.Alerts(ctx, alerting.AlertsQuery{})
			return len(as) == 1 && as[0].ActiveAt.Sub(first).Abs() < time.Second
		}, "activation time not restored (was %s)", first)
		h, err := b.History(ctx, alerting.HistoryQuery{Alertname: "TestSlowBurn"})
		require.NoError(t, err)
		require.Len(t, h, 1, "the restart must not record the alert as new again: %+v", h)
	})
}

// TestEventAlerts turns events into alerts and back, on both state
// databases, and checks that they survive a restart.
func TestEventAlerts(t *testing.T) {
	backends(t, func(t *testing.T, newDB func(t testing.TB) *statedb.DB) {
		db := newDB(t)
		ctx := context.Background()
		c := newCapture()
		cfg := testConfig()
		cfg.ExternalURL = "http://novacron.example:8090"
		cfg.Notifications.Config = `route: {receiver: team, group_wait: 0s, group_interval: 100ms, repeat_interval: 1h, group_by: ['...']}
receivers: [{name: team}]`
		set := alerting.Settings{Integrations: c.integrations("team")}
		a := start(t, cfg, set, alerting.Deps{DB: db, Query: openStore(t)})
		t0 := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
		require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{
			{ID: "a1", Kind: novacron.EventAnomalyOpened, Time: t0, Source: "anomaly", VMID: "vm-7", Host: "host-02",
				Labels: map[string]string{"metric": "novacron_vm_cpu_usage_ratio", "vm": "web-7"}, Severity: "warning",
				Summary: "CPU 4.2 sigma above baseline", Evidence: `novacron_vm_cpu_usage_ratio{vm_id="vm-7"}`},
			{ID: "f1", Kind: novacron.EventForecastBreach, Time: t0, VMID: "vm-8", Labels: map[string]string{"metric": "novacron_vm_disk_usage_ratio"}, Severity: "critical"},
			{ID: "x", Kind: novacron.EventRecommendation, VMID: "vm-7"},
		}))
		as, err := a.Alerts(ctx, alerting.AlertsQuery{Source: alerting.SourceEvent})
		require.NoError(t, err)
		require.Len(t, as, 2)
		an := as[0]
		require.Equal(t, map[string]string{"alertname": "NovaCronAnomaly", "vm_id": "vm-7", "vm": "web-7", "host": "host-02",
			"metric": "novacron_vm_cpu_usage_ratio", "severity": "warning"}, an.Labels)
		require.Equal(t, "CPU 4.2 sigma above baseline", an.Annotations["summary"])
		require.Equal(t, `novacron_vm_cpu_usage_ratio{vm_id="vm-7"}`, an.Annotations["evidence"])
		require.Equal(t, "http://127.0.0.1:3000/d/novacron-vm-detail/vm-detail?var-vm_id=vm-7", an.Annotations["dashboard"])
		require.True(t, an.ActiveAt.Equal(t0))
		n := c.waitFor(t, 5*time.Second, hasAlert("NovaCronAnomaly", false))
		require.Contains(t, n.alerts[0].GeneratorURL, "http://novacron.example:8090/graph?g0.expr=")

		// An update keeps the alert; the close resolves it.
		require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{{ID: "a1u", Kind: novacron.EventAnomalyUpdated, VMID: "vm-7", Host: "host-02",
			Labels: map[string]string{"metric": "novacron_vm_cpu_usage_ratio", "vm": "web-7"}, Severity: "warning", Summary: "now 5 sigma"}}))
		as, _ = a.Alerts(ctx, alerting.AlertsQuery{Matchers: mustMatchers(t, `alertname="NovaCronAnomaly"`)})
		require.Len(t, as, 1)
		require.Equal(t, "now 5 sigma", as[0].Annotations["summary"])
		require.True(t, as[0].ActiveAt.Equal(t0), "an update must not restart the alert")

		require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{{ID: "a1c", Kind: novacron.EventAnomalyClosed, VMID: "vm-7", Host: "host-02",
			Labels: map[string]string{"metric": "novacron_vm_cpu_usage_ratio", "vm": "web-7"}}}))
		c.waitFor(t, 5*time.Second, hasAlert("NovaCronAnomaly", true))
		as, _ = a.Alerts(ctx, alerting.AlertsQuery{})
		require.Len(t, as, 1)
		require.Equal(t, "NovaCronForecastBreach", as[0].Name())
		require.NoError(t, a.Shutdown(ctx))

		// After a restart the forecast alert is still there and resolves
		// once event_resolve_timeout passes without a refresh.
		cfg.EventResolveTimeout = 300 * time.Millisecond
		b := start(t, cfg, set, alerting.Deps{DB: db, Query: openStore(t)})
		as, _ = b.Alerts(ctx, alerting.AlertsQuery{})
		require.Len(t, as, 1)
		c.waitFor(t, 5*time.Second, hasAlert("NovaCronForecastBreach", true))
		eventually(t, 5*time.Second, func() bool {
			as, _ := b.Alerts(ctx, alerting.AlertsQuery{})
			return len(as) == 0
		}, "forecast alert did not time out")
		h, err := b.History(ctx, alerting.HistoryQuery{})
		require.NoError(t, err)
		require.Len(t, h, 4)
		h, err = b.History(ctx, alerting.HistoryQuery{Matchers: mustMatchers(t, `vm_id="vm-7"`)})
		require.NoError(t, err)
		require.Len(t, h, 2)
		require.Equal(t, "resolved", h[0].To)
		h, err = b.History(ctx, alerting.HistoryQuery{Limit: 1})
		require.NoError(t, err)
		require.Len(t, h, 1)
		older, err := b.History(ctx, alerting.HistoryQuery{Before: h[0].ID, Limit: 10})
		require.NoError(t, err)
		require.Len(t, older, 3)
	})
}

func mustMatchers(t testing.TB, s string) []*alerting.Matcher {
	t.Helper()
	ms, err := alerting.ParseMatchers(s)
	require.NoError(t, err)
	return ms
}
