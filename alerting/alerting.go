package alerting

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/alertmanager/notify"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/strutil"

	"github.com/novacron/novacron"
	shipped "github.com/novacron/novacron/alerting/rules"
	"github.com/novacron/novacron/internal/statedb"
	"github.com/novacron/novacron/internal/storage/promapi"
)

// QueryBackend is the embedded PromQL engine and the storage it reads.
// *tsdbstore.Store implements it.
type QueryBackend = promapi.Backend

// Settings is what code injects: never read from user configuration.
type Settings struct {
	// Logger receives the component's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives NovaCron's alerting metrics and those of the
	// embedded Prometheus rule manager and Alertmanager packages
	// (prometheus_rule_*, alertmanager_*); nil registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock for event alerts, silences and history; default
	// time.Now. Rule evaluation follows the wall clock.
	Now func() time.Time
	// Integrations, when set, replaces the receivers' integrations built
	// from the notification configuration, by receiver name (tests).
	Integrations map[string][]notify.Integration
}

// Deps are the services alerting uses.
type Deps struct {
	// Query evaluates rules on the embedded engine. Exactly one of Query
	// and RemoteQuery must be set.
	Query QueryBackend
	// RemoteQuery evaluates rules through a Prometheus HTTP API
	// (VictoriaMetrics); the API role's storage.remote.query.
	RemoteQuery *promapi.ProxyConfig
	// Appendable receives recording rules' results and the ALERTS series;
	// nil discards them (recording rules are then only useful to alerts of
	// the same group... which read the store, so set it when rule files
	// record). The embedded store's TSDB fits; for VictoriaMetrics wrap the
	// remote-write sender with WriterAppendable.
	Appendable storage.AppendableV2
	// DB is the state database. Required; New applies alerting's
	// migrations to it.
	DB *statedb.DB
	// HTTPClient is used for remote queries and forwarding; default a
	// client without timeout (each request has its own).
	HTTPClient *http.Client
}

// Alerting is the alerting component. Its methods are safe for concurrent
// use. It implements novacron.EventConsumer.
type Alerting struct {
	cfg     Config
	set     Settings
	deps    Deps
	logger  *slog.Logger
	m       *metrics
	reg     prometheus.Registerer
	st      *store
	tr      *tracker
	now     func() time.Time
	extURL  *url.URL
	extLbls map[string]string
	dash    *template.Template
	parser  parser.Parser
	query   rules.QueryFunc

	mu       sync.Mutex // guards the lifecycle fields below
	started  bool
	stopped  bool
	manager  *rules.Manager
	notifier *notifier
	fwd      *forwarder
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	runDone  chan struct{}

	rulesMu     sync.Mutex // serialises rule reloads
	thresholdsY []byte

	evMu   sync.Mutex
	events map[string]*eventAlert // identity key -> alert
}

// ErrNotRunning is returned by operations that need the notification
// pipeline before Start or after Shutdown.
var ErrNotRunning = novacron.Errorf(novacron.EUNAVAILABLE, "alerting is not running")

// New builds the component and applies alerting's migrations to the state
// database; Start runs it.
func New(cfg Config, set Settings, deps Deps) (*Alerting, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("alerting config: %w", err)
	}
	if deps.DB == nil {
		return nil, errors.New("alerting needs the state database")
	}
	if (deps.Query == nil) == (deps.RemoteQuery == nil) {
		return nil, errors.New("alerting needs exactly one query backend: the embedded engine or a remote query URL")
	}
	logger := set.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "alerting")
	now := set.Now
	if now == nil {
		now = time.Now
	}
	reg := set.Registerer
	if reg == nil {
		// The Alertmanager packages refuse a nil registerer.
		reg = prometheus.NewRegistry()
	}
	client := deps.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	ext, _ := url.Parse(cfg.ExternalURL) // validated
	a := &Alerting{
		cfg: cfg, set: set, deps: deps, logger: logger, m: newMetrics(set.Registerer), reg: reg,
		st: &store{db: deps.DB}, now: now, extURL: ext, extLbls: cfg.ExternalLabels,
		events: map[string]*eventAlert{},
	}
	a.tr = newTracker(a.st, a.m)
	if cfg.DashboardURL != "" {
		a.dash = template.Must(template.New("dashboard_url").Option("missingkey=error").Parse(cfg.DashboardURL))
	}
	if deps.Query != nil {
		a.parser = deps.Query.Parser()
		a.query = rules.EngineQueryFunc(deps.Query.Engine(), deps.Query.Queryable())
	} else {
		a.parser = parser.NewParser(parser.Options{})
		q, err := remoteQueryFunc(*deps.RemoteQuery, client)
		if err != nil {
			return nil, err
		}
		a.query = q
	}
	if len(cfg.Forward.URLs) > 0 {
		a.fwd = newForwarder(cfg.Forward, client, logger, a.m)
	}
	if _, err := loadNotificationConfig(cfg); err != nil {
		return nil, err
	}
	if _, err := a.ruleFiles(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := deps.DB.Migrate(ctx, Migrations()); err != nil {
		return nil, fmt.Errorf("migrate alerting schema: %w", err)
	}
	return a, nil
}

