package rdb

import "fmt"

// Stream listpack entry flags (t_stream.c).
const (
	streamItemDeleted    = 1
	streamItemSameFields = 2
)

// streamWalk says what walkStream does besides checking the framing: decode
// into out, and/or record the byte ranges to drop to rewrite the value as
// type dropTo (an older stream encoding).
type streamWalk struct {
	out    *Stream
	dropTo Type
	drops  [][2]int64 // input offsets [from, to)
}

// walkStream consumes a stream value (7.4 rdbLoadObject, stream branch):
// listpack nodes, length and last ID, the v2 metadata, then consumer groups
// with their PEL and consumers.
func (r *reader) walkStream(t Type, w *streamWalk) error {
	var out *Stream
	if w != nil {
		out = w.out
	}
	drop := func(from int64, dropIf bool) {
		if w != nil && dropIf {
			w.drops = append(w.drops, [2]int64{from, r.offset()})
		}
	}
	n, err := r.readCount(2, "stream listpacks")
	if err != nil {
		return err
	}
	for range n {
		at := r.offset()
		key, err := r.readString()
		if err != nil {
			return err
		}
		if len(key) != 16 {
			return errAt(at, ErrCorrupt, "stream node key is %d bytes, want 16 (a stream ID)", len(key))
		}
		master := StreamID{Ms: be64(key), Seq: be64(key[8:])}
		if out == nil {
			if err := r.skipString(); err != nil {
				return err
			}
			continue
		}
		at = r.offset()
		lp, err := r.readString()
		if err != nil {
			return err
		}
		if err := decodeStreamNode(master, lp, out); err != nil {
			return errAt(at, ErrCorrupt, "stream node %s: %v", master, err)
		}
	}
	var lens [3]uint64 // length, last ID
	for i := range lens {
		if lens[i], err = r.readPlainLen("stream length or last ID"); err != nil {
			return err
		}
	}
	if out != nil {
		out.Length, out.LastID = lens[0], StreamID{lens[1], lens[2]}
	}
	if t >= TypeStreamListpacks2 {
		from := r.offset()
		var meta [5]uint64 // first ID, max deleted ID, entries added
		for i := range meta {
			if meta[i], err = r.readPlainLen("stream metadata"); err != nil {
				return err
			}
		}
		drop(from, w != nil && w.dropTo == TypeStreamListpacks)
		if out != nil {
			out.FirstID = StreamID{meta[0], meta[1]}
			out.MaxDeletedID = StreamID{meta[2], meta[3]}
			out.EntriesAdded = meta[4]
		}
	}
	groups, err := r.readCount(5, "consumer groups")
	if err != nil {
		return err
	}
	for range groups {
		if err := r.walkGroup(t, w, out, drop); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) walkGroup(t Type, w *streamWalk, out *Stream, drop func(int64, bool)) error {
	name, err := r.readString()
	if err != nil {
		return err
	}
	g := StreamGroup{Name: string(name), EntriesRead: -1}
	ms, err := r.readPlainLen("group last ID")
	if err != nil {
		return err
	}
	seq, err := r.readPlainLen("group last ID")
	if err != nil {
		return err
	}
	g.LastID = StreamID{ms, seq}
	if t >= TypeStreamListpacks2 {
		from := r.offset()
		v, err := r.readPlainLen("group entries read")
		if err != nil {
			return err
		}
		g.EntriesRead = int64(v) // -1 (unknown) is saved as a 64-bit length
		drop(from, w != nil && w.dropTo == TypeStreamListpacks)
	}
	npel, err := r.readCount(25, "pending entries")
	if err != nil {
		return err
	}
	var pel map[StreamID]bool
	if out != nil {
		g.Pending = make([]StreamPending, 0, r.capHint(npel, 25))
		pel = make(map[StreamID]bool, r.capHint(npel, 25))
	}
	for range npel {
		at := r.offset()
		raw, err := r.take(16)
		if err != nil {
			return err
		}
		id := StreamID{be64(raw), be64(raw[8:])}
		delivered, err := r.u64le()
		if err != nil {
			return err
		}
		count, err := r.readPlainLen("delivery count")
		if err != nil {
			return err
		}
		if out != nil {
			if pel[id] {
				return errAt(at, ErrCorrupt, "group %s: pending entry %s appears twice", quoteKey(g.Name), id)
			}
			pel[id] = true
			g.Pending = append(g.Pending, StreamPending{ID: id, DeliveryTime: int64(delivered), DeliveryCount: count})
		}
	}
	minConsumer := 10
	if t == TypeStreamListpacks3 {
		minConsumer = 18
	}
	ncons, err := r.readCount(minConsumer, "consumers")
	if err != nil {
		return err
	}
	for range ncons {
		cname, err := r.readString()
		if err != nil {
			return err
		}
		c := StreamConsumer{Name: string(cname), ActiveTime: -1}
		seen, err := r.u64le()
		if err != nil {
			return err
		}
		c.SeenTime = int64(seen)
		if t == TypeStreamListpacks3 {
			from := r.offset()
			active, err := r.u64le()
			if err != nil {
				return err
			}
			c.ActiveTime = int64(active)
			drop(from, w != nil && w.dropTo != 0 && w.dropTo < TypeStreamListpacks3)
		}
		n, err := r.readCount(16, "consumer pending entries")
		if err != nil {
			return err
		}
		for range n {
			at := r.offset()
			raw, err := r.take(16)
			if err != nil {
				return err
			}
			if out != nil {
				id := StreamID{be64(raw), be64(raw[8:])}
				if !pel[id] {
					return errAt(at, ErrCorrupt, "consumer %s: pending entry %s is not in the group's PEL", quoteKey(c.Name), id)
				}
				c.Pending = append(c.Pending, id)
			}
		}
		if out != nil {
			g.Consumers = append(g.Consumers, c)
		}
	}
	if out != nil {
		out.Groups = append(out.Groups, g)
	}
	return nil
}

// decodeStreamNode appends the live entries of one stream listpack node
// (t_stream.c): a master entry "count deleted num-fields field... 0", then
// entries "flags ms-diff seq-diff [num-fields field value... | value...]
// lp-count", IDs relative to the node's master ID.
func decodeStreamNode(master StreamID, b []byte, out *Stream) error {
	lp, err := newListpack(b)
	if err != nil {
		return err
	}
	next := func() (item, error) {
		it, ok, err := lp.next()
		if err == nil && !ok {
			err = fmt.Errorf("listpack ends inside an entry")
		}
		return it, err
	}
	nextInt := func(what string) (int64, error) {
		it, err := next()
		if err != nil {
			return 0, err
		}
		v, ok := it.int()
		if !ok {
			return 0, fmt.Errorf("%s %q is not an integer", what, it.String())
		}
		return v, nil
	}
	count, err := nextInt("entry count")
	if err != nil {
		return err
	}
	deleted, err := nextInt("deleted count")
	if err != nil {
		return err
	}
	nfields, err := nextInt("master field count")
	if err != nil {
		return err
	}
	if nfields < 0 || nfields > int64(len(b)) {
		return fmt.Errorf("master field count %d is impossible", nfields)
	}
	fields := make([]string, 0, min(nfields, 1024))
	for range nfields {
		it, err := next()
		if err != nil {
			return err
		}
		fields = append(fields, it.String())
	}
	if z, err := nextInt("master entry terminator"); err != nil || z != 0 {
		if err == nil {
			err = fmt.Errorf("master entry terminator is %d, want 0", z)
		}
		return err
	}
	var live, dead int64
	for {
		it, ok, err := lp.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		flags, isInt := it.int()
		if !isInt {
			return fmt.Errorf("entry flags %q is not an integer", it.String())
		}
		msd, err := nextInt("entry ms delta")
		if err != nil {
			return err
		}
		seqd, err := nextInt("entry seq delta")
		if err != nil {
			return err
		}
		id := StreamID{Ms: master.Ms + uint64(msd), Seq: master.Seq + uint64(seqd)}
		var kv []string
		if flags&streamItemSameFields != 0 {
			kv = make([]string, 0, 2*len(fields))
			for _, f := range fields {
				v, err := next()
				if err != nil {
					return err
				}
				kv = append(kv, f, v.String())
			}
		} else {
			nf, err := nextInt("entry field count")
			if err != nil {
				return err
			}
			if nf < 0 || nf > int64(len(b)) {
				return fmt.Errorf("entry field count %d is impossible", nf)
			}
			kv = make([]string, 0, min(2*nf, 1024))
			for range 2 * nf {
				v, err := next()
				if err != nil {
					return err
				}
				kv = append(kv, v.String())
			}
		}
		if _, err := nextInt("entry lp-count"); err != nil {
			return err
		}
		if flags&streamItemDeleted != 0 {
			dead++
			continue
		}
		live++
		out.Entries = append(out.Entries, StreamEntry{ID: id, Fields: kv})
	}
	if live != count || dead != deleted {
		return fmt.Errorf("master entry counts %d live and %d deleted entries, node holds %d and %d", count, deleted, live, dead)
	}
	return nil
}
