package web

import (
	"cmp"
	"slices"

	"github.com/r2m-go/r2m/api"
)

// numSlots is the number of hash slots of a Redis Cluster.
const numSlots = 16384

// slotOwner is one master on the slot map: its slots and its colour index
// in the map's palette (app.js, drawSlotMap).
type slotOwner struct {
	Addr   string   `json:"addr"`
	ID     string   `json:"id"`
	Health string   `json:"health"`
	Count  int      `json:"count"`
	Ranges [][2]int `json:"ranges"`
	Color  int      `json:"color"`
}

// slotMap is what the slot map canvas draws: which master owns each slot.
// Open slots come later, from the check (openSlots).
type slotMap struct {
	Owners []slotOwner `json:"owners"`
	// Unassigned counts slots no master owns.
	Unassigned int `json:"unassigned"`
}

// buildSlotMap reads the masters' slot ranges from a cluster's nodes.
// Masters are ordered by address, so a master keeps its colour between
// page loads while the set of masters stays the same.
func buildSlotMap(nodes []api.ClusterNode) slotMap {
	var m slotMap
	var owned [numSlots]bool
	for _, n := range nodes {
		if n.Role != "master" {
			continue
		}
		o := slotOwner{Addr: n.Addr, ID: n.ID, Health: n.Health, Ranges: [][2]int{}}
		for _, r := range n.Slots {
			s, e, ok := parseRange(r)
			if !ok {
				continue
			}
			o.Ranges = append(o.Ranges, [2]int{s, e})
			for i := s; i <= e; i++ {
				if !owned[i] {
					owned[i] = true
					o.Count++
				}
			}
		}
		m.Owners = append(m.Owners, o)
	}
	slices.SortFunc(m.Owners, func(a, b slotOwner) int { return cmp.Compare(a.Addr, b.Addr) })
	for i := range m.Owners {
		m.Owners[i].Color = i
	}
	for _, o := range owned {
		if !o {
			m.Unassigned++
		}
	}
	return m
}

// openSlot is a slot range that a check found migrating or importing.
type openSlot struct {
	Range  [2]int `json:"range"`
	Node   string `json:"node"`
	Detail string `json:"detail"`
}

// openSlots collects the ranges of the check's open-slot findings.
func openSlots(findings []api.Finding) []openSlot {
	out := []openSlot{}
	for _, f := range findings {
		if f.Kind != "open-slot" {
			continue
		}
		for _, r := range f.Slots {
			if s, e, ok := parseRange(r); ok {
				out = append(out, openSlot{Range: [2]int{s, e}, Node: f.Node, Detail: f.Detail})
			}
		}
	}
	return out
}

// countOpen counts the distinct open slots.
func countOpen(open []openSlot) int {
	seen := map[int]bool{}
	for _, o := range open {
		for i := o.Range[0]; i <= o.Range[1]; i++ {
			seen[i] = true
		}
	}
	return len(seen)
}
