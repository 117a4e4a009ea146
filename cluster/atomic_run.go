package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// atomicPollInterval is how often a server-side migration is polled.
const atomicPollInterval = 100 * time.Millisecond

// tryAtomic moves the slots with server-side atomic migration when every
// source and target pair supports the same mechanism. It reports done=false
// (and changes nothing) when any pair must use the classic path.
func (m *mover) tryAtomic(ctx context.Context, planned []plannedMove) (bool, error) {
	type pair struct{ src, dst *NodeState }
	versions := map[string]ServerVersion{}
	for _, pm := range planned {
		for _, n := range []*NodeState{pm.src, pm.dst} {
			if _, ok := versions[n.Addr]; ok {
				continue
			}
			v, err := m.e.serverVersion(ctx, n.Addr)
			if err != nil {
				return false, err
			}
			versions[n.Addr] = v
		}
	}
	groups := map[pair][]int{}
	var order []pair
	mech := MigrationClassic
	for i, pm := range planned {
		pmech := pairMigration(versions[pm.src.Addr], versions[pm.dst.Addr])
		if pmech == MigrationClassic || (i > 0 && pmech != mech) {
			return false, nil
		}
		mech = pmech
		p := pair{pm.src, pm.dst}
		if _, ok := groups[p]; !ok {
			order = append(order, p)
		}
		groups[p] = append(groups[p], pm.slot)
	}
	if len(planned) == 0 {
		return false, nil
	}
	m.res.Migration = mech
	for _, p := range order {
		slots := groups[p]
		for _, s := range slots {
			if err := m.save(ctx, plannedMove{s, p.src, p.dst}, PhaseMigrating, 0, 0); err != nil {
				return true, err
			}
		}
		if err := m.runAtomic(ctx, mech, p.src, p.dst, Ranges(slots)); err != nil {
			return true, err
		}
		for _, s := range slots {
			if err := m.save(ctx, plannedMove{s, p.src, p.dst}, PhaseDone, 0, 0); err != nil {
				return true, err
			}
		}
		m.mu.Lock()
		m.res.SlotsDone += len(slots)
		m.mu.Unlock()
		m.report()
	}
	return true, nil
}

// runAtomic starts one server-side migration and polls it to its end.
func (m *mover) runAtomic(ctx context.Context, mech AtomicMigration, src, dst *NodeState, ranges []SlotRange) error {
	args, onTarget := atomicCommand(mech, ranges, dst.ID)
	addr := src.Addr
	if onTarget {
		addr = dst.Addr
	}
	step := fmt.Sprintf("%s slots %s %s -> %s", mech, FormatRanges(ranges), src.Addr, dst.Addr)
	reply, err := m.e.str(ctx, addr, step, args...)
	if err != nil {
		return err
	}
	task := strings.TrimSpace(reply) // Redis answers a task id; Valkey OK
	status := []string{"CLUSTER", "GETSLOTMIGRATIONS"}
	if mech == MigrationRedisASM {
		status = []string{"CLUSTER", "MIGRATION", "STATUS", "ID", task}
	}
	t := time.NewTicker(atomicPollInterval)
	defer t.Stop()
	for {
		msg, err := m.e.cmd(ctx, addr, step+": status", status...)
		if err != nil {
			return err
		}
		done, ferr := atomicTaskState(mech, entriesOf(msg), task, ranges)
		if ferr != nil {
			return errNode(addr, step, ferr)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// entriesOf turns a status reply (an array of maps, or in RESP2 an array
// of flat key/value arrays) into string maps.
func entriesOf(msg rueidis.RedisMessage) []map[string]string {
	arr, err := msg.ToArray()
	if err != nil {
		return nil
	}
	var out []map[string]string
	for _, el := range arr {
		if m, err := el.AsStrMap(); err == nil {
			out = append(out, m)
			continue
		}
		flat, err := el.ToArray()
		if err != nil {
			continue
		}
		e := map[string]string{}
		for i := 0; i+1 < len(flat); i += 2 {
			k, _ := flat[i].ToString()
			v, err := flat[i+1].ToString()
			if err != nil {
				v = fmt.Sprint(flat[i+1].ToAny())
			}
			e[k] = v
		}
		out = append(out, e)
	}
	return out
}

// atomicTaskState decides from status entries whether the migration of
// ranges (task id for Redis) has finished, failed, or is still running.
func atomicTaskState(mech AtomicMigration, entries []map[string]string, task string, ranges []SlotRange) (bool, error) {
	want := make([]string, len(ranges))
	for i, r := range ranges {
		want[i] = fmt.Sprintf("%d-%d", r.Start, r.End)
	}
	for _, e := range entries {
		var state, msg string
		switch mech {
		case MigrationRedisASM:
			if e["id"] != task {
				continue
			}
			state, msg = strings.ToLower(e["state"]), e["last_error"]
		case MigrationValkeyASM:
			if e["slot_ranges"] != strings.Join(want, " ") {
				continue
			}
			state, msg = strings.ToLower(e["state"]), e["message"]
		default:
			return false, fmt.Errorf("cluster: %s is not a server-side migration", mech)
		}
		switch state {
		case "completed", "success", "succeeded":
			return true, nil
		case "failed", "canceled", "cancelled":
			return false, fmt.Errorf("%w: server-side migration %s: %s", ErrSlotState, state, msg)
		}
		return false, nil
	}
	return false, nil
}
