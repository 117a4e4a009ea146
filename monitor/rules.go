package monitor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// Severity ranks alerts.
type Severity string

// Severities, from least to most urgent.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

func (s Severity) rank() int {
	switch s {
	case SeverityInfo:
		return 1
	case SeverityWarning:
		return 2
	case SeverityCritical:
		return 3
	}
	return 0
}

// Rule is an alert rule: the alert fires for a subject (node, cluster, app
// or client registration, by the metric's scope) when Metric Op Threshold
// has held for For.
type Rule struct {
	Name string `json:"name"`
	// Metric is a name from [Metrics].
	Metric string `json:"metric"`
	// Op is ">", ">=", "<", "<=", "==" or "!=".
	Op        string        `json:"op"`
	Threshold float64       `json:"threshold"`
	For       meta.Duration `json:"for"`
	Severity  Severity      `json:"severity"`
	// Repeat is how often a firing alert is notified again; zero means
	// the monitor's RepeatInterval.
	Repeat meta.Duration `json:"repeat,omitempty"`
	// Channels names the channels to notify; empty means all of them.
	Channels    []string `json:"channels,omitempty"`
	Disabled    bool     `json:"disabled,omitempty"`
	Description string   `json:"description,omitempty"`
	// Clusters adjusts the rule for single clusters, by cluster name.
	Clusters map[string]RuleOverride `json:"clusters,omitempty"`

	// BuiltIn (output only) marks one of [DefaultRules]; Customized (output
	// only) says an operator changed it.
	BuiltIn    bool      `json:"builtin"`
	Customized bool      `json:"customized"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
	// UpdatedBy names who last set the rule; SetRule stores what it is
	// given (the API user).
	UpdatedBy string `json:"updated_by,omitempty"`
}

// RuleOverride changes a rule for one cluster. Nil or empty fields keep the
// rule's value.
type RuleOverride struct {
	Threshold *float64       `json:"threshold,omitempty"`
	For       *meta.Duration `json:"for,omitempty"`
	Severity  Severity       `json:"severity,omitempty"`
	Disabled  *bool          `json:"disabled,omitempty"`
}

// DefaultRules are the built-in rules, active until an operator changes or
// disables them.
func DefaultRules() []Rule {
	d := func(v time.Duration) meta.Duration { return meta.Duration(v) }
	rules := []Rule{
		{Name: "node_down", Metric: mUp, Op: "==", Threshold: 0, For: d(30 * time.Second), Severity: SeverityCritical,
			Description: "A node did not answer its polls within the node timeout."},
		{Name: "cluster_state_fail", Metric: mClusterStateOK, Op: "==", Threshold: 0, For: d(30 * time.Second), Severity: SeverityCritical,
			Description: "Most reachable nodes report cluster_state:fail; the cluster refuses commands."},
		{Name: "slots_not_covered", Metric: mClusterUncovered, Op: ">", Threshold: 0, For: d(30 * time.Second), Severity: SeverityCritical,
			Description: "Some hash slots are unassigned or served by a failed master."},
		{Name: "memory_high", Metric: mMemoryRatio, Op: ">", Threshold: 0.85, For: d(time.Minute), Severity: SeverityWarning,
			Description: "A node uses more than 85% of its maxmemory; evictions or OOM errors follow."},
		{Name: "replication_broken", Metric: mLinkUp, Op: "==", Threshold: 0, For: d(time.Minute), Severity: SeverityCritical,
			Description: "A replica's link to its master is down."},
		{Name: "replication_lag", Metric: mLagSeconds, Op: ">", Threshold: 30, For: d(time.Minute), Severity: SeverityWarning,
			Description: "A replica has not acknowledged its master for more than 30 seconds."},
		{Name: "replication_lag_bytes", Metric: mLagBytes, Op: ">", Threshold: 128 << 20, For: d(time.Minute), Severity: SeverityWarning,
			Description: "A replica is more than 128 MiB of replication stream behind its master."},
		{Name: "slowlog_rate", Metric: mSlowlogPerSec, Op: ">", Threshold: 1, For: d(time.Minute), Severity: SeverityWarning,
			Description: "More than one new slow log entry per second."},
		{Name: "client_connection_spike", Metric: mClientsSpike, Op: ">=", Threshold: 1, For: 0, Severity: SeverityWarning,
			Description: "A node's client connections doubled against the mean of the spike window (baseline at least 10)."},
		{Name: "registered_clients_rising", Metric: mRegisteredRise, Op: ">=", Threshold: 10, For: 0, Severity: SeverityWarning,
			Description: "An app's registered-client count only rose over the rising window: clients are created and never closed."},
		{Name: "zombie_client", Metric: mClientZombie, Op: "==", Threshold: 1, For: 0, Severity: SeverityWarning,
			Description: "A client registration lives while its heartbeat is overdue or it holds no Redis connections."},
	}
	for i := range rules {
		rules[i].BuiltIn = true
	}
	return rules
}

var defaultRuleNames = func() map[string]bool {
	m := map[string]bool{}
	for _, r := range DefaultRules() {
		m[r.Name] = true
	}
	return m
}()

var ops = []string{">", ">=", "<", "<=", "==", "!="}

func compare(v float64, op string, threshold float64) bool {
	switch op {
	case ">":
		return v > threshold
	case ">=":
		return v >= threshold
	case "<":
		return v < threshold
	case "<=":
		return v <= threshold
	case "==":
		return v == threshold
	case "!=":
		return v != threshold
	}
	return false
}

// maxFor bounds a rule's for-duration and repeat: longer is a typo.
const maxFor = 7 * 24 * time.Hour

// ValidateRule checks a rule without looking at the coordinator (so
// channel names are checked for form, not existence) and returns every
// problem as a [*FieldError], joined.
func ValidateRule(r Rule) error {
	var errs []error
	if err := meta.ValidateName("alert rule", r.Name); err != nil {
		errs = append(errs, fieldErr("name", "%q: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", r.Name))
	}
	if r.Metric == "" {
		errs = append(errs, fieldErr("metric", "is required; one of %s", strings.Join(metricNames(""), ", ")))
	} else if catalogByName[r.Metric] == nil {
		errs = append(errs, fieldErr("metric", "unknown metric %q; one of %s", r.Metric, strings.Join(metricNames(""), ", ")))
	}
	if !slices.Contains(ops, r.Op) {
		errs = append(errs, fieldErr("op", "%q: want one of %s", r.Op, strings.Join(ops, " ")))
	}
	if math.IsNaN(r.Threshold) || math.IsInf(r.Threshold, 0) {
		errs = append(errs, fieldErr("threshold", "must be a finite number"))
	}
	if d := time.Duration(r.For); d < 0 || d > maxFor {
		errs = append(errs, fieldErr("for", "%v: want 0 to %v", d, maxFor))
	}
	if r.Severity.rank() == 0 {
		errs = append(errs, fieldErr("severity", "%q: want info, warning or critical", r.Severity))
	}
	if d := time.Duration(r.Repeat); d != 0 && (d < time.Second || d > maxFor) {
		errs = append(errs, fieldErr("repeat", "%v: want 0 (the default) or 1s to %v", d, maxFor))
	}
	for i, c := range r.Channels {
		if meta.ValidateName("alert channel", c) != nil {
			errs = append(errs, fieldErr(fmt.Sprintf("channels[%d]", i), "%q is not a valid channel name", c))
		}
	}
	if len(r.Description) > 1024 {
		errs = append(errs, fieldErr("description", "longer than 1024 bytes"))
	}
	for _, name := range slices.Sorted(maps.Keys(r.Clusters)) {
		o := r.Clusters[name]
		f := "clusters." + name
		if meta.ValidateName("cluster", name) != nil {
			errs = append(errs, fieldErr(f, "%q is not a valid cluster name", name))
		}
		if o.Threshold != nil && (math.IsNaN(*o.Threshold) || math.IsInf(*o.Threshold, 0)) {
			errs = append(errs, fieldErr(f+".threshold", "must be a finite number"))
		}
		if o.For != nil && (*o.For < 0 || time.Duration(*o.For) > maxFor) {
			errs = append(errs, fieldErr(f+".for", "%v: want 0 to %v", time.Duration(*o.For), maxFor))
		}
		if o.Severity != "" && o.Severity.rank() == 0 {
			errs = append(errs, fieldErr(f+".severity", "%q: want info, warning or critical", o.Severity))
		}
	}
	return errors.Join(errs...)
}

// effective is a rule as it applies to one cluster.
type effective struct {
	threshold float64
	forDur    time.Duration
	severity  Severity
	disabled  bool
}

func (r *Rule) forCluster(cluster string) effective {
	e := effective{threshold: r.Threshold, forDur: time.Duration(r.For), severity: r.Severity, disabled: r.Disabled}
	if o, ok := r.Clusters[cluster]; ok && cluster != "" {
		if o.Threshold != nil {
			e.threshold = *o.Threshold
		}
		if o.For != nil {
			e.forDur = time.Duration(*o.For)
		}
		if o.Severity != "" {
			e.severity = o.Severity
		}
		if o.Disabled != nil {
			e.disabled = *o.Disabled
		}
	}
	return e
}

func ruleFromRecord(rec *meta.AlertRule) Rule {
	r := Rule{
		Name: rec.Name, Metric: rec.Metric, Op: rec.Op, Threshold: rec.Threshold, For: rec.For,
		Severity: Severity(rec.Severity), Repeat: rec.Repeat, Channels: rec.Channels, Disabled: rec.Disabled,
		Description: rec.Description, BuiltIn: defaultRuleNames[rec.Name], Customized: true,
		UpdatedAt: rec.UpdatedAt, UpdatedBy: rec.UpdatedBy,
	}
	if len(rec.Clusters) > 0 {
		r.Clusters = make(map[string]RuleOverride, len(rec.Clusters))
		for k, o := range rec.Clusters {
			r.Clusters[k] = RuleOverride{Threshold: o.Threshold, For: o.For, Severity: Severity(o.Severity), Disabled: o.Disabled}
		}
	}
	return r
}

func ruleToRecord(r Rule) *meta.AlertRule {
	rec := &meta.AlertRule{
		Name: r.Name, Metric: r.Metric, Op: r.Op, Threshold: r.Threshold, For: r.For, Severity: string(r.Severity),
		Repeat: r.Repeat, Channels: r.Channels, Disabled: r.Disabled, Description: r.Description,
		UpdatedAt: r.UpdatedAt, UpdatedBy: r.UpdatedBy,
	}
	if len(r.Clusters) > 0 {
		rec.Clusters = make(map[string]meta.AlertRuleOverride, len(r.Clusters))
		for k, o := range r.Clusters {
			rec.Clusters[k] = meta.AlertRuleOverride{Threshold: o.Threshold, For: o.For, Severity: string(o.Severity), Disabled: o.Disabled}
		}
	}
	return rec
}

// loadRules reads the effective rule set: the built-in rules, each
// replaced by a stored rule of the same name, then the other stored rules
// by name. A stored rule that cannot be read is reported and left out.
func loadRules(ctx context.Context, st *meta.Store) ([]Rule, error) {
	names, err := st.AlertRules().Names(ctx)
	if err != nil {
		return nil, fmt.Errorf("monitor: list alert rules: %w", err)
	}
	stored := make(map[string]Rule, len(names))
	var errs []error
	for _, n := range names {
		rec, _, err := st.AlertRule(n).Get(ctx)
		if errors.Is(err, coord.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("monitor: alert rule %s: %w", n, err))
			continue
		}
		stored[n] = ruleFromRecord(rec)
	}
	var out []Rule
	for _, r := range DefaultRules() {
		if s, ok := stored[r.Name]; ok {
			r = s
			delete(stored, s.Name)
		}
		out = append(out, r)
	}
	for _, n := range slices.Sorted(maps.Keys(stored)) {
		out = append(out, stored[n])
	}
	return out, errors.Join(errs...)
}

// Rules returns the effective rules: built-in defaults, with operators'
// changes, and operators' own rules. It reads the coordinator, so it works
// on every server.
func (m *Monitor) Rules(ctx context.Context) ([]Rule, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	return loadRules(ctx, m.cfg.Store)
}

// Rule returns one effective rule, or an error wrapping ErrNotFound.
func (m *Monitor) Rule(ctx context.Context, name string) (Rule, error) {
	rules, err := m.Rules(ctx)
	if err != nil {
		return Rule{}, err
	}
	for _, r := range rules {
		if r.Name == name {
			return r, nil
		}
	}
	return Rule{}, notFound("alert rule", name)
}

// SetRule validates r and stores it, replacing the built-in rule of the
// same name or any earlier version. Invalid input fails with
// [*FieldError]s (ErrInvalid), naming the field; a channel that does not
// exist is one of them. It returns the rule as stored. The running monitor
// applies it from its next pass.
func (m *Monitor) SetRule(ctx context.Context, r Rule) (Rule, error) {
	if err := m.checkOpen(); err != nil {
		return Rule{}, err
	}
	errs := []error{ValidateRule(r)}
	for i, c := range r.Channels {
		if meta.ValidateName("alert channel", c) != nil {
			continue
		}
		if _, _, err := m.cfg.Store.AlertChannel(c).Get(ctx); errors.Is(err, coord.ErrNotFound) {
			errs = append(errs, fieldErr(fmt.Sprintf("channels[%d]", i), "no channel named %q", c))
		} else if err != nil {
			return Rule{}, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Rule{}, err
	}
	r.UpdatedAt = m.cfg.Now().UTC()
	rec := ruleToRecord(r)
	_, _, err := m.cfg.Store.AlertRule(r.Name).Upsert(ctx, func(cur *meta.AlertRule) error {
		*cur = *rec
		return nil
	})
	if err != nil {
		return Rule{}, fmt.Errorf("monitor: store alert rule %s: %w", r.Name, err)
	}
	out := ruleFromRecord(rec)
	return out, nil
}

// DeleteRule removes an operator's rule; for a built-in rule it restores
// the default. It fails with ErrNotFound when nothing is stored under the
// name.
func (m *Monitor) DeleteRule(ctx context.Context, name string) error {
	if err := m.checkOpen(); err != nil {
		return err
	}
	if meta.ValidateName("alert rule", name) != nil {
		return fieldErr("name", "%q is not a valid rule name", name)
	}
	ref := m.cfg.Store.AlertRule(name)
	for range 8 {
		_, v, err := ref.Get(ctx)
		if errors.Is(err, coord.ErrNotFound) {
			return notFound("alert rule", name)
		}
		if err != nil {
			return err
		}
		err = ref.Delete(ctx, v)
		if errors.Is(err, coord.ErrVersionConflict) {
			continue
		}
		if errors.Is(err, coord.ErrNotFound) {
			return notFound("alert rule", name)
		}
		return err
	}
	return fmt.Errorf("monitor: delete alert rule %s: %w", name, meta.ErrTooManyConflicts)
}
