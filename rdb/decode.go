package rdb

import (
	"encoding/binary"
	"errors"
	"math"
)

// Decode returns the decoded view of the key's value, checking every blob
// in depth (as Redis's sanitize-dump-payload yes would). Errors name the
// offset in the input.
func (k *Key) Decode() (Value, error) {
	v, err := decodeAt(k.Type, k.Value, k.ValueOffset)
	if err != nil {
		return nil, withContext(err, "key %s (%s)", quoteKey(k.Key), k.Type)
	}
	return v, nil
}

// DecodeValue decodes the raw value bytes of a value of type t (a DUMP
// payload body, see [ParsePayload]). Error offsets count from the start of
// raw.
func DecodeValue(t Type, raw []byte) (Value, error) { return decodeAt(t, raw, 0) }

func decodeAt(t Type, raw []byte, base int64) (Value, error) {
	r := newSliceReader(raw, base)
	v, err := r.decodeValue(t)
	if err != nil {
		return nil, err
	}
	if r.pos != len(raw) {
		return nil, errAt(r.offset(), ErrCorrupt, "%d bytes after the end of the value", len(raw)-r.pos)
	}
	return v, nil
}

// capHint bounds a preallocation by what the remaining input can hold.
func (r *reader) capHint(n uint64, minSize int) int {
	return int(min(n, uint64(max(r.left(), 0))/uint64(minSize), 1<<16))
}

