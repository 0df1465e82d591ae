package alerting

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/alert"
	amconfig "github.com/prometheus/alertmanager/config"
	amcommoncfg "github.com/prometheus/alertmanager/config/common"
	"github.com/prometheus/alertmanager/config/receiver"
	"github.com/prometheus/alertmanager/dispatch"
	"github.com/prometheus/alertmanager/eventrecorder"
	"github.com/prometheus/alertmanager/featurecontrol"
	"github.com/prometheus/alertmanager/inhibit"
	"github.com/prometheus/alertmanager/labelset"
	"github.com/prometheus/alertmanager/nflog"
	"github.com/prometheus/alertmanager/notify"
	amlabels "github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/alertmanager/provider/mem"
	"github.com/prometheus/alertmanager/silence"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/alertmanager/timeinterval"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
)

// defaultNotificationConfig is the Alertmanager configuration used when
// notifications.config_file and notifications.config are empty: alerts
// are grouped and tracked but sent nowhere.
const defaultNotificationConfig = `route:
  receiver: default
  group_by: [alertname, vm_id, host]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: default
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [alertname, vm_id, host]
`

// RemediationLabel is the label of the alert NovaCron raises while an
// action runs on a VM (value RemediationInProgress, with vm_id); the
// remediation inhibition rule mutes every other alert with the same vm_id
// while it is active.
const (
	RemediationLabel      = "remediation"
	RemediationInProgress = "in_progress"
)

// Snapshot names in the state database.
const (
	blobSilences = "silences"
	blobNflog    = "nflog"
)

// loadNotificationConfig reads and parses the Alertmanager configuration
// cfg names, adding the remediation inhibition rule when enabled.
func loadNotificationConfig(cfg Config) (*amconfig.Config, error) {
	var (
		conf *amconfig.Config
		err  error
	)
	switch {
	case cfg.Notifications.ConfigFile != "":
		conf, err = amconfig.LoadFile(cfg.Notifications.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("load notifications.config_file %q: %w", cfg.Notifications.ConfigFile, err)
		}
	case cfg.Notifications.Config != "":
		conf, err = amconfig.Load(cfg.Notifications.Config)
		if err != nil {
			return nil, fmt.Errorf("parse notifications.config: %w", err)
		}
	default:
		conf, err = amconfig.Load(defaultNotificationConfig)
		if err != nil {
			return nil, fmt.Errorf("parse built-in notification config: %w", err)
		}
	}
	if cfg.RemediationInhibit {
		src, _ := amlabels.NewMatcher(amlabels.MatchEqual, RemediationLabel, RemediationInProgress)
		tgt, _ := amlabels.NewMatcher(amlabels.MatchNotEqual, RemediationLabel, RemediationInProgress)
		conf.InhibitRules = append(conf.InhibitRules, amcommoncfg.InhibitRule{
			Name:           "novacron-remediation",
			SourceMatchers: amcommoncfg.Matchers{src},
			TargetMatchers: amcommoncfg.Matchers{tgt},
			Equal:          []string{"vm_id"},
		})
	}
	return conf, nil
}

// notifier is the embedded Alertmanager: alerts go into its in-memory
// provider, through the routing tree (dispatch) and the notification
// pipeline (inhibition, silences, time intervals, deduplication by the
// notification log, retries) to the receivers' integrations. Silences and
// the notification log are kept in the state database.
type notifier struct {
	logger      *slog.Logger
	reg         prometheus.Registerer
	conf        *amconfig.Config
	st          *store
	retention   time.Duration
	maintenance time.Duration
	externalURL *url.URL
	now         func() time.Time
	// integrations, when set, replaces the integrations built from the
	// configuration's receivers (tests).
	integrations map[string][]notify.Integration

	alerts     *mem.Alerts
	silences   *silence.Silences
	nflog      *nflog.Log
	inhibitor  *inhibit.Inhibitor
	dispatcher *dispatch.Dispatcher
	stopc      chan struct{}
	wg         sync.WaitGroup
	saveMu     sync.Mutex
}

