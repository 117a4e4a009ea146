package manager

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// slotStore keeps an operation's slot-move state in the coordinator, one
// record per slot under /ops/{id}/slots, so that a new leader can finish
// a slot the old one left half moved. It implements cluster.StateStore.
type slotStore struct {
	store *meta.Store
	op    string
}

func (st slotStore) SaveSlot(ctx context.Context, s cluster.SlotState) error {
	rec := &meta.SlotMove{Slot: s.Slot, From: s.From, To: s.To, Phase: string(s.Phase), Keys: s.Keys, Bytes: s.Bytes, Updated: s.Updated.UTC()}
	_, err := st.store.SlotMove(st.op, s.Slot).Set(ctx, rec, coord.AnyVersion)
	if errors.Is(err, coord.ErrNotFound) {
		err = st.store.SlotMove(st.op, s.Slot).Create(ctx, rec)
		if errors.Is(err, coord.ErrExists) { // a concurrent first save
			_, err = st.store.SlotMove(st.op, s.Slot).Set(ctx, rec, coord.AnyVersion)
		}
	}
	return err
}

func (st slotStore) LoadSlots(ctx context.Context) ([]cluster.SlotState, error) {
	names, err := st.store.SlotMoves(st.op).Names(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]cluster.SlotState, 0, len(names))
	for _, n := range names {
		slot, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		r, _, err := st.store.SlotMove(st.op, slot).Get(ctx)
		if errors.Is(err, coord.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, cluster.SlotState{Slot: r.Slot, From: r.From, To: r.To, Phase: cluster.Phase(r.Phase), Keys: r.Keys, Bytes: r.Bytes, Updated: r.Updated})
	}
	return out, nil
}

// moveSlots runs slot moves for an operation: persisted per slot, with
// progress on the record, the operation's throttle, and pause. A throttle
// change or a pause stops the engine between commands; the moves then
// continue from the persisted state, which MoveSlots is built to do.
func (x *opExec) moveSlots(ctx context.Context, eng *cluster.Engine, seed string, moves []cluster.Move) (*cluster.MoveResult, error) {
	if len(moves) == 0 {
		return &cluster.MoveResult{}, nil
	}
	store := slotStore{store: x.s.store, op: x.id}
	for {
		if err := x.gate(ctx); err != nil {
			return nil, err
		}
		limit, changed := x.throttle()
		mctx, cancel := context.WithCancel(ctx)
		stop := make(chan struct{})
		go func() {
			// Stop the engine when the throttle changes or a pause begins.
			for {
				select {
				case <-changed:
					x.ctl.mu.Lock()
					again := x.ctl.paused || x.ctl.throttle != limit
					x.ctl.mu.Unlock()
					if again {
						cancel()
						return
					}
				case <-stop:
					return
				}
			}
		}()
		res, err := eng.MoveSlots(mctx, seed, moves, cluster.MoveOptions{
			Store:            store,
			MaxKeysPerSecond: limit,
			Progress: func(p cluster.Progress) {
				x.progress(meta.Progress{
					SlotsDone: p.SlotsDone, SlotsTotal: p.SlotsTotal, KeysMoved: p.Keys, BytesMoved: p.Bytes,
					KeysPerSec: p.KeysPerSecond, ETA: meta.Duration(p.ETA),
				}, false)
			},
		})
		close(stop)
		restart := mctx.Err() != nil && ctx.Err() == nil
		cancel()
		if res != nil {
			x.progress(meta.Progress{SlotsDone: res.SlotsDone, SlotsTotal: res.SlotsTotal, KeysMoved: res.Keys, BytesMoved: res.Bytes, KeysPerSec: res.KeysPerSecond}, true)
		}
		if restart {
			x.log.Info("slot moves restarting", "reason", "throttle change or pause")
			continue
		}
		if err != nil {
			return res, fmt.Errorf("move slots: %w", err)
		}
		x.s.observeSoon()
		return res, nil
	}
}
