package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// FindingKind names one kind of problem (or fact) that Check reports.
type FindingKind string

// Finding kinds.
const (
	// FindUnreachable: a node known to the cluster did not answer.
	FindUnreachable FindingKind = "unreachable"
	// FindFailing: a peer flags the node as fail or fail?.
	FindFailing FindingKind = "failing"
	// FindHandshake: a node is still in handshake or has no address.
	FindHandshake FindingKind = "handshake"
	// FindOpenSlot: a node has slots in migrating or importing state.
	FindOpenSlot FindingKind = "open-slot"
	// FindUncovered: slots that no master claims.
	FindUncovered FindingKind = "uncovered"
	// FindMultipleOwners: slots that more than one master claims.
	FindMultipleOwners FindingKind = "multiple-owners"
	// FindEpochCollision: two masters share a config epoch.
	FindEpochCollision FindingKind = "epoch-collision"
	// FindDisagreement: a node's table differs from what the nodes claim
	// for themselves (slot owners, node set or roles).
	FindDisagreement FindingKind = "disagreement"
	// FindStateNotOK: a node reports cluster_state other than ok.
	FindStateNotOK FindingKind = "state-not-ok"
	// FindReplicas: how many replicas a master has (informational; a
	// warning when it has none).
	FindReplicas FindingKind = "replicas"
)

// Severity grades a finding.
type Severity int

// Severities, from least to most serious.
const (
	SevInfo Severity = iota
	SevWarning
	SevError
)

func (s Severity) String() string {
	switch s {
	case SevInfo:
		return "info"
	case SevWarning:
		return "warning"
	default:
		return "error"
	}
}

// Finding is one result of [Engine.Check].
type Finding struct {
	Kind     FindingKind
	Severity Severity
	// Node is the address of the node concerned, if any.
	Node string
	// NodeID is its id, if known.
	NodeID string
	// Slots are the slots concerned, if any.
	Slots []SlotRange
	// Detail is a human-readable explanation.
	Detail string
}

func (f Finding) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s", f.Severity, f.Kind)
	if f.Node != "" {
		fmt.Fprintf(&b, " %s", f.Node)
	}
	if len(f.Slots) > 0 {
		fmt.Fprintf(&b, " slots %s", FormatRanges(f.Slots))
	}
	if f.Detail != "" {
		fmt.Fprintf(&b, ": %s", f.Detail)
	}
	return b.String()
}

// Healthy reports whether findings hold nothing of warning or error
// severity other than masters without replicas.
func Healthy(findings []Finding) bool {
	for _, f := range findings {
		if f.Severity >= SevWarning && f.Kind != FindReplicas {
			return false
		}
	}
	return true
}

// Check inspects the cluster from seed and returns its findings, most
// serious first, together with the view they were computed from. It does
// not change anything. The error is non-nil only when no node answered.
func (e *Engine) Check(ctx context.Context, seed string) ([]Finding, *View, error) {
	v, err := e.Inspect(ctx, seed)
	if err != nil {
		return nil, nil, err
	}
	return Analyze(v), v, nil
}