// Start restores the stored state, starts the notification pipeline,
// loads the rules (failing on any invalid rule file, naming file and
// line) and starts evaluating them.
func (a *Alerting) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started {
		return errors.New("alerting already started")
	}
	start := time.Now()
	if err := a.tr.load(ctx); err != nil {
		return err
	}
	a.restoreEventAlerts()

	conf, _ := loadNotificationConfig(a.cfg) // checked by New
	n := &notifier{
		logger: a.logger, reg: a.reg, conf: conf, st: a.st, retention: a.cfg.Notifications.Retention,
		maintenance: a.cfg.Notifications.MaintenanceInterval, externalURL: a.extURL, now: a.now,
		integrations: a.set.Integrations,
	}
	if err := n.start(ctx); err != nil {
		return err
	}
	a.notifier = n

	runCtx, cancel := context.WithCancel(context.Background())
	a.manager = rules.NewManager(&rules.ManagerOptions{
		ExternalURL:     a.extURL,
		QueryFunc:       a.query,
		NotifyFunc:      a.sendRuleAlerts,
		Context:         runCtx,
		AppendableV2:    &forStateAppendable{next: a.deps.Appendable, st: a.st, logger: a.logger, m: a.m},
		Queryable:       forStateQueryable{st: a.st},
		Logger:          a.logger.With("component", "rules"),
		Registerer:      a.set.Registerer,
		OutageTolerance: a.cfg.OutageTolerance,
		ForGracePeriod:  a.cfg.ForGracePeriod,
		ResendDelay:     a.cfg.ResendDelay,
		GroupLoader:     &groupLoader{a: a},
		Parser:          a.parser,
	})
	if err := a.loadRules(ctx); err != nil {
		cancel()
		_ = n.stop(ctx)
		a.notifier = nil
		return err
	}
	if a.fwd != nil {
		a.fwd.start()
	}
	a.cancel = cancel
	a.runDone = make(chan struct{})
	go func() {
		defer close(a.runDone)
		a.manager.Run()
	}()
	a.wg.Go(func() { a.loop(runCtx) })
	a.started = true
	a.logger.Info("alerting started", "rule_groups", len(a.manager.RuleGroups()), "duration", time.Since(start))
	return nil
}

// Shutdown stops rule evaluation and the notification pipeline and saves
// silences and the notification log. Safe to call twice and without
// Start.
func (a *Alerting) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.started || a.stopped {
		a.stopped = true
		return nil
	}
	a.stopped = true
	start := time.Now()
	a.cancel()
	a.manager.Stop()
	<-a.runDone
	a.wg.Wait()
	var errs []error
	if a.fwd != nil {
		errs = append(errs, a.fwd.stop(ctx))
	}
	errs = append(errs, a.notifier.stop(ctx))
	err := errors.Join(errs...)
	a.logger.Info("alerting stopped", "duration", time.Since(start), "err", err)
	return err
}

func (a *Alerting) runningNotifier() (*notifier, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.started || a.stopped {
		return nil, ErrNotRunning
	}
	return a.notifier, nil
}

// loop resends event alerts, resolves stale ones, picks up thresholds
// changed by other replicas and prunes the history.
func (a *Alerting) loop(ctx context.Context) {
	resend := time.NewTicker(a.cfg.ResendDelay)
	defer resend.Stop()
	sync := time.NewTicker(a.cfg.EvaluationInterval)
	defer sync.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	a.pruneHistory(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-resend.C:
			a.tickEvents(ctx)
		case <-sync.C:
			if err := a.reloadIfThresholdsChanged(ctx); err != nil {
				a.logger.Warn("reloading thresholds failed", "err", err)
			}
		case <-prune.C:
			a.pruneHistory(ctx)
		}
	}
}

