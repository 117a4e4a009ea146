package monitor

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/r2m-go/r2m/meta"
)

func TestRuleValidation(t *testing.T) {
	good := Rule{Name: "mem", Metric: mMemoryRatio, Op: ">", Threshold: 0.9, For: meta.Duration(time.Minute), Severity: SeverityWarning}
	if err := ValidateRule(good); err != nil {
		t.Fatalf("valid rule: %v", err)
	}
	nan, neg := math.NaN(), meta.Duration(-time.Second)
	for _, tc := range []struct {
		change func(*Rule)
		field  string
	}{
		{func(r *Rule) { r.Name = "" }, "name"},
		{func(r *Rule) { r.Name = "a/b" }, "name"},
		{func(r *Rule) { r.Metric = "" }, "metric"},
		{func(r *Rule) { r.Metric = "memory" }, "metric"},
		{func(r *Rule) { r.Op = "=>" }, "op"},
		{func(r *Rule) { r.Threshold = math.Inf(1) }, "threshold"},
		{func(r *Rule) { r.For = neg }, "for"},
		{func(r *Rule) { r.For = meta.Duration(30 * 24 * time.Hour) }, "for"},
		{func(r *Rule) { r.Severity = "fatal" }, "severity"},
		{func(r *Rule) { r.Severity = "" }, "severity"},
		{func(r *Rule) { r.Repeat = meta.Duration(time.Millisecond) }, "repeat"},
		{func(r *Rule) { r.Channels = []string{"ok", "bad name"} }, "channels[1]"},
		{func(r *Rule) { r.Clusters = map[string]RuleOverride{"c1": {Threshold: &nan}} }, "clusters.c1.threshold"},
		{func(r *Rule) { r.Clusters = map[string]RuleOverride{"c1": {For: &neg}} }, "clusters.c1.for"},
		{func(r *Rule) { r.Clusters = map[string]RuleOverride{"c1": {Severity: "loud"}} }, "clusters.c1.severity"},
		{func(r *Rule) { r.Clusters = map[string]RuleOverride{"-x": {}} }, "clusters.-x"},
	} {
		r := good
		tc.change(&r)
		err := ValidateRule(r)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrInvalid) {
			t.Errorf("field %s: ValidateRule = %v, want a FieldError on %q", tc.field, err, tc.field)
		}
	}
	// Every problem is reported, joined.
	err := ValidateRule(Rule{Name: "x"})
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		if errors.As(e, &fe) {
			fields = append(fields, fe.Field)
		}
	}
	if len(fields) != 3 { // metric, op, severity
		t.Errorf("an empty rule reports %v, want metric, op and severity", fields)
	}
}

// TestRulesStore stores rules through the API: overrides replace built-in
// defaults, unknown channels are refused by field, and deleting a
// built-in's record restores the default.
func TestRulesStore(t *testing.T) {
	st, _ := newStore(t)
	m := newMonitor(t, Config{Store: st})
	ctx := testCtx(t, 20*time.Second)

	rules, err := m.Rules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != len(DefaultRules()) {
		t.Fatalf("%d rules on an empty coordinator, want the %d defaults", len(rules), len(DefaultRules()))
	}
	for _, r := range rules {
		if err := ValidateRule(r); err != nil || !r.BuiltIn || r.Customized {
			t.Errorf("default rule %s: %v, builtin %v customized %v", r.Name, err, r.BuiltIn, r.Customized)
		}
	}

	r, _ := m.Rule(ctx, "memory_high")
	r.Channels = []string{"nowhere"}
	_, err = m.SetRule(ctx, r)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "channels[0]" {
		t.Fatalf("SetRule with an unknown channel = %v, want a FieldError on channels[0]", err)
	}
	r.Channels = nil
	r.Threshold = 0.7
	r.UpdatedBy = "alice"
	if _, err := m.SetRule(ctx, r); err != nil {
		t.Fatal(err)
	}
	custom := Rule{Name: "evictions", Metric: mEvictedPerSec, Op: ">", Threshold: 100, Severity: SeverityInfo}
	if _, err := m.SetRule(ctx, custom); err != nil {
		t.Fatal(err)
	}
	got, err := m.Rule(ctx, "memory_high")
	if err != nil || got.Threshold != 0.7 || !got.BuiltIn || !got.Customized || got.UpdatedBy != "alice" {
		t.Errorf("memory_high after SetRule = %+v, %v", got, err)
	}
	rules, _ = m.Rules(ctx)
	if last := rules[len(rules)-1]; last.Name != "evictions" || last.BuiltIn || !last.Customized {
		t.Errorf("custom rule listed as %+v", last)
	}

	if err := m.DeleteRule(ctx, "memory_high"); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Rule(ctx, "memory_high"); got.Threshold != 0.85 || got.Customized {
		t.Errorf("memory_high after DeleteRule = %+v, want the default back", got)
	}
	if err := m.DeleteRule(ctx, "memory_high"); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteRule of a default with nothing stored = %v, want ErrNotFound", err)
	}
	if _, err := m.Rule(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Rule(nope) = %v, want ErrNotFound", err)
	}

	// A channel named by a rule cannot be deleted.
	if _, err := m.SetChannel(ctx, Channel{Name: "ops", Type: ChannelSlack, URL: "https://hooks.slack.com/services/T/B/x"}); err != nil {
		t.Fatal(err)
	}
	custom.Channels = []string{"ops"}
	if _, err := m.SetRule(ctx, custom); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteChannel(ctx, "ops"); !errors.Is(err, ErrInUse) {
		t.Errorf("DeleteChannel of a channel in use = %v, want ErrInUse", err)
	}
	for _, tc := range []struct {
		c     Channel
		field string
	}{
		{Channel{Name: "x", Type: "email", URL: "https://a"}, "type"},
		{Channel{Name: "x", Type: ChannelSlack}, "url"},
		{Channel{Name: "x", Type: ChannelSlack, URL: "ftp://a/b"}, "url"},
		{Channel{Name: "x", Type: ChannelSlack, URL: "https://a", Secret: "s"}, "secret"},
		{Channel{Name: "x", Type: ChannelWeCom, URL: "https://a", Headers: map[string]string{"A": "b"}}, "headers"},
		{Channel{Name: "x", Type: ChannelWebhook, URL: "https://a", Headers: map[string]string{"Bad Header": "b"}}, "headers.Bad Header"},
		{Channel{Name: "x", Type: ChannelWebhook, URL: "https://a", MinSeverity: "loud"}, "min_severity"},
		{Channel{Name: "new", Type: ChannelWebhook, URL: "https://a/" + Redacted}, "url"}, // nothing stored to keep
	} {
		_, err := m.SetChannel(ctx, tc.c)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("SetChannel(%+v) = %v, want a FieldError on %q", tc.c, err, tc.field)
		}
	}
}