// Analyze computes the findings of a view (what Check returns).
func Analyze(v *View) []Finding {
	var out []Finding
	add := func(f Finding) { out = append(out, f) }
	allIDs := make([]string, 0, len(v.Nodes))
	for _, n := range v.Nodes {
		allIDs = append(allIDs, n.ID)
	}
	slices.Sort(allIDs)
	for _, n := range v.Nodes {
		if !n.Reachable {
			add(Finding{Kind: FindUnreachable, Severity: SevError, Node: n.Addr, NodeID: n.ID, Detail: errText(n.Err)})
		}
		if n.Has("handshake") || n.Has("noaddr") {
			add(Finding{Kind: FindHandshake, Severity: SevError, Node: n.Addr, NodeID: n.ID, Detail: strings.Join(n.Flags, ",")})
		}
		var flaggedBy []string
		for _, peer := range v.Nodes {
			for _, t := range peer.Table {
				if t.ID == n.ID && !t.Myself() && t.Failing() {
					flaggedBy = append(flaggedBy, peer.Addr)
				}
			}
		}
		if len(flaggedBy) > 0 {
			add(Finding{Kind: FindFailing, Severity: SevError, Node: n.Addr, NodeID: n.ID, Detail: "flagged failing by " + strings.Join(flaggedBy, ", ")})
		}
		if len(n.Migrating) > 0 {
			add(Finding{Kind: FindOpenSlot, Severity: SevError, Node: n.Addr, NodeID: n.ID, Slots: Ranges(mapKeys(n.Migrating)), Detail: "migrating: " + describeOpen(v, n.Migrating, "->")})
		}
		if len(n.Importing) > 0 {
			add(Finding{Kind: FindOpenSlot, Severity: SevError, Node: n.Addr, NodeID: n.ID, Slots: Ranges(mapKeys(n.Importing)), Detail: "importing: " + describeOpen(v, n.Importing, "<-")})
		}
		if n.Info != nil && n.Info["cluster_state"] != "ok" {
			add(Finding{Kind: FindStateNotOK, Severity: SevError, Node: n.Addr, NodeID: n.ID, Detail: "cluster_state:" + n.Info["cluster_state"]})
		}
		if n.Reachable {
			if d := disagreement(v, n, allIDs); d != "" {
				add(Finding{Kind: FindDisagreement, Severity: SevError, Node: n.Addr, NodeID: n.ID, Detail: d})
			}
		}
	}
	var uncovered []int
	for s := range NumSlots {
		if v.owners[s] == "" {
			uncovered = append(uncovered, s)
		}
	}
	if len(uncovered) > 0 {
		add(Finding{Kind: FindUncovered, Severity: SevError, Slots: Ranges(uncovered), Detail: fmt.Sprintf("%d slots have no owner", len(uncovered))})
	}
	for _, s := range sortedIntKeys(v.claims) {
		add(Finding{Kind: FindMultipleOwners, Severity: SevError, Slots: []SlotRange{{s, s}}, Detail: "claimed by " + strings.Join(v.claims[s], ", ")})
	}
	epochs := map[uint64][]string{}
	for _, m := range v.Masters() {
		epochs[m.ConfigEpoch] = append(epochs[m.ConfigEpoch], m.Addr)
	}
	for ep, addrs := range epochs {
		if len(addrs) > 1 {
			slices.Sort(addrs)
			add(Finding{Kind: FindEpochCollision, Severity: SevWarning, Node: addrs[0], Detail: fmt.Sprintf("config epoch %d shared by %s", ep, strings.Join(addrs, ", "))})
		}
	}
	for _, m := range v.Masters() {
		if len(m.Slots) == 0 {
			continue
		}
		r := len(v.ReplicasOf(m.ID))
		sev := SevInfo
		if r == 0 {
			sev = SevWarning
		}
		add(Finding{Kind: FindReplicas, Severity: sev, Node: m.Addr, NodeID: m.ID, Detail: fmt.Sprintf("%d replicas", r)})
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return int(b.Severity) - int(a.Severity) })
	return out
}

// disagreement compares one node's table with what every reachable node
// claims for itself and describes the first differences, or returns "".
func disagreement(v *View, n *NodeState, allIDs []string) string {
	var ids []string
	var diffs []string
	for _, t := range n.Table {
		ids = append(ids, t.ID)
		self := v.byID[t.ID]
		if self == nil || !self.Reachable || t.Myself() {
			continue
		}
		if t.Role != self.Role && !t.Failing() {
			diffs = append(diffs, fmt.Sprintf("sees %s as %s, it is %s", self.Addr, t.Role, self.Role))
		}
		if self.IsMaster() && t.Role == RoleMaster && FormatRanges(t.Slots) != FormatRanges(self.Slots) {
			diffs = append(diffs, fmt.Sprintf("sees %s with slots [%s], it claims [%s]", self.Addr, FormatRanges(t.Slots), FormatRanges(self.Slots)))
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, allIDs) {
		diffs = append(diffs, fmt.Sprintf("knows %d nodes, the cluster has %d", len(ids), len(allIDs)))
	}
	if len(diffs) > 3 {
		diffs = append(diffs[:3], fmt.Sprintf("and %d more", len(diffs)-3))
	}
	return strings.Join(diffs, "; ")
}

func describeOpen(v *View, m map[int]string, arrow string) string {
	var parts []string
	for _, s := range sortedIntKeys(m) {
		peer := m[s]
		if p := v.byID[peer]; p != nil {
			peer = p.Addr
		}
		parts = append(parts, fmt.Sprintf("%d%s%s", s, arrow, peer))
	}
	return strings.Join(parts, " ")
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func mapKeys[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sortedIntKeys[V any](m map[int]V) []int {
	out := mapKeys(m)
	slices.Sort(out)
	return out
}
