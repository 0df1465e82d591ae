package actuator_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/actuator"
)

func TestParseWebhook(t *testing.T) {
	evs, err := actuator.ParseWebhook(strings.NewReader(`{"version":"4","groupKey":"g","alerts":[
	 {"status":"firing","labels":{"alertname":"A","vm_id":"vm-1","host":"h1","severity":"critical"},"annotations":{"summary":"s"},"startsAt":"2026-03-02T00:00:00Z","generatorURL":"http://x/graph"},
	 {"status":"resolved","labels":{"alertname":"B"}}]}`))
	require.NoError(t, err)
	require.Len(t, evs, 1)
	ev := evs[0]
	require.Equal(t, actuator.EventAlert, ev.Kind)
	require.Equal(t, "vm-1", ev.VMID)
	require.Equal(t, "h1", ev.Host)
	require.Equal(t, "critical", ev.Severity)
	require.Equal(t, "s", ev.Summary)
	require.Equal(t, "http://x/graph", ev.Evidence)
	require.Equal(t, "alertmanager/g/map[alertname:A host:h1 severity:critical vm_id:vm-1]/1772409600", ev.ID, "without a fingerprint, group key and labels")

	for _, bad := range []string{``, `{`, `[]`, `{"version":"3","alerts":[]}`, `{"version":4}`} {
		_, err := actuator.ParseWebhook(strings.NewReader(bad))
		require.Equal(t, novacron.EINVALID, novacron.ErrorCode(err), "%q: %v", bad, err)
	}
}

func FuzzParseWebhook(f *testing.F) {
	f.Add([]byte(`{"version":"4","alerts":[{"status":"firing","labels":{"alertname":"A","vm_id":"v"},"fingerprint":"f","startsAt":"2026-03-02T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":"4","alerts":[{"status":"resolved"},{"labels":null}]}`))
	f.Add([]byte(`{"version":"3"}`))
	f.Add([]byte(`{"version":"4","alerts":[{"startsAt":"not a time"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := actuator.ParseWebhook(bytes.NewReader(b))
		if err != nil {
			require.Equal(t, novacron.EINVALID, novacron.ErrorCode(err), "%v", err)
			require.Nil(t, evs)
			return
		}
		var msg actuator.WebhookMessage
		require.NoError(t, json.NewDecoder(bytes.NewReader(b)).Decode(&msg), "accepted input decodes")
		require.Equal(t, "4", msg.Version)
		firing := 0
		for _, al := range msg.Alerts {
			if al.Status != "resolved" {
				firing++
			}
		}
		require.Len(t, evs, firing, "one event per alert not resolved")
		for _, ev := range evs {
			require.Equal(t, actuator.EventAlert, ev.Kind)
			require.Equal(t, "alertmanager", ev.Source)
			require.NotEmpty(t, ev.ID)
			require.Equal(t, ev.Labels["vm_id"], ev.VMID)
		}
	})
}
