package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// NodeState is one node of a [View]: the node as it describes itself when
// it could be reached, or as its peers describe it when it could not.
type NodeState struct {
	Node
	// Reachable reports whether the node answered CLUSTER NODES.
	Reachable bool
	// Err says why the node could not be inspected.
	Err error
	// Table is the node's own CLUSTER NODES table; nil when unreachable.
	Table []Node
	// Info holds the node's CLUSTER INFO fields; nil when unreachable.
	Info map[string]string
}

// IsMaster reports whether the node is a master.
func (n *NodeState) IsMaster() bool { return n.Role == RoleMaster }

// View is the whole cluster as seen from every node at one moment.
type View struct {
	// Nodes lists every node: masters in order of their first slot (empty
	// masters last), then replicas.
	Nodes []*NodeState

	owners [NumSlots]string // slot -> id of the master that claims it
	claims map[int][]string // slots claimed by more than one master
	byID   map[string]*NodeState
}

// Node returns the node with this id or address, or nil.
func (v *View) Node(idOrAddr string) *NodeState {
	if n := v.byID[idOrAddr]; n != nil {
		return n
	}
	for _, n := range v.Nodes {
		if n.Addr == idOrAddr {
			return n
		}
	}
	return nil
}

// Masters returns the masters, in order of their first slot.
func (v *View) Masters() []*NodeState {
	var out []*NodeState
	for _, n := range v.Nodes {
		if n.IsMaster() && !n.Has("noaddr") {
			out = append(out, n)
		}
	}
	return out
}

// ReplicasOf returns the replicas of the master with id.
func (v *View) ReplicasOf(id string) []*NodeState {
	var out []*NodeState
	for _, n := range v.Nodes {
		if n.Role == RoleReplica && n.MasterID == id {
			out = append(out, n)
		}
	}
	return out
}

// Owner returns the master that claims slot, or nil when none does. When
// several claim it (a finding of Check), the first is returned.
func (v *View) Owner(slot int) *NodeState { return v.byID[v.owners[slot]] }

// SlotsOf lists the slots the node with id claims, in order.
func (v *View) SlotsOf(id string) []int {
	n := v.byID[id]
	if n == nil {
		return nil
	}
	return Expand(n.Slots)
}

