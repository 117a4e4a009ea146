package monitor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// Alert states.
const (
	StatePending  = "pending"  // the condition holds, not yet for the rule's For
	StateFiring   = "firing"   // notified
	StateResolved = "resolved" // in events only
)

// Event kinds, in alert history and notifications.
const (
	KindFiring   = "firing"   // the alert started firing
	KindRepeat   = "repeat"   // still firing, notified again after the repeat interval
	KindResolved = "resolved" // the condition no longer holds
	KindTest     = "test"     // a test message from TestChannel
)

// Alert is an alert that is pending or firing.
type Alert struct {
	// Key identifies the alert: rule@subject.
	Key      string   `json:"key"`
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	State    string   `json:"state"`
	// Cluster, Node, App and Client name the subject, as far as they apply.
	Cluster   string            `json:"cluster,omitempty"`
	Node      string            `json:"node,omitempty"`
	App       string            `json:"app,omitempty"`
	Client    string            `json:"client,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Metric    string            `json:"metric"`
	Value     float64           `json:"value"`
	Op        string            `json:"op"`
	Threshold float64           `json:"threshold"`
	Summary   string            `json:"summary"`
	// StartsAt is when the condition began to hold, FiringAt when the
	// alert fired.
	StartsAt       time.Time `json:"starts_at"`
	FiringAt       time.Time `json:"firing_at,omitzero"`
	LastNotifiedAt time.Time `json:"last_notified_at,omitzero"`
	Notifications  int       `json:"notifications"`
}

// AlertEvent is one entry of the alert history: an alert that fired, was
// repeated or resolved, with what its notification achieved.
type AlertEvent struct {
	ID   int64     `json:"id"`
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	Alert
	Deliveries []Delivery `json:"deliveries"`

	channels []string // the rule's channels, for routing
}

// Delivery is the outcome of sending one notification to one channel.
type Delivery struct {
	Channel  string    `json:"channel"`
	Type     string    `json:"type"`
	OK       bool      `json:"ok"`
	Error    string    `json:"error,omitempty"`
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
}

// alerter holds alert state between passes. evaluate runs on the pass;
// list may run beside it (API calls), hence the lock.
type alerter struct {
	mu     sync.Mutex
	active map[string]*Alert
	loaded bool // state read from the coordinator once this Run
	dirty  bool // firing set or notification times changed since the last write
	rules  []Rule
}

// subjectName describes a subject in a summary.
func subjectName(s *subject) string {
	switch s.scope {
	case ScopeNode:
		return fmt.Sprintf("node %s (%s) of cluster %s", s.node, s.labels["role"], s.cluster)
	case ScopeCluster:
		return "cluster " + s.cluster
	case ScopeApp:
		if s.cluster != "" {
			return fmt.Sprintf("app %s (cluster %s)", s.app, s.cluster)
		}
		return "app " + s.app
	case ScopeClient:
		return fmt.Sprintf("client %s of app %s", s.client, s.app)
	}
	return s.key
}

// formatValue renders a value with its unit.
func formatValue(metric string, v float64) string {
	mi := catalogByName[metric]
	if mi == nil {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	switch mi.Unit {
	case "bytes":
		return humanBytes(v)
	case "ratio":
		return fmt.Sprintf("%.1f%%", v*100)
	case "seconds":
		return (time.Duration(v * float64(time.Second))).Round(time.Millisecond).String()
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func humanBytes(v float64) string {
	const unit = 1024
	if v < unit {
		return fmt.Sprintf("%.0f B", v)
	}
	div, exp := float64(unit), 0
	for n := v / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", v/div, "KMGTPE"[exp])
}

func summary(r *Rule, s *subject, v, threshold float64) string {
	out := fmt.Sprintf("%s: %s is %s (%s %s)", subjectName(s), r.Metric, formatValue(r.Metric, v), r.Op, formatValue(r.Metric, threshold))
	if s.detail != "" {
		out += "; " + s.detail
	}
	return out
}

// evaluate applies the rules to a snapshot and returns the events to
// record and notify.
func (a *alerter) evaluate(now time.Time, snap *snapshot, rules []Rule, defRepeat time.Duration) []AlertEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.active == nil {
		a.active = make(map[string]*Alert)
	}
	var events []AlertEvent
	emit := func(kind string, al *Alert, r *Rule) {
		e := AlertEvent{Time: now, Kind: kind, Alert: *al}
		e.Labels = maps.Clone(al.Labels)
		if r != nil {
			e.channels = r.Channels
		}
		if kind == KindResolved {
			e.State = StateResolved
		}
		events = append(events, e)
	}
	seen := make(map[string]bool)
	for i := range rules {
		r := &rules[i]
		mi := catalogByName[r.Metric]
		if mi == nil {
			continue
		}
		for _, sub := range snap.byScope(mi.Scope) {
			eff := r.forCluster(sub.cluster)
			if eff.disabled {
				continue
			}
			key := r.Name + "@" + sub.key
			seen[key] = true
			v, ok := sub.value(r.Metric)
			if !ok {
				continue // no data (a node that is down has no memory figure): hold
			}
			al := a.active[key]
			if !compare(v, r.Op, eff.threshold) {
				if al != nil {
					if al.State == StateFiring {
						al.Value = v
						al.Summary = "resolved: " + summary(r, sub, v, eff.threshold)
						emit(KindResolved, al, r)
						a.dirty = true
					}
					delete(a.active, key)
				}
				continue
			}
			if al == nil {
				al = &Alert{Key: key, Rule: r.Name, State: StatePending, StartsAt: now,
					Cluster: sub.cluster, Node: sub.node, App: sub.app, Client: sub.client}
				a.active[key] = al
			}
			al.Severity, al.Metric, al.Value, al.Op, al.Threshold = eff.severity, r.Metric, v, r.Op, eff.threshold
			al.Labels = maps.Clone(sub.labels)
			al.Summary = summary(r, sub, v, eff.threshold)
			switch {
			case al.State == StatePending && now.Sub(al.StartsAt) >= eff.forDur:
				al.State, al.FiringAt, al.LastNotifiedAt = StateFiring, now, now
				al.Notifications++
				emit(KindFiring, al, r)
				a.dirty = true
			case al.State == StateFiring:
				repeat := cmp.Or(time.Duration(r.Repeat), defRepeat)
				if now.Sub(al.LastNotifiedAt) >= repeat {
					al.LastNotifiedAt = now
					al.Notifications++
					emit(KindRepeat, al, r)
					a.dirty = true
				}
			}
		}
	}
	// Alerts whose rule was removed or disabled, or whose subject is gone.
	byName := make(map[string]*Rule, len(rules))
	for i := range rules {
		byName[rules[i].Name] = &rules[i]
	}
	for _, key := range slices.Sorted(maps.Keys(a.active)) {
		if seen[key] {
			continue
		}
		al := a.active[key]
		if al.App != "" && !snap.appsRead {
			continue // the apps could not be read this pass: no news is not good news
		}
		if al.State == StateFiring {
			al.Summary = "resolved: no longer evaluated (the rule was removed or disabled, or its subject is gone); was: " + al.Summary
			emit(KindResolved, al, byName[al.Rule])
			a.dirty = true
		}
		delete(a.active, key)
	}
	return events
}

// list returns the pending and firing alerts, most severe and oldest
// first.
func (a *alerter) list() []Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Alert, 0, len(a.active))
	for _, al := range a.active {
		c := *al
		c.Labels = maps.Clone(al.Labels)
		out = append(out, c)
	}
	sortAlerts(out)
	return out
}

func sortAlerts(out []Alert) {
	slices.SortFunc(out, func(x, y Alert) int {
		return cmp.Or(cmp.Compare(y.Severity.rank(), x.Severity.rank()), x.StartsAt.Compare(y.StartsAt), cmp.Compare(x.Key, y.Key))
	})
}

// load restores the firing alerts a previous leader recorded, so they are
// neither notified again nor left without their resolved notification.
func (a *alerter) load(ctx context.Context, st *meta.Store) error {
	rec, _, err := st.AlertState().Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		a.mu.Lock()
		a.loaded = true
		a.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("monitor: read alert state: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.active == nil {
		a.active = make(map[string]*Alert)
	}
	for _, x := range rec.Alerts {
		a.active[x.Key] = &Alert{
			Key: x.Key, Rule: x.Rule, Severity: Severity(x.Severity), State: StateFiring,
			Cluster: x.Cluster, Node: x.Node, App: x.App, Client: x.Client, Labels: x.Labels,
			Metric: x.Metric, Value: x.Value, Op: x.Op, Threshold: x.Threshold, Summary: x.Summary,
			StartsAt: x.StartsAt, FiringAt: x.FiringAt, LastNotifiedAt: x.LastNotifiedAt, Notifications: x.Notifications,
		}
	}
	a.loaded = true
	return nil
}

// save writes the firing alerts when they changed since the last write.
func (a *alerter) save(ctx context.Context, st *meta.Store, server string, now time.Time) error {
	a.mu.Lock()
	if !a.dirty {
		a.mu.Unlock()
		return nil
	}
	rec := &meta.AlertState{UpdatedAt: now.UTC(), Server: server, Alerts: []meta.ActiveAlert{}}
	for _, key := range slices.Sorted(maps.Keys(a.active)) {
		al := a.active[key]
		if al.State != StateFiring {
			continue
		}
		rec.Alerts = append(rec.Alerts, meta.ActiveAlert{
			Key: al.Key, Rule: al.Rule, Severity: string(al.Severity), Cluster: al.Cluster, Node: al.Node,
			App: al.App, Client: al.Client, Labels: al.Labels, Metric: al.Metric, Value: al.Value, Op: al.Op, Threshold: al.Threshold,
			Summary: al.Summary, StartsAt: al.StartsAt, FiringAt: al.FiringAt, LastNotifiedAt: al.LastNotifiedAt,
			Notifications: al.Notifications,
		})
	}
	a.dirty = false
	a.mu.Unlock()
	_, _, err := st.AlertState().Upsert(ctx, func(cur *meta.AlertState) error {
		*cur = *rec
		return nil
	})
	if err != nil {
		a.mu.Lock()
		a.dirty = true // try again after the next pass
		a.mu.Unlock()
		return fmt.Errorf("monitor: write alert state: %w", err)
	}
	return nil
}

// reset forgets everything when a Run ends: the next Run (perhaps after
// this server leads again) starts from the coordinator's record.
func (a *alerter) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.active, a.loaded, a.dirty, a.rules = nil, false, false, nil
}

// Alerts returns the alerts pending or firing now. On the server that
// runs the monitor it is the live state; elsewhere it is the firing alerts
// the leader last recorded in the coordinator.
func (m *Monitor) Alerts(ctx context.Context) ([]Alert, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	if m.isRunning() {
		return m.alerts.list(), nil
	}
	rec, _, err := m.cfg.Store.AlertState().Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return []Alert{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]Alert, 0, len(rec.Alerts))
	for _, x := range rec.Alerts {
		out = append(out, Alert{
			Key: x.Key, Rule: x.Rule, Severity: Severity(x.Severity), State: StateFiring,
			Cluster: x.Cluster, Node: x.Node, App: x.App, Client: x.Client, Labels: x.Labels,
			Metric: x.Metric, Value: x.Value, Op: x.Op, Threshold: x.Threshold, Summary: x.Summary,
			StartsAt: x.StartsAt, FiringAt: x.FiringAt, LastNotifiedAt: x.LastNotifiedAt, Notifications: x.Notifications,
		})
	}
	sortAlerts(out)
	return out, nil
}
