package alerting

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/common/model"

	"github.com/novacron/novacron"
)

// Alert names of event alerts.
const (
	AlertAnomaly     = "NovaCronAnomaly"
	AlertForecast    = "NovaCronForecastBreach"
	AlertIncident    = "NovaCronIncident"
	AlertRemediation = "NovaCronRemediationInProgress"
)

// eventScope is the tracker scope of event alerts.
const eventScope = "events"

// Action states (Event.Details["state"] of action_state events) during
// which an action is in flight and the VM's alerts are inhibited.
var inFlightActionStates = map[string]bool{
	"pending": true, "queued": true, "running": true, "in_progress": true, "verifying": true,
}

// eventAlert is an alert raised by events, keyed by its identity: the
// alert name and labels without severity, so an update that changes the
// severity replaces the alert.
type eventAlert struct {
	alert    *Alert
	lastSeen time.Time
}

// ConsumeEvents turns events into alerts (see docs/alerting.md):
//
//   - anomaly_opened and anomaly_updated fire NovaCronAnomaly,
//     anomaly_closed resolves it;
//   - forecast_breach fires NovaCronForecastBreach;
//   - incident fires NovaCronIncident, or resolves it when
//     Details["status"] is "resolved" or "closed";
//   - action_state fires NovaCronRemediationInProgress (label
//     remediation="in_progress") while Details["state"] is pending, queued,
//     running, in_progress or verifying, and resolves it otherwise;
//   - other kinds are ignored.
//
// The alert's labels are alertname, vm_id, vm, host, metric and severity,
// plus the event's labels; its annotations are summary (the explanation),
// evidence (the PromQL query), dashboard (a link), event_id and source.
// Alerts no event has refreshed for event_resolve_timeout resolve.
// ConsumeEvents returns an error only when the state database fails (the
// subscriber retries the record).
func (a *Alerting) ConsumeEvents(ctx context.Context, events []novacron.Event) error {
	a.evMu.Lock()
	defer a.evMu.Unlock()
	now := a.now()
	var send []*alert.Alert
	changed := false
	for _, e := range events {
		name, fire, ok := eventAlertName(e)
		if !ok {
			a.m.events.WithLabelValues("ignored").Inc()
			continue
		}
		ls := a.eventLabels(name, e)
		key := identity(ls)
		prev := a.events[key]
		if !fire {
			a.m.events.WithLabelValues("resolve").Inc()
			if prev != nil {
				delete(a.events, key)
				send = append(send, a.eventAMAlert(prev.alert, now, true))
				changed = true
			}
			continue
		}
		a.m.events.WithLabelValues("alert").Inc()
		al := &Alert{
			Fingerprint: fingerprint(ls), Source: SourceEvent, Labels: ls, Annotations: a.eventAnnotations(e),
			State: StateFiring, ActiveAt: eventTime(e, now), FiredAt: eventTime(e, now), UpdatedAt: now,
		}
		if prev != nil {
			if prev.alert.Fingerprint == al.Fingerprint {
				al.ActiveAt, al.FiredAt = prev.alert.ActiveAt, prev.alert.FiredAt
			} else {
				// The labels (severity) changed: the old alert ends.
				send = append(send, a.eventAMAlert(prev.alert, now, true))
			}
		}
		a.events[key] = &eventAlert{alert: al, lastSeen: now}
		send = append(send, a.eventAMAlert(al, now, false))
		changed = true
	}
	if changed {
		if err := a.syncEvents(ctx, now); err != nil {
			return err
		}
	}
	a.dispatch(ctx, send)
	return nil
}

// eventAlertName maps an event to an alert name and whether it fires (or
// resolves); ok is false for kinds that raise no alert.
func eventAlertName(e novacron.Event) (name string, fire, ok bool) {
	switch e.Kind {
	case novacron.EventAnomalyOpened, novacron.EventAnomalyUpdated:
		return AlertAnomaly, true, true
	case novacron.EventAnomalyClosed:
		return AlertAnomaly, false, true
	case novacron.EventForecastBreach:
		return AlertForecast, true, true
	case novacron.EventIncident:
		st := strings.ToLower(detail(e, "status"))
		return AlertIncident, st != "resolved" && st != "closed", true
	case novacron.EventActionStateChange:
		if e.VMID == "" {
			return "", false, false
		}
		st := strings.ToLower(detail(e, "state"))
		return AlertRemediation, inFlightActionStates[st], true
	}
	return "", false, false
}

func detail(e novacron.Event, key string) string {
	if v, ok := e.Details[key].(string); ok {
		return v
	}
	return e.Labels[key]
}

func eventTime(e novacron.Event, now time.Time) time.Time {
	if e.Time.IsZero() || e.Time.After(now) {
		return now.UTC()
	}
	return e.Time.UTC()
}

