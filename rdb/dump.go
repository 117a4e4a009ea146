package rdb

import (
	"encoding/binary"
	"math"
	"strconv"
)

// Payload builds a DUMP payload, as Redis's createDumpPayload does: the type
// byte, the value bytes, the RDB version as two bytes little-endian, and the
// CRC64 of all of that as eight bytes little-endian. RESTORE accepts it on a
// server whose RDB version is at least version and that knows type t.
func Payload(t Type, raw []byte, version int) []byte {
	p := make([]byte, 0, 1+len(raw)+10)
	p = append(p, byte(t))
	p = append(p, raw...)
	p = binary.LittleEndian.AppendUint16(p, uint16(version))
	return binary.LittleEndian.AppendUint64(p, CRC64(0, p))
}

// ParsePayload splits a DUMP payload into its type, value bytes and RDB
// version after checking its CRC64. It does not decode the value; see
// [DecodeValue].
func ParsePayload(p []byte) (t Type, raw []byte, version int, err error) {
	if len(p) < 11 {
		return 0, nil, 0, errAt(0, ErrCorrupt, "DUMP payload of %d bytes is shorter than type, footer and checksum", len(p))
	}
	body := p[:len(p)-8]
	if got, want := binary.LittleEndian.Uint64(p[len(p)-8:]), CRC64(0, body); got != want {
		return 0, nil, 0, errAt(int64(len(p)-8), ErrChecksum, "DUMP payload checksum mismatch: expected %016x, got %016x", want, got)
	}
	t = Type(p[0])
	if !t.Valid() {
		return 0, nil, 0, errAt(0, ErrCorrupt, "DUMP payload has unknown value type %d", p[0])
	}
	return t, p[1 : len(p)-10], int(binary.LittleEndian.Uint16(p[len(p)-10:])), nil
}

// Dump returns the key's DUMP payload with the source's RDB version in the
// footer: RESTORE on a server of the same or a newer version accepts it and
// recreates the value with the same encoding.
func (k *Key) Dump() []byte { return Payload(k.Type, k.Value, k.Version) }

// DumpFor returns a DUMP payload that a server whose RDB version is target
// accepts (Redis 7.0 reads RDB 10, 6.2 and 5.0 read 9; see [Convert]). The
// footer carries min(source version, target), since servers refuse newer
// footers and accept older ones.
func (k *Key) DumpFor(target int) ([]byte, error) {
	t, raw, err := Convert(k.Type, k.Value, target)
	if err != nil {
		return nil, withContext(err, "key %s (%s)", quoteKey(k.Key), k.Type)
	}
	return Payload(t, raw, min(k.Version, target)), nil
}

// Convert rewrites a value of type t so that a server reading RDB version
// target can load it. A type the target knows is returned unchanged.
// Otherwise lists, sets, sorted sets and hashes become the plain types every
// version reads (1, 2, 5, or 3 before RDB 8, and 4), and streams drop the
// metadata of newer encodings (type 21 becomes 19 for RDB 10, 19 and 21
// become 15 for RDB 9; what Redis derives on load replaces the dropped
// fields). A hash with field TTLs, a module value or a stream for a target
// older than RDB 9 cannot be expressed: that is ErrNotConvertible.
func Convert(t Type, raw []byte, target int) (Type, []byte, error) {
	if target < 1 {
		return 0, nil, errAt(0, ErrUnsupportedVersion, "target RDB version %d is not a version", target)
	}
	if !t.Valid() {
		return 0, nil, errAt(0, ErrCorrupt, "unknown value type %d", t)
	}
	if t.MinVersion() <= target {
		return t, raw, nil
	}
	switch t.Kind() {
	case KindStream:
		if target < TypeStreamListpacks.MinVersion() {
			return 0, nil, errAt(0, ErrNotConvertible, "streams need RDB 9 (Redis 5.0); the target reads RDB %d", target)
		}
		to := TypeStreamListpacks
		if target >= TypeStreamListpacks2.MinVersion() {
			to = TypeStreamListpacks2
		}
		out, err := downgradeStream(t, raw, to)
		return to, out, err
	case KindModule:
		return 0, nil, errAt(0, ErrNotConvertible, "module values need RDB 8 and the module on the target; the target reads RDB %d", target)
	}
	v, err := DecodeValue(t, raw)
	if err != nil {
		return 0, nil, err
	}
	switch v := v.(type) {
	case List:
		return TypeList, appendStrings(nil, v), nil
	case Set:
		return TypeSet, appendStrings(nil, v), nil
	case ZSet:
		if target >= TypeZSet2.MinVersion() {
			b := appendLen(nil, uint64(len(v)))
			for _, m := range v {
				b = appendString(b, m.Member)
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(m.Score))
			}
			return TypeZSet2, b, nil
		}
		b := appendLen(nil, uint64(len(v)))
		for _, m := range v {
			b = appendString(b, m.Member)
			b = appendStringDouble(b, m.Score)
		}
		return TypeZSet, b, nil
	case Hash:
		b := appendLen(nil, uint64(len(v)))
		for _, f := range v {
			if f.ExpireAt != 0 {
				return 0, nil, errAt(0, ErrNotConvertible, "hash field %s has a TTL, which RDB %d cannot express", quoteKey(f.Field), target)
			}
			b = appendString(appendString(b, f.Field), f.Value)
		}
		return TypeHash, b, nil
	}
	return 0, nil, errAt(0, ErrNotConvertible, "no conversion of %s for RDB %d", t, target)
}

// downgradeStream copies a stream value without the parts that type to does
// not have.
func downgradeStream(t Type, raw []byte, to Type) ([]byte, error) {
	w := &streamWalk{dropTo: to}
	r := newSliceReader(raw, 0)
	if err := r.walkStream(t, w); err != nil {
		return nil, err
	}
	if r.pos != len(raw) {
		return nil, errAt(r.offset(), ErrCorrupt, "%d bytes after the end of the stream", len(raw)-r.pos)
	}
	out := make([]byte, 0, len(raw))
	var at int64
	for _, d := range w.drops {
		out = append(out, raw[at:d[0]]...)
		at = d[1]
	}
	return append(out, raw[at:]...), nil
}

// appendLen appends an RDB length (rdbSaveLen).
func appendLen(b []byte, n uint64) []byte {
	switch {
	case n < 1<<6:
		return append(b, byte(n))
	case n < 1<<14:
		return append(b, byte(n>>8)|0x40, byte(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0x80), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0x81), n)
}

// appendString appends a plain RDB string (no integer or LZF encoding, which
// every loader accepts).
func appendString(b []byte, s string) []byte {
	return append(appendLen(b, uint64(len(s))), s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = appendLen(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// appendStringDouble appends a type-3 zset score (rdbSaveDoubleValue).
func appendStringDouble(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, 253)
	case math.IsInf(f, 1):
		return append(b, 254)
	case math.IsInf(f, -1):
		return append(b, 255)
	}
	s := strconv.FormatFloat(f, 'g', 17, 64)
	return append(append(b, byte(len(s))), s...)
}