func (a *Alerting) pruneHistory(ctx context.Context) {
	if a.cfg.HistoryRetention <= 0 {
		return
	}
	n, err := a.st.pruneHistory(ctx, a.now().Add(-a.cfg.HistoryRetention))
	if err != nil {
		a.logger.Warn("pruning alert history failed", "err", err)
	} else if n > 0 {
		a.logger.Info("alert history pruned", "entries", n)
	}
}

// --- rules ---

// defaultRulePrefix marks identifiers of the shipped rule files.
const defaultRulePrefix = "novacron:default/"

// ruleFiles returns the identifiers of every rule file to load: shipped
// files, the operator's files (globs expanded), then the thresholds.
func (a *Alerting) ruleFiles() ([]string, error) {
	var files []string
	if a.cfg.DefaultRules {
		names, err := fs.Glob(shipped.FS, "*.yaml")
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			files = append(files, defaultRulePrefix+n)
		}
	}
	for _, pat := range a.cfg.RuleFiles {
		matches, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("rule_files %q: %w", pat, err)
		}
		if len(matches) == 0 && !strings.ContainsAny(pat, "*?[") {
			return nil, fmt.Errorf("rule_files %q: no such file", pat)
		}
		files = append(files, matches...)
	}
	return files, nil
}

// groupLoader loads the shipped rule files from the binary, the
// thresholds from the state database and other files from disk.
type groupLoader struct{ a *Alerting }

func (l *groupLoader) Load(identifier string, ignoreUnknownFields bool, scheme model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	var b []byte
	switch {
	case strings.HasPrefix(identifier, defaultRulePrefix):
		var err error
		b, err = fs.ReadFile(shipped.FS, strings.TrimPrefix(identifier, defaultRulePrefix))
		if err != nil {
			return nil, []error{fmt.Errorf("%s: %w", identifier, err)}
		}
	case identifier == thresholdsIdentifier:
		b = l.a.thresholdsY
	default:
		return rulefmt.ParseFile(identifier, ignoreUnknownFields, scheme, l.a.parser, l.a.logger)
	}
	rgs, errs := rulefmt.Parse(b, ignoreUnknownFields, scheme, l.a.parser, l.a.logger)
	for i := range errs {
		errs[i] = fmt.Errorf("%s: %w", identifier, errs[i])
	}
	return rgs, errs
}

func (l *groupLoader) Parse(query string) (parser.Expr, error) { return l.a.parser.ParseExpr(query) }

