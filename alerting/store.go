package alerting

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/novacron/novacron/internal/statedb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns alerting's schema for statedb.DB.Migrate. New runs it;
// it is exported for tools that prepare a database ahead of time.
func Migrations() statedb.Migrations {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return statedb.Migrations{Component: "alerting", FS: sub}
}

// Alert states, as stored and shown by the API. "inactive" is the from
// state of a new alert and "resolved" the to state of one that ended.
const (
	StateInactive = "inactive"
	StatePending  = "pending"
	StateFiring   = "firing"
	StateResolved = "resolved"
)

// Alert sources.
const (
	SourceRule      = "rule"
	SourceThreshold = "threshold"
	SourceEvent     = "event"
)

// Alert is a current (pending or firing) alert.
type Alert struct {
	// Fingerprint identifies the label set, as Alertmanager computes it.
	Fingerprint string `json:"fingerprint"`
	// Source is "rule", "threshold" or "event".
	Source      string            `json:"source"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	// State is "pending" or "firing".
	State string `json:"state"`
	// Value is the expression's value at the last state change, for rule
	// alerts.
	Value    string    `json:"value,omitempty"`
	ActiveAt time.Time `json:"active_at"`
	// FiredAt is when the alert started firing; zero while pending.
	FiredAt      time.Time `json:"fired_at,omitzero"`
	UpdatedAt    time.Time `json:"updated_at"`
	GeneratorURL string    `json:"generator_url,omitempty"`
	// SilencedBy lists the IDs of the active silences muting the alert.
	SilencedBy []string `json:"silenced_by,omitempty"`
	// Inhibited is true when an inhibition rule mutes the alert.
	Inhibited bool `json:"inhibited"`

	scope string
}

// Name returns the alertname label.
func (a *Alert) Name() string { return a.Labels[model.AlertNameLabel] }

// Transition is one state change of an alert, as kept in the history.
type Transition struct {
	ID          int64             `json:"id"`
	Fingerprint string            `json:"fingerprint"`
	Source      string            `json:"source"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	From        string            `json:"from"`
	To          string            `json:"to"`
	Value       string            `json:"value,omitempty"`
	At          time.Time         `json:"at"`
}

// HistoryQuery selects history entries; zero fields do not filter.
type HistoryQuery struct {
	// Alertname keeps transitions of alerts with that name.
	Alertname string
	// Fingerprint keeps transitions of one alert.
	Fingerprint string
	// Matchers keep transitions whose labels match them all.
	Matchers []*Matcher
	// Since and Until bound the time of the transition (inclusive).
	Since, Until time.Time
	// Before returns entries with an ID below it (paging, newest first).
	Before int64
	// Limit caps the entries returned. Default 100, at most 1000.
	Limit int
}

// fingerprint returns Alertmanager's fingerprint of the label set.
func fingerprint(ls map[string]string) string {
	set := make(model.LabelSet, len(ls))
	for k, v := range ls {
		set[model.LabelName(k)] = model.LabelValue(v)
	}
	return set.Fingerprint().String()
}

func encodeMap(m map[string]string) string {
	if m == nil {
		m = map[string]string{}
	}
	b, _ := json.Marshal(m) // map[string]string always encodes; keys sorted
	return string(b)
}

