package cluster

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Role is a node's role in the cluster.
type Role string

// Roles.
const (
	RoleMaster  Role = "master"
	RoleReplica Role = "replica"
)

// Node is one line of CLUSTER NODES: how one node (the observer) sees
// another (or itself, when Myself is set).
type Node struct {
	// ID is the 40-character node id.
	ID string
	// Addr is "ip:port" of the client port; empty for a node without an
	// address (noaddr).
	Addr string
	// BusPort is the cluster bus port.
	BusPort int
	// Hostname is the announced hostname, if any.
	Hostname string
	// Flags are the raw flags ("myself", "master", "fail?", …).
	Flags []string
	// Role is master or replica.
	Role Role
	// MasterID is the id of the master of a replica, else empty.
	MasterID string
	// ConfigEpoch is the node's configuration epoch.
	ConfigEpoch uint64
	// Connected reports the link state ("connected").
	Connected bool
	// Slots are the slots the node serves, as ranges.
	Slots []SlotRange
	// Migrating maps a slot to the id of the node it is migrating to.
	// Only the node itself reports this (on its myself line).
	Migrating map[int]string
	// Importing maps a slot to the id of the node it is importing from.
	Importing map[int]string
}

// Has reports whether flag is among the node's flags.
func (n *Node) Has(flag string) bool {
	for _, f := range n.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// Myself reports whether the line describes the observer itself.
func (n *Node) Myself() bool { return n.Has("myself") }

// Failing reports whether the observer flags the node as failed or
// possibly failed.
func (n *Node) Failing() bool { return n.Has("fail") || n.Has("fail?") }

// SlotCount returns how many slots the node serves.
func (n *Node) SlotCount() int {
	c := 0
	for _, r := range n.Slots {
		c += r.Len()
	}
	return c
}

// ParseNodes parses the reply of CLUSTER NODES.
func ParseNodes(text string) ([]Node, error) {
	var out []Node
	for ln, line := range strings.Split(strings.TrimSpace(text), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		n, err := parseNodeLine(line)
		if err != nil {
			return nil, fmt.Errorf("cluster: CLUSTER NODES line %d %q: %w", ln+1, line, err)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseNodeLine(line string) (Node, error) {
	f := strings.Fields(line)
	if len(f) < 8 {
		return Node{}, fmt.Errorf("want at least 8 fields, got %d", len(f))
	}
	n := Node{ID: f[0], Flags: strings.Split(f[2], ",")}
	addr, rest, _ := strings.Cut(f[1], "@")
	bus, host, _ := strings.Cut(rest, ",")
	if h, p, err := net.SplitHostPort(addr); err == nil && h != "" && p != "0" {
		n.Addr = addr
	}
	n.BusPort, _ = strconv.Atoi(bus)
	n.Hostname = host
	n.Role = RoleMaster
	if n.Has("slave") {
		n.Role = RoleReplica
	}
	if f[3] != "-" {
		n.MasterID = f[3]
	}
	ep, err := strconv.ParseUint(f[6], 10, 64)
	if err != nil {
		return Node{}, fmt.Errorf("config epoch %q: %w", f[6], err)
	}
	n.ConfigEpoch = ep
	n.Connected = f[7] == "connected"
	for _, s := range f[8:] {
		if strings.HasPrefix(s, "[") {
			if err := n.parseOpenSlot(s); err != nil {
				return Node{}, err
			}
			continue
		}
		lo, hi, isRange := strings.Cut(s, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return Node{}, fmt.Errorf("slot %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return Node{}, fmt.Errorf("slot %q: %w", s, err)
			}
		}
		n.Slots = append(n.Slots, SlotRange{a, b})
	}
	return n, nil
}

// parseOpenSlot parses "[slot->-id]" (migrating) or "[slot-<-id]" (importing).
func (n *Node) parseOpenSlot(s string) error {
	body := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if slot, id, ok := strings.Cut(body, "->-"); ok {
		v, err := strconv.Atoi(slot)
		if err != nil {
			return fmt.Errorf("open slot %q: %w", s, err)
		}
		if n.Migrating == nil {
			n.Migrating = make(map[int]string)
		}
		n.Migrating[v] = id
		return nil
	}
	if slot, id, ok := strings.Cut(body, "-<-"); ok {
		v, err := strconv.Atoi(slot)
		if err != nil {
			return fmt.Errorf("open slot %q: %w", s, err)
		}
		if n.Importing == nil {
			n.Importing = make(map[int]string)
		}
		n.Importing[v] = id
		return nil
	}
	return fmt.Errorf("open slot %q: unknown form", s)
}
