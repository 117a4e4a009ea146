package migrate

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// ckPrefix starts every checkpoint key. Keys with this prefix in a source
// (a cluster that is itself the target of another link) are never copied.
const ckPrefix = "__r2m_ck:"

// keySpec is where a command's keys are, from COMMAND on the target.
type keySpec struct {
	first, last, step int
	movable           bool
}

// commandTable knows the key positions of every command the target knows,
// and asks the target (COMMAND GETKEYS) for commands whose keys move. It is
// read-only after loadCommands.
type commandTable struct {
	specs map[string]keySpec
	t     *target
}

func loadCommands(ctx context.Context, t *target) (*commandTable, error) {
	res, err := t.do(ctx, t.masterAddrs()[0], "COMMAND").ToArray()
	if err != nil {
		return nil, fmt.Errorf("migrate: target COMMAND: %w", err)
	}
	ct := &commandTable{specs: map[string]keySpec{}, t: t}
	for _, e := range res {
		f, err := e.ToArray()
		if err != nil || len(f) < 6 {
			continue
		}
		name, _ := f[0].ToString()
		var sp keySpec
		if flags, err := f[2].AsStrSlice(); err == nil {
			for _, fl := range flags {
				if fl == "movablekeys" {
					sp.movable = true
				}
			}
		}
		fk, _ := f[3].AsInt64()
		lk, _ := f[4].AsInt64()
		st, _ := f[5].AsInt64()
		sp.first, sp.last, sp.step = int(fk), int(lk), int(st)
		ct.specs[strings.ToLower(name)] = sp
	}
	return ct, nil
}

// keys returns the keys of a command (args[0] is its name, lower case in
// name).
func (ct *commandTable) keys(ctx context.Context, name string, args []string) ([]string, error) {
	sp, ok := ct.specs[name]
	if !ok {
		return nil, fmt.Errorf("migrate: command %q is unknown to the target", name)
	}
	if sp.movable {
		return ct.getKeys(ctx, args)
	}
	if sp.first <= 0 || sp.step <= 0 {
		return nil, nil
	}
	last := sp.last
	if last < 0 {
		last = len(args) + last
	}
	var out []string
	for i := sp.first; i <= last && i < len(args); i += sp.step {
		out = append(out, args[i])
	}
	return out, nil
}

func (ct *commandTable) getKeys(ctx context.Context, args []string) ([]string, error) {
	res, err := ct.t.do(ctx, ct.t.masterAddrs()[0], append([]string{"COMMAND", "GETKEYS"}, args...)...).AsStrSlice()
	if err != nil {
		if strings.Contains(err.Error(), "no key arguments") || strings.Contains(err.Error(), "Invalid arguments") {
			return nil, nil
		}
		return nil, fmt.Errorf("migrate: COMMAND GETKEYS %s: %w", args[0], err)
	}
	return res, nil
}

// part is one command of a plan, for one slot.
type part struct {
	slot   int
	args   []string
	keys   []string
	resync bool // cannot be applied as is: copy keys from the source
}

// splitters split a multi-key command whose keys span slots into one
// command per slot, keeping the semantics per key.
var splitters = map[string]func(args []string) [][]string{
	"del":    splitKeys(1),
	"unlink": splitKeys(1),
	"mset":   splitPairs,
	"msetnx": splitPairs,
}

func splitKeys(first int) func([]string) [][]string {
	return func(args []string) [][]string {
		var out [][]string
		idx := map[int]int{}
		for _, k := range args[first:] {
			s := keySlot(k)
			i, ok := idx[s]
			if !ok {
				i = len(out)
				idx[s] = i
				out = append(out, append([]string{}, args[:first]...))
			}
			out[i] = append(out[i], k)
		}
		return out
	}
}

func splitPairs(args []string) [][]string {
	var out [][]string
	idx := map[int]int{}
	for i := 1; i+1 < len(args); i += 2 {
		s := keySlot(args[i])
		j, ok := idx[s]
		if !ok {
			j = len(out)
			idx[s] = j
			out = append(out, []string{args[0]})
		}
		out[j] = append(out[j], args[i], args[i+1])
	}
	return out
}

// planCommand turns one data command into parts. A nil result means the
// command has nothing to apply (no keys, or only checkpoint keys).
func (ct *commandTable) planCommand(ctx context.Context, name string, args []string) ([]part, error) {
	keys, err := ct.keys(ctx, name, args)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, nil
	}
	for _, k := range keys {
		if strings.HasPrefix(k, ckPrefix) {
			return nil, nil
		}
	}
	slot := keySlot(keys[0])
	same := true
	for _, k := range keys[1:] {
		if keySlot(k) != slot {
			same = false
			break
		}
	}
	if same {
		return []part{{slot: slot, args: args, keys: keys}}, nil
	}
	if split := splitters[name]; split != nil {
		var out []part
		for _, a := range split(args) {
			ks, _ := ct.keys(ctx, name, a)
			out = append(out, part{slot: keySlot(ks[0]), args: a, keys: ks})
		}
		return out, nil
	}
	// Cross-slot and not splittable: copy every key from the source, one
	// part per slot.
	bySlot := map[int]int{}
	var out []part
	for _, k := range keys {
		s := keySlot(k)
		i, ok := bySlot[s]
		if !ok {
			i = len(out)
			bySlot[s] = i
			out = append(out, part{slot: s, resync: true})
		}
		out[i].keys = append(out[i].keys, k)
	}
	return out, nil
}

// group turns the parts of one source unit (a command, or the commands of a
// MULTI/EXEC) into units: one per slot, in order of first appearance, with
// keyed resyncs after the data commands of the same slot.
func group(sh *shard, db int, parts []part, offset int64, tx, ck bool) []*unit {
	idx := map[int]int{}
	var out []*unit
	var resyncs []*unit
	ridx := map[int]int{}
	for _, p := range parts {
		if p.resync {
			i, ok := ridx[p.slot]
			if !ok {
				i = len(resyncs)
				ridx[p.slot] = i
				resyncs = append(resyncs, &unit{sh: sh, db: db, slot: p.slot, resync: true, offset: offset})
			}
			resyncs[i].keys = append(resyncs[i].keys, p.keys...)
			continue
		}
		i, ok := idx[p.slot]
		if !ok {
			i = len(out)
			idx[p.slot] = i
			out = append(out, &unit{sh: sh, db: db, slot: p.slot, offset: offset, ck: ck})
		}
		u := out[i]
		u.cmds = append(u.cmds, p.args)
		u.keys = append(u.keys, p.keys...)
	}
	for _, u := range out {
		u.tx = tx && len(u.cmds) > 1
	}
	return append(out, resyncs...)
}

// dbAllowed says whether the source database db may be copied: 0 always,
// others only when Options.DBMap lists them (the target is always 0).
func (l *Link) dbAllowed(db int) error {
	if db == 0 {
		return nil
	}
	if _, ok := l.opts.DBMap[db]; ok {
		return nil
	}
	if l.opts.DBMap == nil {
		return fmt.Errorf("%w: the source uses database %d; a Redis Cluster has only database 0: set a db map (for example %d->0) to merge it", ErrUnmappedDB, db, db)
	}
	return fmt.Errorf("%w: the source uses database %d, which the db map does not list", ErrUnmappedDB, db)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