func (r *reader) decodeValue(t Type) (Value, error) {
	switch t {
	case TypeString:
		s, err := r.readString()
		return String(s), err
	case TypeList, TypeSet:
		n, err := r.readCount(1, "elements")
		if err != nil {
			return nil, err
		}
		out := make([]string, 0, r.capHint(n, 1))
		for range n {
			s, err := r.readString()
			if err != nil {
				return nil, err
			}
			out = append(out, string(s))
		}
		if t == TypeList {
			return List(out), nil
		}
		return Set(out), nil
	case TypeZSet, TypeZSet2:
		return r.decodeZSet(t)
	case TypeHash:
		n, err := r.readCount(2, "fields")
		if err != nil {
			return nil, err
		}
		h := make(Hash, 0, r.capHint(n, 2))
		for range n {
			f, err := r.readString()
			if err != nil {
				return nil, err
			}
			field := string(f)
			v, err := r.readString()
			if err != nil {
				return nil, err
			}
			h = append(h, HashField{Field: field, Value: string(v)})
		}
		return h, nil
	case TypeModule2:
		return r.decodeModule()
	case TypeHashZipmap, TypeListZiplist, TypeSetIntset, TypeZSetZiplist, TypeHashZiplist,
		TypeHashListpack, TypeZSetListpack, TypeSetListpack, TypeHashListpackExPre, TypeHashListpackEx:
		if t == TypeHashListpackEx {
			// The smallest field TTL, an index hint: the listpack holds every
			// field's absolute TTL.
			if _, err := r.u64le(); err != nil {
				return nil, err
			}
		}
		at := r.offset()
		blob, err := r.readString()
		if err != nil {
			return nil, err
		}
		v, err := decodeBlob(t, blob)
		if err != nil {
			return nil, errAt(at, ErrCorrupt, "%s blob: %v", t, err)
		}
		return v, nil
	case TypeListQuicklist, TypeListQuicklist2:
		return r.decodeQuicklist(t)
	case TypeHashMetadataPreGA, TypeHashMetadata:
		return r.decodeHashMetadata(t)
	case TypeStreamListpacks, TypeStreamListpacks2, TypeStreamListpacks3:
		s := &Stream{}
		if err := r.walkStream(t, &streamWalk{out: s}); err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, errAt(r.offset(), ErrCorrupt, "unknown value type %d", t)
}

func (r *reader) decodeZSet(t Type) (ZSet, error) {
	minSize := 2
	if t == TypeZSet2 {
		minSize = 9
	}
	n, err := r.readCount(minSize, "members")
	if err != nil {
		return nil, err
	}
	z := make(ZSet, 0, r.capHint(n, minSize))
	for range n {
		m, err := r.readString()
		if err != nil {
			return nil, err
		}
		member := string(m)
		var score float64
		if t == TypeZSet2 {
			v, err := r.u64le()
			if err != nil {
				return nil, err
			}
			score = math.Float64frombits(v)
		} else {
			at := r.offset()
			b, err := r.readStringDouble()
			if err != nil {
				return nil, err
			}
			var ok bool
			if score, ok = parseScore(b); !ok {
				return nil, errAt(at, ErrCorrupt, "score %q is not a number", b)
			}
		}
		z = append(z, ZMember{Member: member, Score: score})
	}
	return z, nil
}

func (r *reader) decodeQuicklist(t Type) (List, error) {
	n, err := r.readCount(1, "quicklist nodes")
	if err != nil {
		return nil, err
	}
	var l List
	for range n {
		container := uint64(quicklistPacked)
		if t == TypeListQuicklist2 {
			if container, err = r.quicklistContainer(); err != nil {
				return nil, err
			}
		}
		at := r.offset()
		node, err := r.readString()
		if err != nil {
			return nil, err
		}
		if container == quicklistPlain {
			l = append(l, string(node))
			continue
		}
		if t == TypeListQuicklist {
			err = eachZiplist(node, func(it item) error { l = append(l, it.String()); return nil })
		} else {
			err = eachListpack(node, func(it item) error { l = append(l, it.String()); return nil })
		}
		if err != nil {
			return nil, errAt(at, ErrCorrupt, "quicklist node: %v", err)
		}
	}
	return l, nil
}

func (r *reader) decodeHashMetadata(t Type) (Hash, error) {
	var minExpire int64
	if t == TypeHashMetadata {
		v, err := r.u64le()
		if err != nil {
			return nil, err
		}
		minExpire = int64(v)
	}
	n, err := r.readCount(3, "fields")
	if err != nil {
		return nil, err
	}
	h := make(Hash, 0, r.capHint(n, 3))
	for range n {
		ttl, err := r.readPlainLen("field TTL")
		if err != nil {
			return nil, err
		}
		f, err := r.readString()
		if err != nil {
			return nil, err
		}
		field := string(f)
		v, err := r.readString()
		if err != nil {
			return nil, err
		}
		expireAt := int64(ttl) // absolute in the 7.4 RC format
		if t == TypeHashMetadata && ttl != 0 {
			expireAt = int64(ttl) + minExpire - 1 // stored relative to the hash's minimum
		}
		h = append(h, HashField{Field: field, Value: string(v), ExpireAt: expireAt})
	}
	return h, nil
}

// decodeBlob decodes the single-string encodings.
func decodeBlob(t Type, b []byte) (Value, error) {
	switch t {
	case TypeSetIntset:
		return intsetMembers(b)
	case TypeHashZipmap:
		return zipmapFields(b)
	case TypeListZiplist:
		var l List
		err := eachZiplist(b, func(it item) error { l = append(l, it.String()); return nil })
		return l, err
	case TypeSetListpack:
		var s Set
		err := eachListpack(b, func(it item) error { s = append(s, it.String()); return nil })
		return s, err
	}
	each := eachListpack
	if t == TypeZSetZiplist || t == TypeHashZiplist {
		each = eachZiplist
	}
	per := 2
	if t == TypeHashListpackExPre || t == TypeHashListpackEx {
		per = 3
	}
	var items []item
	err := each(b, func(it item) error { items = append(items, it); return nil })
	if err != nil {
		return nil, err
	}
	if len(items)%per != 0 {
		return nil, blobErrorf("%d elements do not form groups of %d", len(items), per)
	}
	switch t {
	case TypeZSetZiplist, TypeZSetListpack:
		z := make(ZSet, 0, len(items)/2)
		for i := 0; i < len(items); i += 2 {
			score, ok := items[i+1].float()
			if !ok {
				return nil, blobErrorf("score %q is not a number", items[i+1].String())
			}
			z = append(z, ZMember{Member: items[i].String(), Score: score})
		}
		return z, nil
	}
	h := make(Hash, 0, len(items)/per)
	for i := 0; i < len(items); i += per {
		f := HashField{Field: items[i].String(), Value: items[i+1].String()}
		if per == 3 {
			ttl, ok := items[i+2].int()
			if !ok {
				return nil, blobErrorf("field TTL %q is not an integer", items[i+2].String())
			}
			f.ExpireAt = ttl // 0: no TTL; absolute in both listpack formats
		}
		h = append(h, f)
	}
	return h, nil
}

func eachListpack(b []byte, fn func(item) error) error {
	lp, err := newListpack(b)
	if err != nil {
		return err
	}
	for {
		it, ok, err := lp.next()
		if err != nil || !ok {
			return err
		}
		if err := fn(it); err != nil {
			return err
		}
	}
}

func eachZiplist(b []byte, fn func(item) error) error {
	zl, err := newZiplist(b)
	if err != nil {
		return err
	}
	for {
		it, ok, err := zl.next()
		if err != nil || !ok {
			return err
		}
		if err := fn(it); err != nil {
			return err
		}
	}
}

var errModuleEOF = errors.New("module EOF opcode")

// moduleField reads one annotated module value; errModuleEOF marks the end.
// With decode false, strings are skipped rather than decompressed.
func (r *reader) moduleField(decode bool) (ModuleField, error) {
	at := r.offset()
	op, err := r.readPlainLen("module opcode")
	if err != nil {
		return ModuleField{}, err
	}
	f := ModuleField{Op: int(op)}
	switch op {
	case moduleOpEOF:
		return f, errModuleEOF
	case moduleOpSint, moduleOpUint:
		f.Uint, err = r.readPlainLen("module integer")
	case moduleOpFloat:
		var v uint32
		v, err = r.u32le()
		f.Float = float64(math.Float32frombits(v))
	case moduleOpDouble:
		var v uint64
		v, err = r.u64le()
		f.Float = math.Float64frombits(v)
	case moduleOpString:
		if !decode {
			return f, r.skipString()
		}
		var s []byte
		if s, err = r.readString(); err == nil {
			f.String = append([]byte(nil), s...)
		}
	default:
		return f, errAt(at, ErrCorrupt, "unknown module opcode %d", op)
	}
	return f, err
}

func (r *reader) decodeModule() (*Module, error) {
	start := r.offset()
	id, err := r.readPlainLen("module id")
	if err != nil {
		return nil, err
	}
	m := &Module{ID: id}
	for {
		f, err := r.moduleField(true)
		if err == errModuleEOF {
			m.Size = int(r.offset() - start)
			return m, nil
		}
		if err != nil {
			return nil, err
		}
		m.Fields = append(m.Fields, f)
	}
}

func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
