package cluster

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// Phase is how far a slot move has come. Phases only move forward.
type Phase string

// Phases of one slot move, in order.
const (
	// PhasePlanned: recorded before anything was changed on the nodes.
	PhasePlanned Phase = "planned"
	// PhaseMigrating: the target is IMPORTING and the source MIGRATING;
	// keys are being moved.
	PhaseMigrating Phase = "migrating"
	// PhaseAssigned: the target owns the slot; the source and the other
	// masters may not know yet.
	PhaseAssigned Phase = "assigned"
	// PhaseDone: every reachable master names the target as the owner.
	PhaseDone Phase = "done"
)

// SlotState is the persisted state of one slot move. It carries node ids,
// not addresses, so it survives address changes.
type SlotState struct {
	Slot    int       `json:"slot"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Phase   Phase     `json:"phase"`
	Keys    int64     `json:"keys"`
	Bytes   int64     `json:"bytes"`
	Updated time.Time `json:"updated"`
}

// StateStore persists slot move state for [Engine.MoveSlots] and
// [Engine.Resume]. The control plane backs it with the coordinator; tests
// use [MemoryStore]. Implementations must be safe for concurrent use.
type StateStore interface {
	// SaveSlot records st, replacing any earlier state of st.Slot.
	SaveSlot(ctx context.Context, st SlotState) error
	// LoadSlots returns every recorded slot state.
	LoadSlots(ctx context.Context) ([]SlotState, error)
}

// MemoryStore is an in-memory [StateStore]. The zero value is ready to use.
type MemoryStore struct {
	mu    sync.Mutex
	slots map[int]SlotState
}

// SaveSlot implements [StateStore].
func (m *MemoryStore) SaveSlot(_ context.Context, st SlotState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.slots == nil {
		m.slots = make(map[int]SlotState)
	}
	m.slots[st.Slot] = st
	return nil
}

// LoadSlots implements [StateStore]; states come back ordered by slot.
func (m *MemoryStore) LoadSlots(context.Context) ([]SlotState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Collect(maps.Values(m.slots))
	slices.SortFunc(out, func(a, b SlotState) int { return a.Slot - b.Slot })
	return out, nil
}
