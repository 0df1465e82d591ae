package events

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/novacron/novacron"
)

// Item kinds.
const (
	KindAnomaly  = "anomaly"
	KindForecast = "forecast"
	KindIncident = "incident"
)

// Item states.
const (
	StateOpen      = "open"
	StateClosed    = "closed"
	StatePredicted = "predicted"
	StateCleared   = "cleared"
)

// Item is an anomaly, forecast breach or incident as the latest of its
// events describes it.
type Item struct {
	ID          string            `json:"id"`
	Kind        string            `json:"kind"`
	State       string            `json:"state"`
	VMID        string            `json:"vm_id,omitempty"`
	Host        string            `json:"host,omitempty"`
	Metric      string            `json:"metric,omitempty"`
	Series      string            `json:"series,omitempty"`
	Summary     string            `json:"summary,omitempty"`
	Explanation string            `json:"explanation,omitempty"`
	Evidence    string            `json:"evidence,omitempty"`
	Severity    string            `json:"severity,omitempty"`
	Score       float64           `json:"score,omitempty"`
	Start       time.Time         `json:"start"`
	Updated     time.Time         `json:"updated"`
	End         *time.Time        `json:"end,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Details     map[string]any    `json:"details,omitempty"`
	// EventIDs are the IDs of the events folded into the item.
	EventIDs []string `json:"event_ids"`
}

// Config bounds the index.
type Config struct {
	// MaxItems is how many items of each kind are kept; the oldest
	// (closed first) go. Default 10000.
	MaxItems int
	// MaxSeen is how many event IDs are remembered for deduplication.
	// Default 100000.
	MaxSeen int
	// SubscriberBuffer is the events a slow live subscriber may lag
	// before events are dropped for it. Default 256.
	SubscriberBuffer int
}

// NewDefaultConfig returns the defaults.
func NewDefaultConfig() Config {
	return Config{MaxItems: 10000, MaxSeen: 100000, SubscriberBuffer: 256}
}

// Index is the in-memory index. It is safe for concurrent use.
type Index struct {
	cfg   Config
	mu    sync.RWMutex
	items map[string]map[string]*Item // kind → id → item
	seen  map[string]struct{}
	order []string // seen IDs, oldest first
	subs  map[*Subscription]struct{}
}

var _ novacron.EventConsumer = (*Index)(nil)

// NewIndex returns an empty index.
func NewIndex(cfg Config) *Index {
	d := NewDefaultConfig()
	if cfg.MaxItems <= 0 {
		cfg.MaxItems = d.MaxItems
	}
	if cfg.MaxSeen <= 0 {
		cfg.MaxSeen = d.MaxSeen
	}
	if cfg.SubscriberBuffer <= 0 {
		cfg.SubscriberBuffer = d.SubscriberBuffer
	}
	return &Index{cfg: cfg, items: map[string]map[string]*Item{
		KindAnomaly: {}, KindForecast: {}, KindIncident: {},
	}, seen: map[string]struct{}{}, subs: map[*Subscription]struct{}{}}
}

// ConsumeEvents implements novacron.EventConsumer: events seen before (by
// ID) are ignored; new ones update their item and go to live subscribers.
func (x *Index) ConsumeEvents(_ context.Context, events []novacron.Event) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, e := range events {
		if _, dup := x.seen[e.ID]; dup || e.ID == "" {
			continue
		}
		x.seen[e.ID] = struct{}{}
		x.order = append(x.order, e.ID)
		if len(x.order) > x.cfg.MaxSeen {
			delete(x.seen, x.order[0])
			x.order = x.order[1:]
		}
		x.fold(e)
		for s := range x.subs {
			select {
			case s.c <- e:
			default:
				s.dropped.Add(1)
			}
		}
	}
	return nil
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func num(m map[string]any, k string) float64 {
	f, _ := m[k].(float64)
	return f
}

func (x *Index) fold(e novacron.Event) {
	var kind, id, state string
	switch e.Kind {
	case novacron.EventAnomalyOpened, novacron.EventAnomalyUpdated:
		kind, id, state = KindAnomaly, str(e.Details, "anomaly_id"), StateOpen
	case novacron.EventAnomalyClosed:
		kind, id, state = KindAnomaly, str(e.Details, "anomaly_id"), StateClosed
	case novacron.EventForecastBreach:
		kind, id = KindForecast, str(e.Details, "breach_id")
		state = StatePredicted
		if str(e.Details, "state") == StateCleared {
			state = StateCleared
		}
	case novacron.EventIncident:
		kind, id = KindIncident, str(e.Details, "incident_id")
		state = StateOpen
		if str(e.Details, "state") == StateClosed {
			state = StateClosed
		}
	default:
		return
	}
	if id == "" {
		id = e.ID
	}
	m := x.items[kind]
	it := m[id]
	if it == nil {
		it = &Item{ID: id, Kind: kind, Start: e.Time}
		if t, err := time.Parse(time.RFC3339, str(e.Details, "opened_at")); err == nil {
			it.Start = t
		}
		m[id] = it
		// Evict once the new item is filled in: with a zero Updated it
		// would be the oldest and evict itself.
		defer x.evict(kind)
	}
	if e.Time.Before(it.Updated) && state != StateClosed && state != StateCleared {
		// A late update never reopens a closed item.
		it.EventIDs = append(it.EventIDs, e.ID)
		return
	}
	it.State, it.Updated = state, e.Time
	if state == StateClosed || state == StateCleared {
		t := e.Time
		it.End = &t
	} else {
		it.End = nil
	}
	it.VMID, it.Host, it.Labels = e.VMID, e.Host, e.Labels
	it.Metric, it.Series = str(e.Details, "metric"), str(e.Details, "series")
	it.Summary, it.Explanation, it.Evidence, it.Severity = e.Summary, str(e.Details, "explanation"), e.Evidence, e.Severity
	if s := num(e.Details, "peak_score"); s > it.Score {
		it.Score = s
	}
	it.Details = e.Details
	it.EventIDs = append(it.EventIDs, e.ID)
}

// evict keeps at most MaxItems items of a kind, removing ended items
// first, oldest first.
func (x *Index) evict(kind string) {
	m := x.items[kind]
	if len(m) <= x.cfg.MaxItems {
		return
	}
	var victim *Item
	for _, it := range m {
		if victim == nil || (it.End != nil) && (victim.End == nil) ||
			((it.End != nil) == (victim.End != nil) && it.Updated.Before(victim.Updated)) {
			victim = it
		}
	}
	delete(m, victim.ID)
}

// Query filters and orders items.
type Query struct {
	// Kind is KindAnomaly, KindForecast or KindIncident.
	Kind string
	// VMID, Host, Metric and State match exactly when set.
	VMID, Host, Metric, State string
	// From and To bound the items' activity: an item counts when it was
	// active at some time in [From, To]. Zero means unbounded.
	From, To time.Time
	// Sort is "start", "updated" or "score", descending; a leading "+"
	// makes it ascending. Default "-start" (newest first).
	Sort string
	// Limit and Offset page the result; Limit 0 means 100.
	Limit, Offset int
}

// Sort keys.
var SortKeys = []string{"start", "updated", "score"}

// Find returns one page of matching items (copies) and how many match.
func (x *Index) Find(q Query) ([]Item, int) {
	x.mu.RLock()
	var out []Item
	for _, it := range x.items[q.Kind] {
		if (q.VMID != "" && it.VMID != q.VMID) || (q.Host != "" && it.Host != q.Host) ||
			(q.Metric != "" && it.Metric != q.Metric) || (q.State != "" && it.State != q.State) {
			continue
		}
		if !q.To.IsZero() && it.Start.After(q.To) {
			continue
		}
		if !q.From.IsZero() && it.End != nil && it.End.Before(q.From) {
			continue
		}
		c := *it
		c.EventIDs = append([]string(nil), it.EventIDs...)
		out = append(out, c)
	}
	x.mu.RUnlock()
	key, asc := strings.TrimLeft(q.Sort, "+-"), strings.HasPrefix(q.Sort, "+")
	less := func(a, b *Item) bool {
		switch key {
		case "updated":
			return a.Updated.Before(b.Updated)
		case "score":
			return a.Score < b.Score
		default:
			return a.Start.Before(b.Start)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if asc {
			return less(&out[i], &out[j]) || (!less(&out[j], &out[i]) && out[i].ID < out[j].ID)
		}
		return less(&out[j], &out[i]) || (!less(&out[i], &out[j]) && out[i].ID < out[j].ID)
	})
	total := len(out)
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	lo := min(max(q.Offset, 0), total)
	hi := min(lo+limit, total)
	return out[lo:hi], total
}

// Subscription is a live feed of new events.
type Subscription struct {
	c       chan novacron.Event
	x       *Index
	dropped atomicInt
}

// C delivers the events indexed after Subscribe, in order. Events are
// dropped (and counted) when the subscriber lags by SubscriberBuffer.
func (s *Subscription) C() <-chan novacron.Event { return s.c }

// Dropped returns how many events were dropped for this subscriber.
func (s *Subscription) Dropped() int64 { return s.dropped.Load() }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.x.mu.Lock()
	delete(s.x.subs, s)
	s.x.mu.Unlock()
}

// Subscribe returns a live feed; Close it when done.
func (x *Index) Subscribe() *Subscription {
	s := &Subscription{c: make(chan novacron.Event, x.cfg.SubscriberBuffer), x: x}
	x.mu.Lock()
	x.subs[s] = struct{}{}
	x.mu.Unlock()
	return s
}