// eventLabels builds the label set of an event alert.
func (a *Alerting) eventLabels(name string, e novacron.Event) map[string]string {
	ls := map[string]string{}
	for k, v := range e.Labels {
		if v != "" && model.LabelName(k).IsValid() && !strings.HasPrefix(k, "__") {
			ls[k] = v
		}
	}
	if m := e.Labels[novacron.MetricNameLabel]; m != "" && ls["metric"] == "" {
		ls["metric"] = m
	}
	if e.VMID != "" {
		ls["vm_id"] = e.VMID
		if ls["vm"] == "" {
			ls["vm"] = e.VMID
		}
	}
	if e.Host != "" {
		ls["host"] = e.Host
	}
	sev := e.Severity
	if sev == "" {
		sev = "warning"
	}
	ls["severity"] = sev
	if name == AlertRemediation {
		// Only what identifies the action: the inhibition rule matches on
		// vm_id, and labels must not change while the action runs.
		ls = map[string]string{"vm_id": e.VMID, "severity": "info", RemediationLabel: RemediationInProgress}
		if act := detail(e, "action"); act != "" {
			ls["action"] = act
		}
	}
	delete(ls, "state")
	ls[model.AlertNameLabel] = name
	for k, v := range a.extLbls {
		if _, ok := ls[k]; !ok {
			ls[k] = v
		}
	}
	return ls
}

func identity(ls map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(ls)) {
		if k == "severity" {
			continue
		}
		b.WriteString(k)
		b.WriteByte(0xff)
		b.WriteString(ls[k])
		b.WriteByte(0xfe)
	}
	return b.String()
}

// dashboardData is what dashboard_url's template sees.
type dashboardData struct {
	VMID, Host, Metric, ExternalURL string
}

func (a *Alerting) eventAnnotations(e novacron.Event) map[string]string {
	as := map[string]string{"event_id": e.ID}
	if e.Summary != "" {
		as["summary"] = e.Summary
	} else {
		as["summary"] = fmt.Sprintf("%s on %s", strings.ReplaceAll(e.Kind, "_", " "), firstNonEmpty(e.VMID, e.Host, "the fleet"))
	}
	if e.Evidence != "" {
		as["evidence"] = e.Evidence
	}
	if e.Source != "" {
		as["source"] = e.Source
	}
	if a.dash != nil && (e.VMID != "" || e.Host != "") {
		var b strings.Builder
		metric := e.Labels["metric"]
		if metric == "" {
			metric = e.Labels[novacron.MetricNameLabel]
		}
		if err := a.dash.Execute(&b, dashboardData{VMID: e.VMID, Host: e.Host, Metric: metric, ExternalURL: a.extURL.String()}); err == nil {
			as["dashboard"] = b.String()
		}
	}
	return as
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// eventAMAlert converts an event alert for the notification pipeline:
// firing ones end four resend delays ahead unless refreshed.
func (a *Alerting) eventAMAlert(al *Alert, now time.Time, resolved bool) *alert.Alert {
	ma := model.Alert{
		Labels: toLabelSet(al.Labels), Annotations: toLabelSet(al.Annotations), StartsAt: al.FiredAt,
		GeneratorURL: a.extURL.String(),
	}
	if ev := al.Annotations["evidence"]; ev != "" {
		ma.GeneratorURL = a.generatorURL(ev)
	}
	if resolved {
		ma.EndsAt = now
	} else {
		ma.EndsAt = now.Add(4 * a.cfg.ResendDelay)
	}
	return alert.New(ma, now, false)
}

func (a *Alerting) syncEvents(ctx context.Context, now time.Time) error {
	cur := make([]*Alert, 0, len(a.events))
	for _, ea := range a.events {
		c := *ea.alert
		cur = append(cur, &c)
	}
	err := a.tr.sync(ctx, eventScope, cur, now)
	a.updateGauges()
	return err
}

// restoreEventAlerts reloads the event alerts the tracker loaded from the
// state database; their resolve timeout restarts from UpdatedAt.
func (a *Alerting) restoreEventAlerts() {
	a.evMu.Lock()
	defer a.evMu.Unlock()
	for _, al := range a.tr.scope(eventScope) {
		a.events[identity(al.Labels)] = &eventAlert{alert: al, lastSeen: al.UpdatedAt}
	}
}

// tickEvents resolves event alerts past their timeout and resends the
// others.
func (a *Alerting) tickEvents(ctx context.Context) {
	a.evMu.Lock()
	defer a.evMu.Unlock()
	now := a.now()
	var send []*alert.Alert
	expired := false
	for key, ea := range a.events {
		if now.Sub(ea.lastSeen) >= a.cfg.EventResolveTimeout {
			delete(a.events, key)
			send = append(send, a.eventAMAlert(ea.alert, now, true))
			expired = true
			continue
		}
		send = append(send, a.eventAMAlert(ea.alert, now, false))
	}
	if expired {
		if err := a.syncEvents(ctx, now); err != nil {
			a.logger.Warn("recording resolved event alerts failed", "err", err)
		}
	}
	a.dispatch(ctx, send)
}

// SetRemediation raises (inFlight true) or resolves the remediation alert
// of a VM directly, for an actuator in the same process; across processes
// the actuator publishes action_state events instead.
func (a *Alerting) SetRemediation(ctx context.Context, vmID, action string, inFlight bool) error {
	st := "succeeded"
	if inFlight {
		st = "running"
	}
	return a.ConsumeEvents(ctx, []novacron.Event{{
		ID: "remediation/" + vmID, Kind: novacron.EventActionStateChange, Time: a.now(), Source: "actuator",
		VMID: vmID, Details: map[string]any{"state": st, "action": action},
		Summary: fmt.Sprintf("%s in progress on VM %s", firstNonEmpty(action, "an action"), vmID),
	}})
}
