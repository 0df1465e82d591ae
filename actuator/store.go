package actuator

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	novacron "github.com/novacron/novacron"
	"github.com/novacron/novacron/internal/statedb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the actuator's schema for statedb.DB.Migrate. New
// runs it; it is exported for tools that prepare a database ahead of time.
func Migrations() statedb.Migrations {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return statedb.Migrations{Component: "actuator", FS: sub}
}

// errFenced is returned by a ledger write of an executor that no longer
// holds the lease (or whose action changed state underneath it).
var errFenced = novacron.Errorf(novacron.ECONFLICT, "action changed or lease lost")

type store struct {
	db        *statedb.DB
	leaseName string
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// insert adds a planned action; it reports false when the id exists.
func (s *store) insert(ctx context.Context, a *Action, audit AuditEntry) (bool, error) {
	body, err := json.Marshal(a)
	if err != nil {
		return false, err
	}
	inserted := false
	err = s.db.InTx(ctx, func(tx *statedb.Tx) error {
		res, err := tx.Exec(ctx, `INSERT INTO actuator_actions (id, vm_id, provider, tenant, policy, mode, kind, state, generation, body, created_ms, updated_ms, started_ms, finished_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			a.ID, a.VMID, a.Provider, a.Tenant, a.Policy, a.Mode, string(a.Kind), a.State, a.Generation, string(body),
			ms(a.CreatedAt), ms(a.UpdatedAt), ms(a.StartedAt), ms(a.FinishedAt))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		inserted = true
		return appendAudit(ctx, tx, audit)
	})
	if err != nil {
		return false, fmt.Errorf("record action %s of vm %s: %w", a.ID, a.VMID, err)
	}
	return inserted, nil
}

// update writes a, provided its stored state is still from (compare and
// set), and when fence is non-zero only while the lease is held with that
// token. It returns errFenced when either condition fails.
func (s *store) update(ctx context.Context, a *Action, from string, holder string, fence int64, audit *AuditEntry) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	q := `UPDATE actuator_actions SET state = ?, body = ?, mode = ?, updated_ms = ?, started_ms = ?, finished_ms = ? WHERE id = ? AND state = ?`
	args := []any{a.State, string(body), a.Mode, ms(a.UpdatedAt), ms(a.StartedAt), ms(a.FinishedAt), a.ID, from}
	if fence != 0 {
		q += ` AND EXISTS (SELECT 1 FROM actuator_lease WHERE name = ? AND holder = ? AND token = ?)`
		args = append(args, s.leaseName, holder, fence)
	}
	return s.db.InTx(ctx, func(tx *statedb.Tx) error {
		res, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("update action %s: %w", a.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errFenced
		}
		if audit != nil {
			return appendAudit(ctx, tx, *audit)
		}
		return nil
	})
}

func appendAudit(ctx context.Context, tx *statedb.Tx, e AuditEntry) error {
	var seq int64
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM actuator_audit WHERE action_id = ?`, e.ActionID).Scan(&seq); err != nil {
		return fmt.Errorf("audit of action %s: %w", e.ActionID, err)
	}
	_, err := tx.Exec(ctx, `INSERT INTO actuator_audit (seq, action_id, vm_id, time_ms, actor, event, from_state, to_state, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		seq+1, e.ActionID, e.VMID, ms(e.Time), e.Actor, e.Event, e.FromState, e.ToState, e.Message)
	if err != nil {
		return fmt.Errorf("audit of action %s: %w", e.ActionID, err)
	}
	return nil
}

func scanActions(rows *sql.Rows) ([]Action, error) {
	defer rows.Close()
	var out []Action
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var a Action
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			return nil, fmt.Errorf("decode stored action: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// get returns one action, ENOTFOUND when missing.
func (s *store) get(ctx context.Context, id string) (Action, error) {
	rows, err := s.db.Query(ctx, `SELECT body FROM actuator_actions WHERE id = ?`, id)
	if err != nil {
		return Action{}, fmt.Errorf("read action %s: %w", id, err)
	}
	as, err := scanActions(rows)
	if err != nil {
		return Action{}, err
	}
	if len(as) == 0 {
		return Action{}, novacron.Errorf(novacron.ENOTFOUND, "action %q not found", id)
	}
	return as[0], nil
}

// ActionFilter selects actions to list.
type ActionFilter struct {
	// States, VMID, Policy and Kind restrict the list when set.
	States []string
	VMID   string
	Policy string
	Kind   string
	// Limit caps the result (newest first); 0 means 100.
	Limit  int
	Offset int
}

func (s *store) list(ctx context.Context, f ActionFilter) ([]Action, error) {
	var where []string
	var args []any
	if len(f.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	for _, c := range []struct{ col, v string }{{"vm_id", f.VMID}, {"policy", f.Policy}, {"kind", f.Kind}} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	q := `SELECT body FROM actuator_actions`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q += fmt.Sprintf(" ORDER BY created_ms DESC, id LIMIT %d OFFSET %d", f.Limit, max(f.Offset, 0))
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list actions: %w", err)
	}
	return scanActions(rows)
}

// pendingVMs returns the VMs with unfinished actions.
func (s *store) pendingVMs(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT DISTINCT vm_id FROM actuator_actions WHERE state IN (?, ?, ?, ?, ?)`,
		StateProposed, StateApproved, StateRunning, StateVerifying, StateRollingBack)
	if err != nil {
		return nil, fmt.Errorf("list pending actions: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// counts returns the actions started since since, those in flight, those
// in flight of tenant, and when the VM's last action started.
func (s *store) counts(ctx context.Context, since time.Time, tenant, vmID string) (started, inflight, tenantInflight int, lastStart time.Time, err error) {
	err = s.db.QueryRow(ctx, `SELECT COUNT(*) FROM actuator_actions WHERE started_ms >= ?`, ms(since)).Scan(&started)
	if err == nil {
		err = s.db.QueryRow(ctx, `SELECT COUNT(*) FROM actuator_actions WHERE state IN (?, ?, ?)`, StateRunning, StateVerifying, StateRollingBack).Scan(&inflight)
	}
	if err == nil {
		err = s.db.QueryRow(ctx, `SELECT COUNT(*) FROM actuator_actions WHERE tenant = ? AND state IN (?, ?, ?)`, tenant, StateRunning, StateVerifying, StateRollingBack).Scan(&tenantInflight)
	}
	var last int64
	if err == nil {
		err = s.db.QueryRow(ctx, `SELECT COALESCE(MAX(started_ms), 0) FROM actuator_actions WHERE vm_id = ?`, vmID).Scan(&last)
	}
	if last > 0 {
		lastStart = time.UnixMilli(last)
	}
	if err != nil {
		err = fmt.Errorf("count actions: %w", err)
	}
	return
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	ActionID, VMID string
	// From and To bound the time when set.
	From, To time.Time
	// Limit caps the result (newest first); 0 means 100.
	Limit int
}

func (s *store) audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	var where []string
	var args []any
	if f.ActionID != "" {
		where, args = append(where, "action_id = ?"), append(args, f.ActionID)
	}
	if f.VMID != "" {
		where, args = append(where, "vm_id = ?"), append(args, f.VMID)
	}
	if !f.From.IsZero() {
		where, args = append(where, "time_ms >= ?"), append(args, ms(f.From))
	}
	if !f.To.IsZero() {
		where, args = append(where, "time_ms <= ?"), append(args, ms(f.To))
	}
	q := `SELECT seq, action_id, vm_id, time_ms, actor, event, from_state, to_state, message FROM actuator_audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q += fmt.Sprintf(" ORDER BY time_ms DESC, action_id, seq DESC LIMIT %d", f.Limit)
	rows, err := s.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var t int64
		if err := rows.Scan(&e.Seq, &e.ActionID, &e.VMID, &t, &e.Actor, &e.Event, &e.FromState, &e.ToState, &e.Message); err != nil {
			return nil, err
		}
		e.Time = time.UnixMilli(t).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// eventKey is the key an event is stored under: its ID, or one made of
// its kind, VM and time when it has none.
func eventKey(ev novacron.Event) string {
	if ev.ID != "" {
		return ev.ID
	}
	return fmt.Sprintf("%s/%s/%d", ev.Kind, ev.VMID, ev.Time.UnixNano())
}

// seenEvent reports whether the event was stored already, that is fully
// consumed before.
func (s *store) seenEvent(ctx context.Context, ev novacron.Event) (bool, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM actuator_events WHERE id = ?`, eventKey(ev)).Scan(&n)
	return n > 0, err
}

func (s *store) saveEvent(ctx context.Context, ev novacron.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO actuator_events (id, time_ms, body) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`, eventKey(ev), ms(ev.Time), string(body))
	return err
}

func (s *store) events(ctx context.Context, from time.Time) ([]novacron.Event, error) {
	rows, err := s.db.Query(ctx, `SELECT body FROM actuator_events WHERE time_ms >= ? ORDER BY time_ms, id`, ms(from))
	if err != nil {
		return nil, fmt.Errorf("read stored events: %w", err)
	}
	defer rows.Close()
	var out []novacron.Event
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var ev novacron.Event
		if err := json.Unmarshal([]byte(body), &ev); err == nil {
			out = append(out, ev)
		}
	}
	return out, rows.Err()
}

func (s *store) pruneEvents(ctx context.Context, before time.Time) error {
	_, err := s.db.Exec(ctx, `DELETE FROM actuator_events WHERE time_ms < ?`, ms(before))
	return err
}

func (s *store) setting(ctx context.Context, name string) (string, bool, error) {
	var v string
	err := s.db.QueryRow(ctx, `SELECT value FROM actuator_settings WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return v, err == nil, err
}

func (s *store) setSetting(ctx context.Context, name, value string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO actuator_settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return err
}

func (s *store) policies(ctx context.Context) ([]Policy, error) {
	rows, err := s.db.Query(ctx, `SELECT body FROM actuator_policies ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read policies: %w", err)
	}
	defer rows.Close()
	var out []Policy
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		var p Policy
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			return nil, fmt.Errorf("decode stored policy: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// putPolicy stores p and bumps the policies' generation in the same
// transaction, so a replica that sees the new generation reads p.
func (s *store) putPolicy(ctx context.Context, p Policy, now time.Time) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.db.InTx(ctx, func(tx *statedb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO actuator_policies (name, body, updated_ms) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_ms = excluded.updated_ms`,
			p.Name, string(body), ms(now)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE actuator_policy_generation SET generation = generation + 1 WHERE name = 'policies'`)
		return err
	})
}

// policyGeneration returns the generation of the stored policies: it
// moves with every change.
func (s *store) policyGeneration(ctx context.Context) (int64, error) {
	var gen int64
	if err := s.db.QueryRow(ctx, `SELECT generation FROM actuator_policy_generation WHERE name = 'policies'`).Scan(&gen); err != nil {
		return 0, fmt.Errorf("read policy generation: %w", err)
	}
	return gen, nil
}

// acquireLease takes or renews the lease for holder; it returns the
// fencing token while held, 0 otherwise. Every write is a compare and
// set, so two actuators racing for an expired lease cannot both win.
func (s *store) acquireLease(ctx context.Context, holder string, now time.Time, ttl time.Duration) (int64, error) {
	var cur string
	var token, expires int64
	err := s.db.QueryRow(ctx, `SELECT holder, token, expires_ms FROM actuator_lease WHERE name = ?`, s.leaseName).Scan(&cur, &token, &expires)
	until := ms(now.Add(ttl))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		res, err := s.db.Exec(ctx, `INSERT INTO actuator_lease (name, holder, token, expires_ms) VALUES (?, ?, 1, ?) ON CONFLICT (name) DO NOTHING`, s.leaseName, holder, until)
		if err != nil {
			return 0, fmt.Errorf("take lease %s: %w", s.leaseName, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return 1, nil
		}
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read lease %s: %w", s.leaseName, err)
	case cur == holder:
		res, err := s.db.Exec(ctx, `UPDATE actuator_lease SET expires_ms = ? WHERE name = ? AND holder = ? AND token = ?`, until, s.leaseName, holder, token)
		if err != nil {
			return 0, fmt.Errorf("renew lease %s: %w", s.leaseName, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return token, nil
		}
		return 0, nil
	case expires < ms(now):
		res, err := s.db.Exec(ctx, `UPDATE actuator_lease SET holder = ?, token = ?, expires_ms = ? WHERE name = ? AND token = ? AND expires_ms = ?`,
			holder, token+1, until, s.leaseName, token, expires)
		if err != nil {
			return 0, fmt.Errorf("take lease %s: %w", s.leaseName, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return token + 1, nil
		}
	}
	return 0, nil
}

func (s *store) releaseLease(ctx context.Context, holder string, token int64) error {
	_, err := s.db.Exec(ctx, `UPDATE actuator_lease SET expires_ms = 0 WHERE name = ? AND holder = ? AND token = ?`, s.leaseName, holder, token)
	return err
}