func (n *notifier) start(ctx context.Context) error {
	rec := eventrecorder.NopRecorder()
	ff := featurecontrol.NoopFlags{}

	silSnap, err := n.st.blob(ctx, blobSilences)
	if err != nil {
		return err
	}
	sopts := silence.Options{Retention: n.retention, Logger: n.logger.With("component", "silences"), Metrics: n.reg, EventRecorder: rec}
	if len(silSnap) > 0 {
		sopts.SnapshotReader = bytes.NewReader(silSnap)
	}
	n.silences, err = silence.New(sopts)
	if err != nil {
		return fmt.Errorf("restore silences: %w", err)
	}
	nfSnap, err := n.st.blob(ctx, blobNflog)
	if err != nil {
		return err
	}
	nopts := nflog.Options{Retention: n.retention, Logger: n.logger.With("component", "nflog"), Metrics: n.reg}
	if len(nfSnap) > 0 {
		nopts.SnapshotReader = bytes.NewReader(nfSnap)
	}
	n.nflog, err = nflog.New(nopts)
	if err != nil {
		return fmt.Errorf("restore notification log: %w", err)
	}
	silencer := silence.NewSilencer(n.silences, n.logger, rec)
	n.alerts, err = mem.NewAlerts(context.Background(), 30*time.Minute, 0, silencer, n.logger, rec, n.reg, ff)
	if err != nil {
		return fmt.Errorf("create alert store: %w", err)
	}

	tmpl, err := template.FromGlobs(n.conf.Templates)
	if err != nil {
		n.alerts.Close()
		return fmt.Errorf("parse notification templates: %w", err)
	}
	tmpl.ExternalURL = n.externalURL
	routes := dispatch.NewRoute(n.conf.Route, nil)
	receivers := n.integrations
	if receivers == nil {
		active := map[string]bool{}
		routes.Walk(func(r *dispatch.Route) { active[r.RouteOpts.Receiver] = true })
		receivers = map[string][]notify.Integration{}
		for _, rcv := range n.conf.Receivers {
			if !active[rcv.Name] {
				continue
			}
			ints, err := receiver.BuildReceiverIntegrations(rcv, tmpl, n.logger)
			if err != nil {
				n.alerts.Close()
				return fmt.Errorf("build receiver %q: %w", rcv.Name, err)
			}
			receivers[rcv.Name] = ints
		}
	}
	intervals := map[string][]timeinterval.TimeInterval{}
	for _, ti := range n.conf.MuteTimeIntervals {
		intervals[ti.Name] = ti.TimeIntervals
	}
	for _, ti := range n.conf.TimeIntervals {
		intervals[ti.Name] = ti.TimeIntervals
	}
	intervener := timeinterval.NewIntervener(intervals)
	n.inhibitor = inhibit.NewInhibitor(n.alerts, n.conf.InhibitRules, n.logger, rec)
	pipeline := notify.NewPipelineBuilder(n.reg, ff, rec).New(receivers, func() time.Duration { return 0 }, n.inhibitor, silencer, intervener, n.nflog, nil)
	timeout := func(d time.Duration) time.Duration { return max(d, notify.MinTimeout) }
	n.dispatcher = dispatch.NewDispatcher(n.alerts, routes, pipeline, intervener, timeout, time.Minute, nil, n.logger, rec,
		dispatch.NewDispatcherMetrics(false, n.reg, ff), tmpl)
	go n.inhibitor.Run()
	n.inhibitor.WaitForLoading()
	// Run the dispatcher before any alert is put, or the first ones are
	// never routed.
	go n.dispatcher.Run(time.Time{})
	n.dispatcher.WaitForLoading()

	n.stopc = make(chan struct{})
	n.wg.Go(n.maintain)
	return nil
}

// maintain garbage-collects and saves silences and the notification log.
func (n *notifier) maintain() {
	t := time.NewTicker(n.maintenance)
	defer t.Stop()
	for {
		select {
		case <-n.stopc:
			return
		case <-t.C:
			if _, err := n.silences.GC(); err != nil {
				n.logger.Warn("silence garbage collection failed", "err", err)
			}
			if _, err := n.nflog.GC(); err != nil {
				n.logger.Warn("notification log garbage collection failed", "err", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := n.save(ctx); err != nil {
				n.logger.Warn("saving silences and notification log failed", "err", err)
			}
			cancel()
		}
	}
}

// save writes the silences and notification log snapshots.
func (n *notifier) save(ctx context.Context) error {
	n.saveMu.Lock()
	defer n.saveMu.Unlock()
	var sb, nb bytes.Buffer
	if _, err := n.silences.Snapshot(&sb); err != nil {
		return fmt.Errorf("snapshot silences: %w", err)
	}
	if _, err := n.nflog.Snapshot(&nb); err != nil {
		return fmt.Errorf("snapshot notification log: %w", err)
	}
	return errors.Join(n.st.saveBlob(ctx, blobSilences, sb.Bytes(), n.now()), n.st.saveBlob(ctx, blobNflog, nb.Bytes(), n.now()))
}

// put hands alerts to the dispatcher.
func (n *notifier) put(ctx context.Context, alerts ...*alert.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	return n.alerts.Put(ctx, alerts...)
}

// mutedBy returns the active silences matching ls and whether an
// inhibition rule mutes it.
func (n *notifier) mutedBy(ctx context.Context, ls map[string]string) (silences []string, inhibited bool) {
	set := make(model.LabelSet, len(ls))
	for k, v := range ls {
		set[model.LabelName(k)] = model.LabelValue(v)
	}
	sils, _, err := n.silences.Query(ctx, silence.QState(silence.SilenceStateActive), silence.QMatches(set))
	if err == nil {
		for _, s := range sils {
			silences = append(silences, s.Id)
		}
	}
	return silences, n.inhibitor.Mutes(ctx, labelset.FromModel(set))
}

// stop stops the dispatcher and inhibitor and saves the state.
func (n *notifier) stop(ctx context.Context) error {
	if n.dispatcher == nil {
		return nil
	}
	close(n.stopc)
	n.wg.Wait()
	n.dispatcher.Stop()
	n.inhibitor.Stop()
	n.alerts.Close()
	return n.save(ctx)
}
