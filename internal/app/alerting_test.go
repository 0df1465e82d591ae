package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRunEvaluatesRulesAndNotifiesWebhook is `novacron run` with the
// shipped rule set loaded and a webhook receiver configured: a rule that
// holds on the simulated fleet fires and the webhook receives
// Alertmanager's version 4 payload.
func TestRunEvaluatesRulesAndNotifiesWebhook(t *testing.T) {
	var mu sync.Mutex
	var payloads []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var p map[string]any
		if json.Unmarshal(b, &p) == nil {
			mu.Lock()
			payloads = append(payloads, p)
			mu.Unlock()
		}
	}))
	t.Cleanup(hook.Close)

	cfg := testConfig(t)
	cfg.Alerting.EvaluationInterval = 500 * time.Millisecond
	cfg.Alerting.ResendDelay = time.Second
	cfg.Alerting.RuleFiles = []string{writeFile(t, t.TempDir(), "fleet.yaml", `
groups:
  - name: test-fleet
    interval: 500ms
    rules:
      - alert: SimFleetPresent
        expr: count(novacron_vm_up{provider="sim"}) > 0
        labels:
          severity: info
        annotations:
          summary: "{{ $value }} simulated VMs report"
`)}
	cfg.Alerting.Notifications.Config = fmt.Sprintf(`
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: hook
    webhook_configs:
      - url: %s
        send_resolved: true
`, hook.URL)
	a := openApp(t, cfg)
	base, tok := a.APIURL(), a.Token()

	// The shipped rule set is loaded beside the file.
	var rules struct {
		Groups []struct {
			Name string `json:"name"`
		} `json:"groups"`
	}
	var raw json.RawMessage
	require.Equal(t, http.StatusOK, apiGet(t, base, tok, "/api/v1/rules", &raw))
	require.NoError(t, json.Unmarshal(raw, &rules), string(raw))
	var names []string
	for _, g := range rules.Groups {
		names = append(names, g.Name)
	}
	require.Contains(t, names, "novacron-vm")
	require.Contains(t, names, "test-fleet")

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range payloads {
			if p["version"] == "4" && strings.Contains(fmt.Sprint(p["groupLabels"]), "SimFleetPresent") && p["status"] == "firing" {
				return true
			}
		}
		return false
	}, time.Minute, 100*time.Millisecond, "the webhook receives the firing alert")

	require.Eventually(t, func() bool {
		var alerts json.RawMessage
		return apiGet(t, base, tok, "/api/v1/alerts", &alerts) == http.StatusOK && strings.Contains(string(alerts), "SimFleetPresent")
	}, 30*time.Second, 100*time.Millisecond, "the alert is listed by the API")
}