// CheckRuleFiles parses rule files the way alerting loads them and returns
// every problem, each naming the file and, for content errors, the line.
func CheckRuleFiles(files ...string) error {
	p := parser.NewParser(parser.Options{})
	var errs []error
	for _, f := range files {
		_, es := rulefmt.ParseFile(f, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
		errs = append(errs, es...)
	}
	return errors.Join(errs...)
}

// loadRules compiles the thresholds and (re)loads every rule file into the
// manager. A failure leaves the previous rules in force.
func (a *Alerting) loadRules(ctx context.Context) error {
	a.rulesMu.Lock()
	defer a.rulesMu.Unlock()
	ts, err := a.st.thresholds(ctx)
	if err != nil {
		return err
	}
	return a.loadRulesLocked(ts)
}

func (a *Alerting) loadRulesLocked(ts []Threshold) error {
	files, err := a.ruleFiles()
	if err != nil {
		return err
	}
	y, err := compileThresholds(ts)
	if err != nil {
		return err
	}
	a.thresholdsY = y
	if len(ts) > 0 {
		files = append(files, thresholdsIdentifier)
	}
	// Update only logs the details of a failure: load first to report them.
	var errs []error
	for _, f := range files {
		_, es := (&groupLoader{a: a}).Load(f, false, model.UTF8Validation)
		errs = append(errs, es...)
	}
	if err := errors.Join(errs...); err != nil {
		a.m.evalFailed.Inc()
		return fmt.Errorf("load rules: %w", err)
	}
	if err := a.manager.Update(a.cfg.EvaluationInterval, files, labels.FromMap(a.extLbls), a.extURL.String(), a.evalIteration); err != nil {
		a.m.evalFailed.Inc()
		return fmt.Errorf("load rules: %w", err)
	}
	// Resolve the alerts of groups that are gone.
	live := map[string]bool{}
	for _, g := range a.manager.RuleGroups() {
		live[ruleScope(g)] = true
	}
	a.tr.mu.Lock()
	var gone []string
	for s := range a.tr.scopes {
		if strings.HasPrefix(s, "rule:") && !live[s] {
			gone = append(gone, s)
		}
	}
	a.tr.mu.Unlock()
	for _, s := range gone {
		if err := a.tr.sync(context.Background(), s, nil, a.now()); err != nil {
			a.logger.Warn("resolving alerts of a removed rule group failed", "scope", s, "err", err)
		}
	}
	return nil
}

// reloadRules reloads after a threshold change.
func (a *Alerting) reloadRules(ctx context.Context) error {
	a.mu.Lock()
	running := a.started && !a.stopped
	a.mu.Unlock()
	if !running {
		return nil // Start loads them
	}
	return a.loadRules(ctx)
}

// ReloadRules re-reads the rule files and thresholds, for a config reload
// (SIGHUP). On error the previous rules stay in force.
func (a *Alerting) ReloadRules(ctx context.Context) error { return a.reloadRules(ctx) }

func (a *Alerting) reloadIfThresholdsChanged(ctx context.Context) error {
	a.rulesMu.Lock()
	defer a.rulesMu.Unlock()
	ts, err := a.st.thresholds(ctx)
	if err != nil {
		return err
	}
	y, err := compileThresholds(ts)
	if err != nil {
		return err
	}
	if string(y) == string(a.thresholdsY) {
		return nil
	}
	return a.loadRulesLocked(ts)
}

func ruleScope(g *rules.Group) string { return "rule:" + rules.GroupKey(g.File(), g.Name()) }

// evalIteration evaluates a group as Prometheus does, then records the
// state of its alerts.
func (a *Alerting) evalIteration(ctx context.Context, g *rules.Group, ts time.Time) {
	rules.DefaultEvalIterationFunc(ctx, g, ts)
	source := SourceRule
	if g.File() == thresholdsIdentifier {
		source = SourceThreshold
	}
	var cur []*Alert
	for _, r := range g.Rules() {
		ar, ok := r.(*rules.AlertingRule)
		if !ok {
			continue
		}
		for _, ra := range ar.ActiveAlerts() {
			ls := a.ruleAlertLabels(ra)
			state := StatePending
			if ra.State == rules.StateFiring {
				state = StateFiring
			}
			cur = append(cur, &Alert{
				Fingerprint: fingerprint(ls), Source: source, Labels: ls, Annotations: ra.Annotations.Map(),
				State: state, Value: strconv.FormatFloat(ra.Value, 'g', -1, 64), ActiveAt: ra.ActiveAt.UTC(),
				FiredAt: ra.FiredAt.UTC(), UpdatedAt: ts.UTC(), GeneratorURL: a.generatorURL(ar.Query().String()),
			})
		}
	}
	if err := a.tr.sync(ctx, ruleScope(g), cur, ts); err != nil {
		a.logger.Warn("recording alert state failed", "group", g.Name(), "err", err)
	}
	a.updateGauges()
}

func (a *Alerting) updateGauges() {
	var pending, firing int
	for _, al := range a.tr.all() {
		if al.State == StateFiring {
			firing++
		} else {
			pending++
		}
	}
	a.m.active.WithLabelValues(StatePending).Set(float64(pending))
	a.m.active.WithLabelValues(StateFiring).Set(float64(firing))
}

func (a *Alerting) ruleAlertLabels(ra *rules.Alert) map[string]string {
	ls := ra.Labels.Map()
	for k, v := range a.extLbls {
		if _, ok := ls[k]; !ok {
			ls[k] = v
		}
	}
	return ls
}

func (a *Alerting) generatorURL(expr string) string {
	return a.extURL.String() + strutil.TableLinkForExpression(expr)
}

// sendRuleAlerts is the rule manager's NotifyFunc: like Prometheus, it
// sends firing alerts with an end time a few resend delays ahead (renewed
// by each resend) and resolved ones with their resolution time.
func (a *Alerting) sendRuleAlerts(ctx context.Context, expr string, alerts ...*rules.Alert) {
	now := a.now()
	out := make([]*alert.Alert, 0, len(alerts))
	for _, ra := range alerts {
		ma := model.Alert{
			Labels:       toLabelSet(a.ruleAlertLabels(ra)),
			Annotations:  toLabelSet(ra.Annotations.Map()),
			StartsAt:     ra.FiredAt,
			GeneratorURL: a.generatorURL(expr),
		}
		if !ra.ResolvedAt.IsZero() {
			ma.EndsAt = ra.ResolvedAt
		} else {
			ma.EndsAt = ra.ValidUntil
		}
		out = append(out, alert.New(ma, now, false))
	}
	a.dispatch(ctx, out)
}

// dispatch hands alerts to the embedded pipeline and the forwarder.
func (a *Alerting) dispatch(ctx context.Context, alerts []*alert.Alert) {
	if len(alerts) == 0 {
		return
	}
	if n, err := a.runningNotifier(); err == nil {
		if err := n.put(ctx, alerts...); err != nil {
			a.logger.Warn("handing alerts to the notification pipeline failed", "err", err)
		}
	}
	if a.fwd != nil {
		a.fwd.enqueue(alerts)
	}
}

func toLabelSet(m map[string]string) model.LabelSet {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls
}

// --- queries for the API ---

// AlertsQuery filters Alerts; zero fields do not filter.
type AlertsQuery struct {
	// Matchers keep alerts whose labels match them all.
	Matchers []*Matcher
	// State keeps "pending" or "firing" alerts.
	State string
	// Source keeps "rule", "threshold" or "event" alerts.
	Source string
	// Muted, when set, keeps only muted (true) or unmuted (false) alerts.
	Muted *bool
}

// Alerts returns the current alerts with their silences and inhibition.
func (a *Alerting) Alerts(ctx context.Context, q AlertsQuery) ([]*Alert, error) {
	n, _ := a.runningNotifier()
	var out []*Alert
	for _, al := range a.tr.all() {
		if q.State != "" && al.State != q.State || q.Source != "" && al.Source != q.Source || !matchAll(q.Matchers, al.Labels) {
			continue
		}
		if n != nil {
			al.SilencedBy, al.Inhibited = n.mutedBy(ctx, al.Labels)
		}
		if q.Muted != nil && *q.Muted != (len(al.SilencedBy) > 0 || al.Inhibited) {
			continue
		}
		out = append(out, al)
	}
	return out, nil
}

// History returns recorded state changes, newest first.
func (a *Alerting) History(ctx context.Context, q HistoryQuery) ([]Transition, error) {
	return a.st.history(ctx, q)
}

// RuleGroup is a loaded rule group, as the API shows it.
type RuleGroup struct {
	Name     string       `json:"name"`
	File     string       `json:"file"`
	Interval float64      `json:"interval_seconds"`
	Rules    []RuleStatus `json:"rules"`
	// LastEvaluation is when the group was last evaluated.
	LastEvaluation time.Time `json:"last_evaluation,omitzero"`
}

// RuleStatus is one rule of a group.
type RuleStatus struct {
	Type           string            `json:"type"` // alerting or recording
	Name           string            `json:"name"`
	Query          string            `json:"query"`
	For            float64           `json:"for_seconds,omitempty"`
	KeepFiringFor  float64           `json:"keep_firing_for_seconds,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	Health         string            `json:"health"`
	LastError      string            `json:"last_error,omitempty"`
	State          string            `json:"state,omitempty"` // inactive, pending, firing
	ActiveAlerts   int               `json:"active_alerts,omitempty"`
	LastEvaluation time.Time         `json:"last_evaluation,omitzero"`
}

// RuleGroups returns the loaded rule groups and the state of their rules.
func (a *Alerting) RuleGroups() []RuleGroup {
	a.mu.Lock()
	m := a.manager
	a.mu.Unlock()
	if m == nil {
		return nil
	}
	var out []RuleGroup
	for _, g := range m.RuleGroups() {
		rg := RuleGroup{Name: g.Name(), File: g.File(), Interval: g.Interval().Seconds(), LastEvaluation: g.GetLastEvaluation()}
		if strings.HasPrefix(rg.File, defaultRulePrefix) {
			rg.File = "alerting/rules/" + strings.TrimPrefix(rg.File, defaultRulePrefix)
		}
		for _, r := range g.Rules() {
			rs := RuleStatus{Name: r.Name(), Query: r.Query().String(), Labels: r.Labels().Map(), Health: string(r.Health()), LastEvaluation: r.GetEvaluationTimestamp()}
			if err := r.LastError(); err != nil {
				rs.LastError = err.Error()
			}
			switch r := r.(type) {
			case *rules.AlertingRule:
				rs.Type, rs.For, rs.KeepFiringFor = "alerting", r.HoldDuration().Seconds(), r.KeepFiringFor().Seconds()
				rs.Annotations = r.Annotations().Map()
				rs.State = strings.ToLower(r.State().String())
				rs.ActiveAlerts = len(r.ActiveAlerts())
			default:
				rs.Type = "recording"
			}
			rg.Rules = append(rg.Rules, rs)
		}
		out = append(out, rg)
	}
	slices.SortFunc(out, func(x, y RuleGroup) int { return strings.Compare(x.File+x.Name, y.File+y.Name) })
	return out
}
