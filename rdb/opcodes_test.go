package rdb_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/r2m-go/r2m/rdb"
)

func str(s string) []byte { return append([]byte{byte(len(s))}, s...) }

func le64(v int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(v)) }

// listpackOf builds a listpack of short strings and int64s.
func listpackOf(items ...any) []byte {
	var body []byte
	for _, it := range items {
		var e []byte
		switch v := it.(type) {
		case string:
			e = append([]byte{0x80 | byte(len(v))}, v...)
		case int64:
			e = binary.LittleEndian.AppendUint64([]byte{0xf4}, uint64(v))
		}
		body = append(append(body, e...), byte(len(e)))
	}
	lp := binary.LittleEndian.AppendUint32(nil, uint32(6+len(body)+1))
	lp = binary.LittleEndian.AppendUint16(lp, uint16(len(items)))
	return append(append(lp, body...), 0xff)
}

// TestKeyPrefixOpcodes: EXPIRETIME (seconds), EXPIRETIME_MS, IDLE and FREQ
// apply to the next key only.
func TestKeyPrefixOpcodes(t *testing.T) {
	data := rdbFile(
		[]byte{254, 2, 251, 3, 1},
		[]byte{253}, binary.LittleEndian.AppendUint32(nil, 1_700_000_000), []byte{0}, str("secs"), str("v"),
		[]byte{0}, str("plain"), str("v"),
		[]byte{252}, le64(1_700_000_000_123), []byte{248, 0x40, 200}, []byte{0}, str("ms-idle"), str("v"),
		[]byte{249, 200}, []byte{0}, str("freq"), str("v"),
	)
	p, err := parseRDB(data, rdb.Options{Validate: true})
	must(t, err)
	want := map[string][3]int64{ // expire, idle, freq
		"secs":    {1_700_000_000_000, -1, -1},
		"plain":   {rdb.NoExpiry, -1, -1},
		"ms-idle": {1_700_000_000_123, 200, -1},
		"freq":    {rdb.NoExpiry, -1, 200},
	}
	for name, w := range want {
		k := p.key(2, name)
		if k == nil || [3]int64{k.ExpireAt, k.Idle, int64(k.Freq)} != w {
			t.Errorf("%s = %+v, want expire/idle/freq %v", name, k, w)
		}
	}
}

// TestPreChecksumVersion: files before RDB 5 end at the EOF opcode.
func TestPreChecksumVersion(t *testing.T) {
	data := append([]byte("REDIS0004"), 254, 0, 0)
	data = append(append(data, str("k")...), str("v")...)
	data = append(data, 0xff)
	p, err := parseRDB(data, rdb.Options{})
	must(t, err)
	wantString(t, p, 0, "k", "v")
}

// TestHashFieldTTLTypes decodes the two 7.4 GA hash types with field TTLs
// (no fixture has them; the RC types are covered by fixtures) and checks
// what conversion can and cannot do with them.
func TestHashFieldTTLTypes(t *testing.T) {
	const minExp = 1_800_000_000_000
	meta := append(le64(minExp), 2, 0)
	meta = append(append(meta, str("a")...), str("1")...)
	meta = append(meta, 6) // relative TTL: minExp+5
	meta = append(append(meta, str("b")...), str("2")...)
	lp := listpackOf("a", "1", int64(0), "b", "2", int64(minExp+5))
	lpex := append(le64(minExp), byte(len(lp)))
	lpex = append(lpex, lp...)
	want := rdb.Hash{{Field: "a", Value: "1"}, {Field: "b", Value: "2", ExpireAt: minExp + 5}}

	for typ, raw := range map[rdb.Type][]byte{rdb.TypeHashMetadata: meta, rdb.TypeHashListpackEx: lpex} {
		v, err := rdb.DecodeValue(typ, raw)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if h := v.(rdb.Hash); len(h) != 2 || h[0] != want[0] || h[1] != want[1] {
			t.Errorf("%s = %+v, want %+v", typ, h, want)
		}
		if got, _, err := rdb.Convert(typ, raw, 12); err != nil || got != typ {
			t.Errorf("%s for RDB 12: %v, %v; want unchanged", typ, got, err)
		}
		if _, _, err := rdb.Convert(typ, raw, 10); !errors.Is(err, rdb.ErrNotConvertible) {
			t.Errorf("%s with a field TTL for RDB 10: %v, want ErrNotConvertible", typ, err)
		}
	}

	// Without any TTL set, the hash converts to a plain hash.
	noTTL := append(le64(minExp), 1, 0)
	noTTL = append(append(noTTL, str("a")...), str("1")...)
	typ, raw, err := rdb.Convert(rdb.TypeHashMetadata, noTTL, 10)
	must(t, err)
	v, err := rdb.DecodeValue(typ, raw)
	if err != nil || typ != rdb.TypeHash || len(v.(rdb.Hash)) != 1 {
		t.Fatalf("converted = %s %+v, %v; want a plain hash a=1", typ, v, err)
	}
}

// TestConvertRefusals: module values and streams cannot go where their
// types do not exist.
func TestConvertRefusals(t *testing.T) {
	p, err := parseRDB(readFixture(t, "module.rdb"), rdb.Options{})
	must(t, err)
	if _, err := p.key(0, "key1").DumpFor(7); !errors.Is(err, rdb.ErrNotConvertible) {
		t.Errorf("module value for RDB 7: %v, want ErrNotConvertible", err)
	}
	p, err = parseRDB(readFixture(t, "stream_v11.rdb"), rdb.Options{})
	must(t, err)
	k := p.key(0, "mystream")
	if _, err := k.DumpFor(8); !errors.Is(err, rdb.ErrNotConvertible) {
		t.Errorf("stream for RDB 8: %v, want ErrNotConvertible", err)
	}
	// Type 21 becomes 19 for RDB 10 and 15 for RDB 9, keeping entries,
	// groups, PEL and consumers.
	orig := decode(t, k).(*rdb.Stream)
	for target, wantType := range map[int]rdb.Type{10: rdb.TypeStreamListpacks2, 9: rdb.TypeStreamListpacks} {
		payload, err := k.DumpFor(target)
		must(t, err)
		typ, raw, ver, err := rdb.ParsePayload(payload)
		must(t, err)
		v, err := rdb.DecodeValue(typ, raw)
		must(t, err)
		s := v.(*rdb.Stream)
		if typ != wantType || ver != target || len(s.Entries) != len(orig.Entries) || len(s.Groups) != len(orig.Groups) ||
			len(s.Groups[0].Pending) != len(orig.Groups[0].Pending) || s.Groups[0].Consumers[0].ActiveTime != -1 {
			t.Errorf("RDB %d: %s v%d %+v", target, typ, ver, s)
		}
	}
}
