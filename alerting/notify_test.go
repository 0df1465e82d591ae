package alerting_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/novacron/novacron"
	"github.com/novacron/novacron/alerting"
	"github.com/novacron/novacron/internal/testserver"
)

// recorder is a loopback HTTP receiver keeping request bodies by path.
type recorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	body map[string][][]byte
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{body: map[string][][]byte{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.body[req.URL.Path] = append(r.body[req.URL.Path], b)
		r.mu.Unlock()
		if req.URL.Path == "/pagerduty" {
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"status":"success","message":"Event processed","dedup_key":"x"}`))
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) get(path string) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.body[path]...)
}

// smtpSink is an in-process SMTP server keeping each message's data.
type smtpSink struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []string
}

func newSMTPSink(t *testing.T) *smtpSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &smtpSink{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s
}

func (s *smtpSink) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	say := func(l string) { fmt.Fprintf(c, "%s\r\n", l) }
	say("220 sink ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250-sink")
			say("250 8BITMIME")
		case strings.HasPrefix(cmd, "DATA"):
			say("354 go on")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if strings.TrimRight(l, "\r\n") == "." {
					break
				}
				b.WriteString(l)
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, b.String())
			s.mu.Unlock()
			say("250 queued")
		case strings.HasPrefix(cmd, "QUIT"):
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

func (s *smtpSink) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

// TestReceivers delivers one event alert to webhook, Slack, PagerDuty and
// email receivers on loopback and checks each payload.
func TestReceivers(t *testing.T) {
	rec := newRecorder(t)
	smtp := newSMTPSink(t)
	cfg := testConfig()
	cfg.Notifications.Config = fmt.Sprintf(`route:
  receiver: all
  group_by: [alertname, vm_id]
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: all
    webhook_configs: [{url: %[1]s/webhook, send_resolved: true}]
    slack_configs: [{api_url: %[1]s/slack, channel: '#ops', send_resolved: true}]
    pagerduty_configs: [{routing_key: rk-123, url: %[1]s/pagerduty, send_resolved: true}]
    email_configs: [{to: ops@example.com, from: novacron@example.com, smarthost: '%[2]s', require_tls: false, send_resolved: true}]
`, rec.srv.URL, smtp.ln.Addr())
	a := start(t, cfg, alerting.Settings{}, alerting.Deps{DB: sqliteDB(t), Query: openStore(t)})
	ctx := context.Background()
	ev := novacron.Event{ID: "i1", Kind: novacron.EventIncident, VMID: "vm-3", Host: "host-01", Severity: "critical", Summary: "VM unreachable"}
	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{ev}))

	eventually(t, 20*time.Second, func() bool {
		return len(rec.get("/webhook")) > 0 && len(rec.get("/slack")) > 0 && len(rec.get("/pagerduty")) > 0 && len(smtp.messages()) > 0
	}, "not every receiver was notified")

	var wh struct {
		Version, Status, Receiver, GroupKey string
		Alerts                              []struct {
			Status       string
			Labels       map[string]string
			Annotations  map[string]string
			Fingerprint  string
			GeneratorURL string `json:"generatorURL"`
		}
		GroupLabels map[string]string `json:"groupLabels"`
	}
	require.NoError(t, json.Unmarshal(rec.get("/webhook")[0], &wh))
	require.Equal(t, "4", wh.Version)
	require.Equal(t, "firing", wh.Status)
	require.Equal(t, "all", wh.Receiver)
	require.Equal(t, map[string]string{"alertname": "NovaCronIncident", "vm_id": "vm-3"}, wh.GroupLabels)
	require.Len(t, wh.Alerts, 1)
	require.Equal(t, "VM unreachable", wh.Alerts[0].Annotations["summary"])
	require.Equal(t, "critical", wh.Alerts[0].Labels["severity"])
	require.Len(t, wh.Alerts[0].Fingerprint, 16)

	var slack struct {
		Channel     string
		Attachments []struct{ Title, Text string }
	}
	require.NoError(t, json.Unmarshal(rec.get("/slack")[0], &slack))
	require.Equal(t, "#ops", slack.Channel)
	require.Len(t, slack.Attachments, 1)
	require.Contains(t, slack.Attachments[0].Title, "FIRING")
	require.Contains(t, slack.Attachments[0].Title, "NovaCronIncident")

	var pd struct {
		RoutingKey  string `json:"routing_key"`
		EventAction string `json:"event_action"`
		DedupKey    string `json:"dedup_key"`
		Payload     struct {
			Summary, Severity, Source string
		}
	}
	require.NoError(t, json.Unmarshal(rec.get("/pagerduty")[0], &pd))
	require.Equal(t, "rk-123", pd.RoutingKey)
	require.Equal(t, "trigger", pd.EventAction)
	require.NotEmpty(t, pd.DedupKey)
	require.Contains(t, pd.Payload.Summary, "NovaCronIncident")

	mail := smtp.messages()[0]
	require.Contains(t, mail, "To: ops@example.com")
	require.Contains(t, mail, "NovaCronIncident")

	// Closing the incident sends the resolution everywhere.
	ev.Details = map[string]any{"status": "resolved"}
	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{ev}))
	eventually(t, 20*time.Second, func() bool {
		pds := rec.get("/pagerduty")
		return len(pds) > 1 && strings.Contains(string(pds[len(pds)-1]), `"event_action":"resolve"`) &&
			len(rec.get("/webhook")) > 1 && strings.Contains(string(rec.get("/webhook")[1]), `"status":"resolved"`)
	}, "resolution not delivered")
}

// TestForwardToAlertmanager sends alerts to a real Alertmanager through its
// API v2; it delivers them to its webhook receiver.
func TestForwardToAlertmanager(t *testing.T) {
	am := testserver.AlertmanagerServer(t)
	cfg := testConfig()
	cfg.Forward.URLs = []string{am.URL()}
	a := start(t, cfg, alerting.Settings{}, alerting.Deps{DB: sqliteDB(t), Query: openStore(t)})
	ctx := context.Background()
	ev := novacron.Event{ID: "fw1", Kind: novacron.EventAnomalyOpened, VMID: "vm-fw", Labels: map[string]string{"metric": "novacron_vm_memory_usage_ratio"}, Summary: "memory anomaly"}
	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{ev}))
	type payload struct {
		Version string
		Status  string
		Alerts  []struct {
			Status      string
			Labels      map[string]string
			Annotations map[string]string
		}
	}
	match := func(status string) func([]byte) bool {
		return func(b []byte) bool {
			var p payload
			if json.Unmarshal(b, &p) != nil {
				return false
			}
			for _, al := range p.Alerts {
				if al.Labels["vm_id"] == "vm-fw" && al.Status == status {
					return true
				}
			}
			return false
		}
	}
	b, err := am.WaitWebhook(20*time.Second, match("firing"))
	require.NoError(t, err)
	var p payload
	require.NoError(t, json.Unmarshal(b, &p))
	require.Equal(t, "4", p.Version)
	require.Equal(t, "memory anomaly", p.Alerts[0].Annotations["summary"])
	require.Equal(t, "NovaCronAnomaly", p.Alerts[0].Labels["alertname"])

	ev.Kind = novacron.EventAnomalyClosed
	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{ev}))
	_, err = am.WaitWebhook(20*time.Second, match("resolved"))
	require.NoError(t, err)
}

// TestSilencesAndInhibition checks that a silence mutes notifications
// until it is expired, that silences survive a restart, and that an
// action in flight on a VM inhibits its other alerts.
func TestSilencesAndInhibition(t *testing.T) {
	db := sqliteDB(t)
	c := newCapture()
	cfg := testConfig()
	cfg.Notifications.Config = `route: {receiver: team, group_wait: 0s, group_interval: 200ms, repeat_interval: 300ms, group_by: ['...']}
receivers: [{name: team}]`
	set := alerting.Settings{Integrations: c.integrations("team")}
	a := start(t, cfg, set, alerting.Deps{DB: db, Query: openStore(t)})
	ctx := context.Background()

	// Invalid silences are refused with the reasons.
	_, err := a.CreateSilence(ctx, alerting.Silence{Matchers: []alerting.SilenceMatcher{{Name: "vm_id", Value: ".*", IsRegex: true}}, EndsAt: time.Now().Add(-time.Hour)})
	require.Equal(t, novacron.EINVALID, novacron.ErrorCode(err))
	require.ErrorContains(t, err, "createdBy is required")
	require.ErrorContains(t, err, "endsAt must be after startsAt")
	require.ErrorContains(t, err, "would mute every alert")

	sil, err := a.CreateSilence(ctx, alerting.Silence{
		Matchers:  []alerting.SilenceMatcher{{Name: "vm_id", Value: "vm-s"}},
		EndsAt:    time.Now().Add(time.Hour),
		CreatedBy: "ops", Comment: "maintenance",
	})
	require.NoError(t, err)
	require.NotEmpty(t, sil.ID)
	require.Equal(t, "active", sil.Status.State)

	anomaly := func(vm string) novacron.Event {
		return novacron.Event{ID: "s-" + vm, Kind: novacron.EventAnomalyOpened, VMID: vm, Labels: map[string]string{"metric": "m"}}
	}
	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{anomaly("vm-s"), anomaly("vm-other")}))
	c.waitFor(t, 5*time.Second, func(n notification) bool { return string(n.alerts[0].Labels["vm_id"]) == "vm-other" })
	time.Sleep(time.Second) // several repeat intervals
	for _, n := range c.all() {
		require.NotEqual(t, "vm-s", string(n.alerts[0].Labels["vm_id"]), "silenced alert was notified")
	}
	as, err := a.Alerts(ctx, alerting.AlertsQuery{Matchers: mustMatchers(t, `vm_id="vm-s"`)})
	require.NoError(t, err)
	require.Equal(t, []string{sil.ID}, as[0].SilencedBy)

	// Silences survive a restart.
	require.NoError(t, a.Shutdown(ctx))
	b := start(t, cfg, set, alerting.Deps{DB: db, Query: openStore(t)})
	sils, err := b.Silences(ctx)
	require.NoError(t, err)
	require.Len(t, sils, 1)
	require.Equal(t, sil.ID, sils[0].ID)
	require.Equal(t, "maintenance", sils[0].Comment)

	// Expiring it lets the notifications through.
	require.NoError(t, b.ExpireSilence(ctx, sil.ID))
	require.Equal(t, novacron.ENOTFOUND, novacron.ErrorCode(b.ExpireSilence(ctx, "no-such-silence")))
	sils, _ = b.Silences(ctx)
	require.Equal(t, "expired", sils[0].Status.State)
	require.NoError(t, b.ConsumeEvents(ctx, []novacron.Event{anomaly("vm-s")}))
	c.waitFor(t, 5*time.Second, func(n notification) bool { return string(n.alerts[0].Labels["vm_id"]) == "vm-s" })

	// An action in flight on vm-r inhibits vm-r's anomaly, not vm-other's.
	require.NoError(t, b.SetRemediation(ctx, "vm-r", "migrate", true))
	time.Sleep(300 * time.Millisecond) // the inhibitor sees the source alert
	require.NoError(t, b.ConsumeEvents(ctx, []novacron.Event{anomaly("vm-r")}))
	time.Sleep(time.Second)
	for _, n := range c.all() {
		for _, al := range n.alerts {
			if string(al.Labels["vm_id"]) == "vm-r" {
				require.Equal(t, alerting.AlertRemediation, string(al.Labels["alertname"]), "alert of a VM under remediation was notified")
			}
		}
	}
	as, _ = b.Alerts(ctx, alerting.AlertsQuery{Matchers: mustMatchers(t, `alertname="NovaCronAnomaly",vm_id="vm-r"`)})
	require.True(t, as[0].Inhibited)
	// When the action ends, the anomaly is notified.
	require.NoError(t, b.SetRemediation(ctx, "vm-r", "migrate", false))
	c.waitFor(t, 5*time.Second, func(n notification) bool {
		return string(n.alerts[0].Labels["vm_id"]) == "vm-r" && string(n.alerts[0].Labels["alertname"]) == alerting.AlertAnomaly
	})
}

// TestGroupTiming checks group_wait, group_interval and deduplication as
// Alertmanager documents them: the first notification of a group waits
// group_wait, alerts joining later come after group_interval, and nothing
// is repeated before repeat_interval.
func TestGroupTiming(t *testing.T) {
	c := newCapture()
	cfg := testConfig()
	cfg.ResendDelay = time.Hour // no resends from NovaCron during the test
	cfg.Notifications.Config = `route: {receiver: team, group_wait: 1s, group_interval: 2s, repeat_interval: 1h, group_by: [host]}
receivers: [{name: team}]`
	a := start(t, cfg, alerting.Settings{Integrations: c.integrations("team")}, alerting.Deps{DB: sqliteDB(t), Query: openStore(t)})
	ctx := context.Background()
	ev := func(vm string) novacron.Event {
		return novacron.Event{ID: vm, Kind: novacron.EventAnomalyOpened, VMID: vm, Host: "h1", Labels: map[string]string{"metric": "m"}}
	}
	t0 := time.Now()
	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{ev("g1")}))
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{ev("g2")}))
	first := c.waitFor(t, 5*time.Second, func(notification) bool { return true })
	require.GreaterOrEqual(t, first.at.Sub(t0), 900*time.Millisecond, "group_wait not honoured")
	require.Len(t, first.alerts, 2, "alerts arriving within group_wait share the first notification")

	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{ev("g3")}))
	second := c.waitFor(t, 5*time.Second, func(n notification) bool { return len(n.alerts) == 3 })
	require.GreaterOrEqual(t, second.at.Sub(first.at), 1900*time.Millisecond, "group_interval not honoured")
	// Re-sending the same alerts changes nothing: no new notification.
	require.NoError(t, a.ConsumeEvents(ctx, []novacron.Event{ev("g1"), ev("g2"), ev("g3")}))
	time.Sleep(2500 * time.Millisecond)
	require.Len(t, c.all(), 2, "unchanged group was notified again before repeat_interval")
}