// OpenSlots returns every slot some reachable node has in migrating or
// importing state, in order.
func (v *View) OpenSlots() []int {
	var out []int
	for _, n := range v.Nodes {
		for s := range n.Migrating {
			out = append(out, s)
		}
		for s := range n.Importing {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// String prints one line per node, like a short CLUSTER NODES.
func (v *View) String() string {
	var b strings.Builder
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "%s %s %s", n.ID[:min(8, len(n.ID))], n.Addr, n.Role)
		if n.MasterID != "" {
			fmt.Fprintf(&b, " of %s", n.MasterID[:min(8, len(n.MasterID))])
		}
		if n.IsMaster() {
			fmt.Fprintf(&b, " slots=%d [%s]", n.SlotCount(), FormatRanges(n.Slots))
		}
		if !n.Reachable {
			b.WriteString(" UNREACHABLE")
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Inspect builds the [View] of the cluster that seed belongs to: it asks
// seed for its node table, then asks every node it learns of (following new
// addresses until none appear) for CLUSTER NODES and CLUSTER INFO. Nodes
// that do not answer are kept, described by their peers, with Reachable
// false. Inspect fails only when no node at all answers.
func (e *Engine) Inspect(ctx context.Context, seed string) (*View, error) {
	type answer struct {
		table []Node
		info  map[string]string
		err   error
	}
	answers := map[string]answer{}
	pending := []string{seed}
	for len(pending) > 0 {
		res := make([]answer, len(pending))
		var wg sync.WaitGroup
		for i, addr := range pending {
			wg.Go(func() {
				t, info, err := e.nodeTable(ctx, addr)
				res[i] = answer{t, info, err}
			})
		}
		wg.Wait()
		var next []string
		for i, addr := range pending {
			answers[addr] = res[i]
			for _, n := range res[i].table {
				if _, seen := answers[n.Addr]; n.Addr != "" && !seen && !slices.Contains(next, n.Addr) && !slices.Contains(pending, n.Addr) {
					next = append(next, n.Addr)
				}
			}
		}
		pending = next
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	v := &View{byID: map[string]*NodeState{}}
	var firstErr error
	// Reachable nodes describe themselves.
	for addr, a := range answers {
		if a.err != nil {
			if firstErr == nil {
				firstErr = a.err
			}
			continue
		}
		for _, n := range a.table {
			if n.Myself() {
				n.Addr = addr // the address we reached it by
				v.byID[n.ID] = &NodeState{Node: n, Reachable: true, Table: a.table, Info: a.info}
			}
		}
	}
	if len(v.byID) == 0 {
		return nil, fmt.Errorf("cluster: inspect from %s: no node answered: %w", seed, firstErr)
	}
	// Unreachable nodes are described by the first peer that knows them.
	for _, id := range sortedKeys(v.byID) {
		for _, peer := range v.byID[id].Table {
			if _, known := v.byID[peer.ID]; known {
				continue
			}
			st := &NodeState{Node: peer, Err: fmt.Errorf("not inspected")}
			if a, ok := answers[peer.Addr]; ok && a.err != nil {
				st.Err = a.err
			}
			v.byID[peer.ID] = st
		}
	}
	nodes := make([]*NodeState, 0, len(v.byID))
	for _, n := range v.byID {
		nodes = append(nodes, n)
	}
	return NewView(nodes), nil
}

// NewView builds a View from node states, for callers that hold a
// topology from elsewhere (a stored record, a test). Inspect uses it too.
func NewView(nodes []*NodeState) *View {
	v := &View{byID: map[string]*NodeState{}, claims: map[int][]string{}}
	for _, n := range nodes {
		v.byID[n.ID] = n
		v.Nodes = append(v.Nodes, n)
	}
	slices.SortFunc(v.Nodes, compareNodes)
	for _, n := range v.Masters() {
		for _, s := range Expand(n.Slots) {
			if cur := v.owners[s]; cur != "" {
				if len(v.claims[s]) == 0 {
					v.claims[s] = []string{cur}
				}
				v.claims[s] = append(v.claims[s], n.ID)
				continue
			}
			v.owners[s] = n.ID
		}
	}
	return v
}

// compareNodes orders masters by first slot (empty masters after), then
// replicas by master and address.
func compareNodes(a, b *NodeState) int {
	if a.IsMaster() != b.IsMaster() {
		if a.IsMaster() {
			return -1
		}
		return 1
	}
	if a.IsMaster() {
		fa, fb := firstSlot(a), firstSlot(b)
		if fa != fb {
			return fa - fb
		}
	} else if c := strings.Compare(a.MasterID, b.MasterID); c != 0 {
		return c
	}
	return strings.Compare(a.Addr, b.Addr)
}

func firstSlot(n *NodeState) int {
	if len(n.Slots) == 0 {
		return NumSlots
	}
	return n.Slots[0].Start
}

// nodeTable asks one node for CLUSTER NODES and CLUSTER INFO.
func (e *Engine) nodeTable(ctx context.Context, addr string) ([]Node, map[string]string, error) {
	res, err := e.pipeline(ctx, addr, "CLUSTER NODES", [][]string{{"CLUSTER", "NODES"}, {"CLUSTER", "INFO"}})
	if err != nil {
		return nil, nil, err
	}
	text, err := res[0].ToString()
	if err != nil {
		return nil, nil, errNode(addr, "CLUSTER NODES", err)
	}
	table, err := ParseNodes(text)
	if err != nil {
		return nil, nil, errNode(addr, "CLUSTER NODES", err)
	}
	infoText, err := res[1].ToString()
	if err != nil {
		return nil, nil, errNode(addr, "CLUSTER INFO", err)
	}
	return table, parseInfo(infoText), nil
}

// parseInfo parses "key:value" lines (CLUSTER INFO, INFO sections).
func parseInfo(text string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if k, v, ok := strings.Cut(l, ":"); ok {
			out[k] = v
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
