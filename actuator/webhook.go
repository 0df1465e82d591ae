package actuator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	novacron "github.com/novacron/novacron"
)

// MaxWebhookBytes caps an Alertmanager webhook body.
const MaxWebhookBytes = 4 << 20

// WebhookMessage is Alertmanager's webhook payload, version 4.
type WebhookMessage struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []WebhookAlert    `json:"alerts"`
}

// WebhookAlert is one alert of a webhook payload.
type WebhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// ParseWebhook decodes an Alertmanager webhook body (version 4) into
// events of kind "alert", one per firing alert; resolved alerts are
// skipped. The alert's labels become the event's labels; vm_id, host and
// severity labels fill those fields.
func ParseWebhook(r io.Reader) ([]novacron.Event, error) {
	var msg WebhookMessage
	dec := json.NewDecoder(io.LimitReader(r, MaxWebhookBytes))
	if err := dec.Decode(&msg); err != nil {
		return nil, novacron.Errorf(novacron.EINVALID, "decode webhook payload: %v", err)
	}
	if msg.Version != "4" {
		return nil, novacron.Errorf(novacron.EINVALID, "webhook payload version %q, want \"4\"", msg.Version)
	}
	var out []novacron.Event
	for _, al := range msg.Alerts {
		if al.Status == "resolved" {
			continue
		}
		ls := make(map[string]string, len(al.Labels))
		for k, v := range al.Labels {
			ls[k] = v
		}
		id := al.Fingerprint
		if id == "" {
			id = fmt.Sprintf("%s/%v", msg.GroupKey, al.Labels)
		}
		ev := novacron.Event{
			SchemaVersion: novacron.EventSchemaVersion,
			ID:            fmt.Sprintf("alertmanager/%s/%d", id, al.StartsAt.Unix()),
			Kind:          EventAlert,
			Time:          al.StartsAt,
			Source:        "alertmanager",
			VMID:          ls["vm_id"],
			Host:          ls["host"],
			Labels:        ls,
			Summary:       al.Annotations["summary"],
			Severity:      ls["severity"],
			Evidence:      al.GeneratorURL,
		}
		out = append(out, ev)
	}
	return out, nil
}

// ConsumeWebhook parses an Alertmanager webhook body and consumes its
// alerts; it returns how many alerts it took.
func (a *Actuator) ConsumeWebhook(ctx context.Context, r io.Reader) (int, error) {
	evs, err := ParseWebhook(r)
	if err != nil {
		return 0, err
	}
	now := a.now()
	for i := range evs {
		if evs[i].Time.IsZero() {
			evs[i].Time = now
		}
	}
	return len(evs), a.ConsumeEvents(ctx, evs)
}