func decodeMap(s string) (map[string]string, error) {
	m := map[string]string{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode stored labels: %w", err)
	}
	return m, nil
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// store is alerting's view of the state database.
type store struct {
	db *statedb.DB
}

// loadAlerts returns every current alert.
func (s *store) loadAlerts(ctx context.Context) ([]*Alert, error) {
	rows, err := s.db.Query(ctx, `SELECT fingerprint, scope, source, labels, annotations, state, value, active_at, fired_at, updated_at, generator_url FROM alerting_alerts`)
	if err != nil {
		return nil, fmt.Errorf("load alerts: %w", err)
	}
	defer rows.Close()
	var out []*Alert
	for rows.Next() {
		var a Alert
		var ls, as string
		var active, fired, updated int64
		if err := rows.Scan(&a.Fingerprint, &a.scope, &a.Source, &ls, &as, &a.State, &a.Value, &active, &fired, &updated, &a.GeneratorURL); err != nil {
			return nil, fmt.Errorf("load alerts: %w", err)
		}
		if a.Labels, err = decodeMap(ls); err != nil {
			return nil, err
		}
		if a.Annotations, err = decodeMap(as); err != nil {
			return nil, err
		}
		a.ActiveAt, a.FiredAt, a.UpdatedAt = fromMillis(active), fromMillis(fired), fromMillis(updated)
		out = append(out, &a)
	}
	return out, rows.Err()
}

// change is one transition to write with its effect on the current table.
type change struct {
	alert    *Alert // the alert after the change (labels of the old one when resolved)
	from, to string
	at       time.Time
}

// apply writes changes and the current-table updates in one transaction.
// upserts are alerts whose stored row must be refreshed without a state
// change (new annotations).
func (s *store) apply(ctx context.Context, changes []change, upserts []*Alert) error {
	if len(changes) == 0 && len(upserts) == 0 {
		return nil
	}
	return s.db.InTx(ctx, func(tx *statedb.Tx) error {
		for _, c := range changes {
			a := c.alert
			if _, err := tx.Exec(ctx, `INSERT INTO alerting_history (fingerprint, source, alertname, labels, annotations, from_state, to_state, value, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				a.Fingerprint, a.Source, a.Name(), encodeMap(a.Labels), encodeMap(a.Annotations), c.from, c.to, a.Value, millis(c.at)); err != nil {
				return fmt.Errorf("record alert history: %w", err)
			}
			if c.to == StateResolved {
				if _, err := tx.Exec(ctx, `DELETE FROM alerting_alerts WHERE scope = ? AND fingerprint = ?`, a.scope, a.Fingerprint); err != nil {
					return fmt.Errorf("delete resolved alert: %w", err)
				}
				continue
			}
			if err := upsertAlert(ctx, tx, a); err != nil {
				return err
			}
		}
		for _, a := range upserts {
			if err := upsertAlert(ctx, tx, a); err != nil {
				return err
			}
		}
		return nil
	})
}

func upsertAlert(ctx context.Context, tx *statedb.Tx, a *Alert) error {
	_, err := tx.Exec(ctx, `INSERT INTO alerting_alerts (fingerprint, scope, source, alertname, labels, annotations, state, value, active_at, fired_at, updated_at, generator_url)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (scope, fingerprint) DO UPDATE SET source = excluded.source, alertname = excluded.alertname, labels = excluded.labels,
annotations = excluded.annotations, state = excluded.state, value = excluded.value, active_at = excluded.active_at,
fired_at = excluded.fired_at, updated_at = excluded.updated_at, generator_url = excluded.generator_url`,
		a.Fingerprint, a.scope, a.Source, a.Name(), encodeMap(a.Labels), encodeMap(a.Annotations), a.State, a.Value,
		millis(a.ActiveAt), millis(a.FiredAt), millis(a.UpdatedAt), a.GeneratorURL)
	if err != nil {
		return fmt.Errorf("store alert %s: %w", a.Fingerprint, err)
	}
	return nil
}

// history returns transitions matching q, newest first.
func (s *store) history(ctx context.Context, q HistoryQuery) ([]Transition, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var where []string
	var args []any
	if q.Alertname != "" {
		where, args = append(where, "alertname = ?"), append(args, q.Alertname)
	}
	if q.Fingerprint != "" {
		where, args = append(where, "fingerprint = ?"), append(args, q.Fingerprint)
	}
	if !q.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, q.Since.UnixMilli())
	}
	if !q.Until.IsZero() {
		where, args = append(where, "at <= ?"), append(args, q.Until.UnixMilli())
	}
	if q.Before > 0 {
		where, args = append(where, "id < ?"), append(args, q.Before)
	}
	query := `SELECT id, fingerprint, source, labels, annotations, from_state, to_state, value, at FROM alerting_history`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC"
	// Label matchers are applied here, so read in pages until the limit
	// is filled.
	var out []Transition
	before := int64(0)
	for len(out) < limit {
		qq, aa := query, args
		if before > 0 {
			if len(where) > 0 {
				qq = strings.Replace(query, " WHERE ", " WHERE id < ? AND ", 1)
			} else {
				qq = strings.Replace(query, " ORDER BY", " WHERE id < ? ORDER BY", 1)
			}
			aa = append([]any{before}, args...)
		}
		page := limit * 2
		rows, err := s.db.Query(ctx, qq+" LIMIT "+strconv.Itoa(page), aa...)
		if err != nil {
			return nil, fmt.Errorf("query alert history: %w", err)
		}
		n := 0
		for rows.Next() {
			n++
			var t Transition
			var ls, as string
			var at int64
			if err := rows.Scan(&t.ID, &t.Fingerprint, &t.Source, &ls, &as, &t.From, &t.To, &t.Value, &at); err != nil {
				rows.Close()
				return nil, fmt.Errorf("query alert history: %w", err)
			}
			before = t.ID
			if t.Labels, err = decodeMap(ls); err != nil {
				rows.Close()
				return nil, err
			}
			if t.Annotations, err = decodeMap(as); err != nil {
				rows.Close()
				return nil, err
			}
			t.At = fromMillis(at)
			if matchAll(q.Matchers, t.Labels) && len(out) < limit {
				out = append(out, t)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("query alert history: %w", err)
		}
		if len(q.Matchers) == 0 || n < page {
			break
		}
	}
	return out, nil
}

// pruneHistory deletes transitions older than cutoff.
func (s *store) pruneHistory(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.db.Exec(ctx, `DELETE FROM alerting_history WHERE at < ?`, cutoff.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("prune alert history: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// blob returns a stored snapshot, nil when there is none.
func (s *store) blob(ctx context.Context, name string) ([]byte, error) {
	var b []byte
	err := s.db.QueryRow(ctx, `SELECT data FROM alerting_blobs WHERE name = ?`, name).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load %s snapshot: %w", name, err)
	}
	return b, nil
}

func (s *store) saveBlob(ctx context.Context, name string, b []byte, now time.Time) error {
	if b == nil {
		b = []byte{}
	}
	_, err := s.db.Exec(ctx, `INSERT INTO alerting_blobs (name, data, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`, name, b, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("save %s snapshot: %w", name, err)
	}
	return nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