// TestRuleOverrides evaluates one rule with a per-cluster override on a
// synthetic snapshot: the override's threshold and disabling apply to its
// cluster only, and the for-duration holds the alert pending.
func TestRuleOverrides(t *testing.T) {
	hi, off := 0.95, true
	r := Rule{Name: "mem", Metric: mMemoryRatio, Op: ">", Threshold: 0.8, For: meta.Duration(20 * time.Second), Severity: SeverityWarning,
		Clusters: map[string]RuleOverride{"big": {Threshold: &hi, Severity: SeverityCritical}, "lab": {Disabled: &off}}}
	node := func(cluster string, v float64) *subject {
		return &subject{scope: ScopeNode, key: nodeKey(cluster, "n1"), cluster: cluster, node: "n1",
			labels: map[string]string{"role": "master"}, values: map[string]float64{mMemoryRatio: v}}
	}
	snap := &snapshot{subjects: []*subject{node("small", 0.9), node("big", 0.9), node("lab", 0.99)}}
	var a alerter
	t0 := time.Now()
	if ev := a.evaluate(t0, snap, []Rule{r}, time.Hour); len(ev) != 0 {
		t.Fatalf("first pass: %v, want pending only", ev)
	}
	if l := a.list(); len(l) != 1 || l[0].Cluster != "small" || l[0].State != StatePending {
		t.Fatalf("after the first pass: %+v, want small pending", l)
	}
	ev := a.evaluate(t0.Add(20*time.Second), snap, []Rule{r}, time.Hour)
	if len(ev) != 1 || ev[0].Cluster != "small" || ev[0].Kind != KindFiring || ev[0].Threshold != 0.8 {
		t.Fatalf("after the for-duration: %+v, want small firing at 0.8", ev)
	}
	snap.subjects[1].values[mMemoryRatio] = 0.96
	ev = a.evaluate(t0.Add(40*time.Second), snap, []Rule{r}, time.Hour)
	if len(ev) != 0 {
		t.Fatalf("big just crossed its override: %+v, want pending", ev)
	}
	ev = a.evaluate(t0.Add(60*time.Second), snap, []Rule{r}, time.Hour)
	if len(ev) != 1 || ev[0].Cluster != "big" || ev[0].Severity != SeverityCritical || ev[0].Threshold != 0.95 {
		t.Fatalf("big: %+v, want firing, critical, at 0.95", ev)
	}
	// A node that stops reporting the value (it went down) holds its alert;
	// a node that leaves the topology resolves it.
	delete(snap.subjects[0].values, mMemoryRatio)
	if ev := a.evaluate(t0.Add(80*time.Second), snap, []Rule{r}, time.Hour); len(ev) != 0 {
		t.Fatalf("missing value: %+v, want the alert held", ev)
	}
	snap.subjects = snap.subjects[1:]
	ev = a.evaluate(t0.Add(100*time.Second), snap, []Rule{r}, time.Hour)
	if len(ev) != 1 || ev[0].Cluster != "small" || ev[0].Kind != KindResolved {
		t.Fatalf("subject gone: %+v, want small resolved", ev)
	}
}
