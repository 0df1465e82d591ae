package alerting

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	amlabels "github.com/prometheus/alertmanager/pkg/labels"
)

// Matcher is a label matcher in Alertmanager's syntax (name="value",
// name=~"regex", name!="value", name!~"regex").
type Matcher = amlabels.Matcher

// ParseMatchers parses matchers such as `{severity="critical",vm_id=~"a.*"}`
// or `severity="critical"`.
func ParseMatchers(s string) ([]*Matcher, error) {
	return amlabels.ParseMatchers(s)
}

func matchAll(ms []*Matcher, ls map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(ls[m.Name]) {
			return false
		}
	}
	return true
}

// tracker keeps the current alerts of every scope (a rule group, the
// thresholds group, the events) and writes each state change to the
// history and the current-alerts table. Sync replaces one scope's set.
type tracker struct {
	st      *store
	metrics *metrics
	mu      sync.Mutex
	scopes  map[string]map[string]*Alert // scope -> fingerprint -> alert
}

func newTracker(st *store, m *metrics) *tracker {
	return &tracker{st: st, metrics: m, scopes: map[string]map[string]*Alert{}}
}

// load reads the stored current alerts, so a restart neither repeats
// their "new" transitions nor forgets to resolve them.
func (t *tracker) load(ctx context.Context) error {
	alerts, err := t.st.loadAlerts(ctx)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range alerts {
		m := t.scopes[a.scope]
		if m == nil {
			m = map[string]*Alert{}
			t.scopes[a.scope] = m
		}
		m[a.Fingerprint] = a
	}
	return nil
}

// sync makes current the set of active alerts of scope, recording
// transitions: new alerts (inactive -> pending/firing), state changes, and
// alerts no longer present (-> resolved). The alerts must have Fingerprint,
// Source, Labels and State set; sync sets their scope.
func (t *tracker) sync(ctx context.Context, scope string, current []*Alert, now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	prev := t.scopes[scope]
	next := make(map[string]*Alert, len(current))
	var changes []change
	var upserts []*Alert
	for _, a := range current {
		a.scope = scope
		if a.UpdatedAt.IsZero() {
			a.UpdatedAt = now
		}
		next[a.Fingerprint] = a
		old, ok := prev[a.Fingerprint]
		switch {
		case !ok:
			changes = append(changes, change{alert: a, from: StateInactive, to: a.State, at: now})
		case old.State != a.State:
			changes = append(changes, change{alert: a, from: old.State, to: a.State, at: now})
		case !equalMaps(old.Annotations, a.Annotations) || !old.ActiveAt.Equal(a.ActiveAt):
			upserts = append(upserts, a)
		}
	}
	for _, fp := range slices.Sorted(maps.Keys(prev)) {
		if _, ok := next[fp]; !ok {
			old := prev[fp]
			changes = append(changes, change{alert: old, from: old.State, to: StateResolved, at: now})
		}
	}
	if err := t.st.apply(ctx, changes, upserts); err != nil {
		t.metrics.stateErrors.Inc()
		return err
	}
	for _, c := range changes {
		t.metrics.transitions.WithLabelValues(c.alert.Source, c.to).Inc()
	}
	if len(next) == 0 {
		delete(t.scopes, scope)
	} else {
		t.scopes[scope] = next
	}
	return nil
}

// scope returns a copy of the alerts of one scope.
func (t *tracker) scope(scope string) []*Alert {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*Alert, 0, len(t.scopes[scope]))
	for _, fp := range slices.Sorted(maps.Keys(t.scopes[scope])) {
		a := *t.scopes[scope][fp]
		out = append(out, &a)
	}
	return out
}

// all returns copies of every current alert, ordered by alertname and
// fingerprint.
func (t *tracker) all() []*Alert {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*Alert
	for _, m := range t.scopes {
		for _, a := range m {
			c := *a
			c.Labels, c.Annotations = cloneMap(a.Labels), cloneMap(a.Annotations)
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *Alert) int {
		if a.Name() != b.Name() {
			if a.Name() < b.Name() {
				return -1
			}
			return 1
		}
		switch {
		case a.Fingerprint < b.Fingerprint:
			return -1
		case a.Fingerprint > b.Fingerprint:
			return 1
		}
		return 0
	})
	return out
}
