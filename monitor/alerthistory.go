package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// insertEvents records events and sets their IDs.
func (h *history) insertEvents(ctx context.Context, events []AlertEvent) error {
	if len(events) == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("monitor: alert history: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO alert_events
		(ts, kind, key, rule, severity, cluster, node, app, client, value, op, threshold, summary, labels, starts_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("monitor: alert history: %w", err)
	}
	defer stmt.Close()
	for i := range events {
		e := &events[i]
		labels, _ := json.Marshal(e.Labels)
		res, err := stmt.ExecContext(ctx, e.Time.UnixMilli(), e.Kind, e.Key, e.Rule, string(e.Severity), e.Cluster, e.Node,
			e.App, e.Client, e.Value, e.Op, e.Threshold, e.Summary, string(labels), e.StartsAt.UnixMilli())
		if err != nil {
			return fmt.Errorf("monitor: alert history: %w", err)
		}
		if e.ID, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("monitor: alert history: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("monitor: alert history: %w", err)
	}
	return nil
}

// setDeliveries appends delivery outcomes to events.
func (h *history) setDeliveries(ctx context.Context, byEvent map[int64][]Delivery) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("monitor: alert history: %w", err)
	}
	defer tx.Rollback()
	for id, ds := range byEvent {
		if id == 0 {
			continue
		}
		var cur string
		if err := tx.QueryRowContext(ctx, "SELECT deliveries FROM alert_events WHERE id = ?", id).Scan(&cur); err != nil {
			continue // aged out meanwhile
		}
		var all []Delivery
		_ = json.Unmarshal([]byte(cur), &all)
		all = append(all, ds...)
		b, _ := json.Marshal(all)
		if _, err := tx.ExecContext(ctx, "UPDATE alert_events SET deliveries = ? WHERE id = ?", string(b), id); err != nil {
			return fmt.Errorf("monitor: alert history: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("monitor: alert history: %w", err)
	}
	return nil
}

// AlertHistoryQuery selects alert history. Zero fields do not filter.
type AlertHistoryQuery struct {
	// From and To bound the events' times; zero To means now, zero From
	// means seven days before To.
	From, To time.Time
	Cluster  string
	App      string
	Rule     string
	// Kind is "firing", "repeat" or "resolved".
	Kind string
	// Limit caps the events returned, newest first. Zero means 100; at
	// most 1000.
	Limit int
}

// maxHistoryLimit bounds one AlertHistory answer.
const maxHistoryLimit = 1000

// AlertHistory returns the alert events this server recorded, newest
// first. The history lives in the data dir of the server that ran the
// monitor (the leader): on another server it holds only what that server
// recorded while it led. Invalid input fails with [*FieldError]s.
func (m *Monitor) AlertHistory(ctx context.Context, q AlertHistoryQuery) ([]AlertEvent, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	if q.To.IsZero() {
		q.To = m.cfg.Now()
	}
	if q.From.IsZero() {
		q.From = q.To.Add(-7 * 24 * time.Hour)
	}
	var errs []error
	if !q.From.Before(q.To) {
		errs = append(errs, fieldErr("from", "must be before to"))
	}
	if q.Limit < 0 || q.Limit > maxHistoryLimit {
		errs = append(errs, fieldErr("limit", "%d: want 0 (100) to %d", q.Limit, maxHistoryLimit))
	}
	if q.Kind != "" && q.Kind != KindFiring && q.Kind != KindRepeat && q.Kind != KindResolved {
		errs = append(errs, fieldErr("kind", "%q: want firing, repeat or resolved", q.Kind))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	where := []string{"ts >= ?", "ts < ?"}
	args := []any{q.From.UnixMilli(), q.To.UnixMilli()}
	for _, f := range []struct{ col, v string }{{"cluster", q.Cluster}, {"app", q.App}, {"rule", q.Rule}, {"kind", q.Kind}} {
		if f.v != "" {
			where = append(where, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	args = append(args, q.Limit)
	rows, err := m.hist.db.QueryContext(ctx, `SELECT id, ts, kind, key, rule, severity, cluster, node, app, client,
		value, op, threshold, summary, labels, starts_at, deliveries FROM alert_events WHERE `+
		strings.Join(where, " AND ")+" ORDER BY ts DESC, id DESC LIMIT ?", args...)
	if err != nil {
		return nil, fmt.Errorf("monitor: alert history: %w", err)
	}
	defer rows.Close()
	out := []AlertEvent{}
	for rows.Next() {
		var e AlertEvent
		var ts, starts int64
		var sev, labels, deliveries string
		if err := rows.Scan(&e.ID, &ts, &e.Kind, &e.Key, &e.Rule, &sev, &e.Cluster, &e.Node, &e.App, &e.Client,
			&e.Value, &e.Op, &e.Threshold, &e.Summary, &labels, &starts, &deliveries); err != nil {
			return nil, fmt.Errorf("monitor: alert history: %w", err)
		}
		e.Severity = Severity(sev)
		e.Time = time.UnixMilli(ts).UTC()
		e.StartsAt = time.UnixMilli(starts).UTC()
		e.State = StateFiring
		if e.Kind == KindResolved {
			e.State = StateResolved
		}
		_ = json.Unmarshal([]byte(labels), &e.Labels)
		e.Deliveries = []Delivery{}
		_ = json.Unmarshal([]byte(deliveries), &e.Deliveries)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("monitor: alert history: %w", err)
	}
	return out, nil
}
