package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/alert"
)

// forwardQueueSize bounds the alerts waiting to be forwarded; beyond it
// alerts are dropped and counted (the next resend carries them again).
const forwardQueueSize = 10000

// forwarder posts alerts to external Alertmanagers' API v2
// (POST /api/v2/alerts), as Prometheus does, from a bounded queue so rule
// evaluation never waits for a slow Alertmanager.
type forwarder struct {
	urls    []string
	timeout time.Duration
	client  *http.Client
	logger  *slog.Logger
	m       *metrics

	mu      sync.Mutex
	queue   []*alert.Alert
	wake    chan struct{}
	stopped chan struct{}
	done    chan struct{}
}

func newForwarder(cfg ForwardConfig, client *http.Client, logger *slog.Logger, m *metrics) *forwarder {
	urls := make([]string, len(cfg.URLs))
	for i, u := range cfg.URLs {
		urls[i] = strings.TrimSuffix(u, "/") + "/api/v2/alerts"
	}
	return &forwarder{urls: urls, timeout: cfg.Timeout, client: client, logger: logger.With("forward", len(urls)),
		m: m, wake: make(chan struct{}, 1), stopped: make(chan struct{}), done: make(chan struct{})}
}

func (f *forwarder) start() { go f.run() }

func (f *forwarder) enqueue(alerts []*alert.Alert) {
	f.mu.Lock()
	room := forwardQueueSize - len(f.queue)
	if room < len(alerts) {
		f.m.forwarded.WithLabelValues("dropped").Add(float64(len(alerts) - max(room, 0)))
		alerts = alerts[:max(room, 0)]
	}
	f.queue = append(f.queue, alerts...)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *forwarder) run() {
	defer close(f.done)
	for {
		select {
		case <-f.stopped:
			f.flush(context.Background())
			return
		case <-f.wake:
			f.flush(context.Background())
		}
	}
}

// flush sends what is queued, in batches of at most 1000 alerts.
func (f *forwarder) flush(ctx context.Context) {
	for {
		f.mu.Lock()
		n := min(len(f.queue), 1000)
		batch := f.queue[:n:n]
		f.queue = f.queue[n:]
		f.mu.Unlock()
		if n == 0 {
			return
		}
		f.send(ctx, batch)
	}
}

// postableAlert is Alertmanager's API v2 alert.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func (f *forwarder) send(ctx context.Context, alerts []*alert.Alert) {
	body := make([]postableAlert, len(alerts))
	for i, a := range alerts {
		pa := postableAlert{Labels: map[string]string{}, Annotations: map[string]string{}, StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL}
		for k, v := range a.Labels {
			pa.Labels[string(k)] = string(v)
		}
		for k, v := range a.Annotations {
			pa.Annotations[string(k)] = string(v)
		}
		body[i] = pa
	}
	b, err := json.Marshal(body)
	if err != nil {
		f.logger.Error("encoding alerts for forwarding failed", "err", err)
		return
	}
	for _, u := range f.urls {
		if err := f.post(ctx, u, b); err != nil {
			f.m.forwarded.WithLabelValues("error").Add(float64(len(alerts)))
			f.logger.Warn("forwarding alerts failed", "url", u, "alerts", len(alerts), "err", err)
			continue
		}
		f.m.forwarded.WithLabelValues("ok").Add(float64(len(alerts)))
	}
}

func (f *forwarder) post(ctx context.Context, u string, b []byte) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// stop sends what is queued and stops, within ctx.
func (f *forwarder) stop(ctx context.Context) error {
	close(f.stopped)
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("forwarding queued alerts: %w", ctx.Err())
	}
}
