package alerting_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/alerting"
	"github.com/novacron/novacron/internal/statedb"
)

func TestThresholdValidate(t *testing.T) {
	f := func(th alerting.Threshold, want ...string) {
		t.Helper()
		if th.Severity == "" {
			th.Severity = "warning"
		}
		if th.Name == "" {
			th.Name = "X"
		}
		err := th.Validate()
		if len(want) == 0 {
			require.NoError(t, err)
			return
		}
		require.Equal(t, novacron.EINVALID, novacron.ErrorCode(err))
		for _, w := range want {
			require.ErrorContains(t, err, w)
		}
	}
	f(alerting.Threshold{Metric: "novacron_vm_cpu_usage_ratio", Op: ">", Value: 0.9, Selector: `tenant="prod"`})
	f(alerting.Threshold{Metric: "novacron_vm_cpu_usage_ratio", Op: ">", Value: 0.9, Selector: `{tenant=~"a|b", host!="h"}`})
	f(alerting.Threshold{Op: "=>"}, "metric is required", `op "=>"`)
	f(alerting.Threshold{Metric: "m", Op: ">", Selector: `tenant=`}, `selector "tenant="`)
	f(alerting.Threshold{ID: "Bad ID", Metric: "m", Op: ">"}, `id "Bad ID"`)
	f(alerting.Threshold{Metric: "m", Op: ">", Severity: "page"}, `severity "page"`)
	f(alerting.Threshold{Metric: "m", Op: ">", Labels: map[string]string{"alertname": "x"}}, `labels: "alertname"`)
	f(alerting.Threshold{Metric: "m", Op: ">", For: model.Duration(-time.Second)}, "for: must be >= 0")
	require.Equal(t, `novacron_vm_cpu_usage_ratio{tenant="prod"} > 0.9`,
		alerting.Threshold{Metric: "novacron_vm_cpu_usage_ratio", Selector: `{tenant="prod"}`, Op: ">", Value: 0.9}.Expr())
}

// TestThresholds creates, fires, updates and deletes a threshold, on both
// state databases.
func TestThresholds(t *testing.T) {
	backends(t, func(t *testing.T, newDB func(t testing.TB) *statedb.DB) {
		st := openStore(t)
		a := start(t, testConfig(), alerting.Settings{}, alerting.Deps{DB: newDB(t), Query: st})
		ctx := context.Background()
		write(t, st, "test_cpu", 0.95, "vm_id", "p1", "tenant", "prod")
		write(t, st, "test_cpu", 0.99, "vm_id", "d1", "tenant", "dev")

		th, err := a.CreateThreshold(ctx, alerting.Threshold{ID: "cpu-prod", Metric: "test_cpu", Selector: `tenant="prod"`, Op: ">", Value: 0.9, Labels: map[string]string{"team": "infra"}})
		require.NoError(t, err)
		require.Equal(t, "ThresholdExceeded", th.Name)
		require.Equal(t, "warning", th.Severity)
		require.False(t, th.CreatedAt.IsZero())
		_, err = a.CreateThreshold(ctx, alerting.Threshold{ID: "cpu-prod", Metric: "test_cpu", Op: ">"})
		require.Equal(t, novacron.ECONFLICT, novacron.ErrorCode(err))

		var fired *alerting.Alert
		eventually(t, 5*time.Second, func() bool {
			as, _ := a.Alerts(ctx, alerting.AlertsQuery{Source: alerting.SourceThreshold, State: alerting.StateFiring})
			if len(as) == 1 {
				fired = as[0]
			}
			return len(as) == 1
		}, "threshold never fired")
		require.Equal(t, "p1", fired.Labels["vm_id"], "the selector must keep only tenant=prod")
		require.Equal(t, "cpu-prod", fired.Labels["threshold_id"])
		require.Equal(t, "infra", fired.Labels["team"])
		require.Equal(t, "VM p1: test_cpu is 950m (threshold > 0.9)", fired.Annotations["summary"])
		groups := a.RuleGroups()
		require.Len(t, groups, 1)
		require.Equal(t, alerting.ThresholdGroup, groups[0].Name)

		// Raising the threshold above the value resolves the alert.
		th.Value = 0.97
		_, err = a.UpdateThreshold(ctx, th)
		require.NoError(t, err)
		eventually(t, 5*time.Second, func() bool {
			as, _ := a.Alerts(ctx, alerting.AlertsQuery{})
			return len(as) == 0
		}, "alert did not resolve after the update")
		got, err := a.Threshold(ctx, "cpu-prod")
		require.NoError(t, err)
		require.Equal(t, 0.97, got.Value)
		list, err := a.Thresholds(ctx)
		require.NoError(t, err)
		require.Len(t, list, 1)

		require.NoError(t, a.DeleteThreshold(ctx, "cpu-prod"))
		require.Equal(t, novacron.ENOTFOUND, novacron.ErrorCode(a.DeleteThreshold(ctx, "cpu-prod")))
		_, err = a.Threshold(ctx, "cpu-prod")
		require.Equal(t, novacron.ENOTFOUND, novacron.ErrorCode(err))
		require.Empty(t, a.RuleGroups())
	})
}
