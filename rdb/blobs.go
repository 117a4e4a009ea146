package rdb

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// item is one element of a compact encoding: a string, or an integer.
type item struct {
	s     []byte // a view into the blob when !isInt
	v     int64
	isInt bool
}

func (it item) String() string {
	if it.isInt {
		return strconv.FormatInt(it.v, 10)
	}
	return string(it.s)
}

// int returns the element as an integer, parsing a string element as Redis's
// lpGetInteger does.
func (it item) int() (int64, bool) {
	if it.isInt {
		return it.v, true
	}
	v, err := strconv.ParseInt(string(it.s), 10, 64)
	return v, err == nil
}

func (it item) float() (float64, bool) {
	if it.isInt {
		return float64(it.v), true
	}
	return parseScore(it.s)
}

// parseScore parses a score written by Redis (%.17g, "inf", "-inf", "nan").
func parseScore(b []byte) (float64, bool) {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); !ok || ne.Err != strconv.ErrRange {
			return 0, false
		}
	}
	return f, true
}

type blobError string

func (e blobError) Error() string { return string(e) }

func blobErrorf(format string, args ...any) error { return blobError(fmt.Sprintf(format, args...)) }

// listpack walks a listpack (redis src/listpack.c): uint32 total bytes,
// uint16 element count (65535: unknown), entries each followed by a backlen,
// and a 0xFF terminator. Every entry is checked against the blob's bounds and
// its backlen, as lpValidateIntegrity does in deep mode.
type listpack struct {
	b     []byte
	p     int
	count int // declared elements, or -1
	seen  int
}

func newListpack(b []byte) (*listpack, error) {
	if len(b) < 7 {
		return nil, blobErrorf("listpack of %d bytes is shorter than its header", len(b))
	}
	if total := binary.LittleEndian.Uint32(b); int64(total) != int64(len(b)) {
		return nil, blobErrorf("listpack header says %d bytes, blob has %d", total, len(b))
	}
	if b[len(b)-1] != 0xff {
		return nil, blobErrorf("listpack does not end with 0xFF")
	}
	count := int(binary.LittleEndian.Uint16(b[4:]))
	if count == 65535 {
		count = -1
	}
	return &listpack{b: b, p: 6, count: count}, nil
}

// next returns the next element; ok is false at the terminator.
func (lp *listpack) next() (it item, ok bool, err error) {
	b, p := lp.b, lp.p
	if p >= len(b) {
		return it, false, blobErrorf("listpack entry at %d beyond the blob", p)
	}
	e := b[p]
	if e == 0xff {
		if p != len(b)-1 {
			return it, false, blobErrorf("listpack terminator at %d of %d bytes", p, len(b))
		}
		if lp.count >= 0 && lp.count != lp.seen {
			return it, false, blobErrorf("listpack header says %d elements, found %d", lp.count, lp.seen)
		}
		return it, false, nil
	}
	var hdr, n int // encoding bytes and data bytes
	switch {
	case e&0x80 == 0: // 7-bit uint
		hdr, it = 1, item{v: int64(e & 0x7f), isInt: true}
	case e&0xc0 == 0x80: // 6-bit string length
		hdr, n = 1, int(e&0x3f)
	case e&0xe0 == 0xc0: // 13-bit int
		hdr = 2
	case e&0xf0 == 0xe0: // 12-bit string length
		hdr = 2
	case e == 0xf0: // 32-bit string length
		hdr = 5
	case e == 0xf1:
		hdr, n = 1, 2
	case e == 0xf2:
		hdr, n = 1, 3
	case e == 0xf3:
		hdr, n = 1, 4
	case e == 0xf4:
		hdr, n = 1, 8
	default:
		return it, false, blobErrorf("listpack entry at %d has invalid encoding 0x%02x", p, e)
	}
	if p+hdr > len(b) {
		return it, false, blobErrorf("listpack entry at %d: header beyond the blob", p)
	}
	switch {
	case e&0xe0 == 0xc0:
		u := int64(e&0x1f)<<8 | int64(b[p+1])
		if u >= 1<<12 {
			u -= 1 << 13
		}
		it = item{v: u, isInt: true}
	case e&0xf0 == 0xe0:
		n = int(e&0x0f)<<8 | int(b[p+1])
	case e == 0xf0:
		l := binary.LittleEndian.Uint32(b[p+1:])
		if int64(l) > int64(len(b)) {
			return it, false, blobErrorf("listpack entry at %d: string of %d bytes beyond the blob", p, l)
		}
		n = int(l)
	}
	size := hdr + n
	if p+size > len(b) {
		return it, false, blobErrorf("listpack entry at %d: %d bytes beyond the blob", p, size)
	}
	d := b[p+hdr : p+size]
	switch e {
	case 0xf1:
		it = item{v: int64(int16(binary.LittleEndian.Uint16(d))), isInt: true}
	case 0xf2:
		u := int64(d[0]) | int64(d[1])<<8 | int64(d[2])<<16
		if u >= 1<<23 {
			u -= 1 << 24
		}
		it = item{v: u, isInt: true}
	case 0xf3:
		it = item{v: int64(int32(binary.LittleEndian.Uint32(d))), isInt: true}
	case 0xf4:
		it = item{v: int64(binary.LittleEndian.Uint64(d)), isInt: true}
	default:
		if !it.isInt {
			it.s = d
		}
	}
	bl := backlen(size)
	end := p + size + len(bl)
	if end > len(b)-1 {
		return it, false, blobErrorf("listpack entry at %d: backlen beyond the blob", p)
	}
	if string(b[p+size:end]) != string(bl) {
		return it, false, blobErrorf("listpack entry at %d: backlen does not match its size %d", p, size)
	}
	lp.p = end
	lp.seen++
	return it, true, nil
}

// backlen encodes an entry size the way lpEncodeBacklen stores it.
func backlen(l int) []byte {
	switch {
	case l <= 127:
		return []byte{byte(l)}
	case l < 16383:
		return []byte{byte(l >> 7), byte(l&127) | 128}
	case l < 2097151:
		return []byte{byte(l >> 14), byte((l>>7)&127) | 128, byte(l&127) | 128}
	case l < 268435455:
		return []byte{byte(l >> 21), byte((l>>14)&127) | 128, byte((l>>7)&127) | 128, byte(l&127) | 128}
	}
	return []byte{byte(l >> 28), byte((l>>21)&127) | 128, byte((l>>14)&127) | 128, byte((l>>7)&127) | 128, byte(l&127) | 128}
}

// ziplist walks a ziplist (redis src/ziplist.c): uint32 bytes, uint32 tail
// offset, uint16 count (65535: unknown), entries, 0xFF. Each entry's prevlen
// must equal the previous entry's size.
type ziplist struct {
	b     []byte
	p     int
	prev  int
	count int
	seen  int
}

func newZiplist(b []byte) (*ziplist, error) {
	if len(b) < 11 {
		return nil, blobErrorf("ziplist of %d bytes is shorter than its header", len(b))
	}
	if total := binary.LittleEndian.Uint32(b); int64(total) != int64(len(b)) {
		return nil, blobErrorf("ziplist header says %d bytes, blob has %d", total, len(b))
	}
	if tail := binary.LittleEndian.Uint32(b[4:]); int64(tail) >= int64(len(b)) {
		return nil, blobErrorf("ziplist tail offset %d beyond the blob", tail)
	}
	if b[len(b)-1] != 0xff {
		return nil, blobErrorf("ziplist does not end with 0xFF")
	}
	count := int(binary.LittleEndian.Uint16(b[8:]))
	if count == 65535 {
		count = -1
	}
	return &ziplist{b: b, p: 10, count: count}, nil
}

func (zl *ziplist) next() (it item, ok bool, err error) {
	b, p := zl.b, zl.p
	if p >= len(b) {
		return it, false, blobErrorf("ziplist entry at %d beyond the blob", p)
	}
	if b[p] == 0xff {
		if p != len(b)-1 {
			return it, false, blobErrorf("ziplist terminator at %d of %d bytes", p, len(b))
		}
		if zl.count >= 0 && zl.count != zl.seen {
			return it, false, blobErrorf("ziplist header says %d entries, found %d", zl.count, zl.seen)
		}
		return it, false, nil
	}
	start := p
	var prevlen int
	if b[p] < 254 {
		prevlen = int(b[p])
		p++
	} else {
		if p+5 > len(b) {
			return it, false, blobErrorf("ziplist entry at %d: prevlen beyond the blob", start)
		}
		prevlen = int(binary.LittleEndian.Uint32(b[p+1:]))
		p += 5
	}
	if prevlen != zl.prev {
		return it, false, blobErrorf("ziplist entry at %d: prevlen %d, previous entry has %d bytes", start, prevlen, zl.prev)
	}
	if p >= len(b) {
		return it, false, blobErrorf("ziplist entry at %d: encoding beyond the blob", start)
	}
	e := b[p]
	var hdr, n int
	isInt := false
	switch e >> 6 {
	case 0:
		hdr, n = 1, int(e&0x3f)
	case 1:
		if p+2 > len(b) {
			return it, false, blobErrorf("ziplist entry at %d: length beyond the blob", start)
		}
		hdr, n = 2, int(e&0x3f)<<8|int(b[p+1])
	case 2:
		if p+5 > len(b) {
			return it, false, blobErrorf("ziplist entry at %d: length beyond the blob", start)
		}
		l := binary.BigEndian.Uint32(b[p+1:])
		if int64(l) > int64(len(b)) {
			return it, false, blobErrorf("ziplist entry at %d: string of %d bytes beyond the blob", start, l)
		}
		hdr, n = 5, int(l)
	default:
		isInt, hdr = true, 1
		switch {
		case e == 0xc0:
			n = 2
		case e == 0xd0:
			n = 4
		case e == 0xe0:
			n = 8
		case e == 0xf0:
			n = 3
		case e == 0xfe:
			n = 1
		case e >= 0xf1 && e <= 0xfd:
			n = 0
		default:
			return it, false, blobErrorf("ziplist entry at %d has invalid encoding 0x%02x", start, e)
		}
	}
	if p+hdr+n > len(b)-1 {
		return it, false, blobErrorf("ziplist entry at %d: %d bytes beyond the blob", start, hdr+n)
	}
	d := b[p+hdr : p+hdr+n]
	if isInt {
		switch e {
		case 0xc0:
			it.v = int64(int16(binary.LittleEndian.Uint16(d)))
		case 0xd0:
			it.v = int64(int32(binary.LittleEndian.Uint32(d)))
		case 0xe0:
			it.v = int64(binary.LittleEndian.Uint64(d))
		case 0xf0:
			u := int64(d[0]) | int64(d[1])<<8 | int64(d[2])<<16
			if u >= 1<<23 {
				u -= 1 << 24
			}
			it.v = u
		case 0xfe:
			it.v = int64(int8(d[0]))
		default:
			it.v = int64(e&0x0f) - 1
		}
		it.isInt = true
	} else {
		it.s = d
	}
	zl.p = p + hdr + n
	zl.prev = zl.p - start
	zl.seen++
	return it, true, nil
}

// intsetMembers decodes an intset (redis src/intset.c): uint32 encoding (2,
// 4 or 8 bytes a member), uint32 count, then the sorted members.
func intsetMembers(b []byte) (Set, error) {
	if len(b) < 8 {
		return nil, blobErrorf("intset of %d bytes is shorter than its header", len(b))
	}
	enc := binary.LittleEndian.Uint32(b)
	n := binary.LittleEndian.Uint32(b[4:])
	if enc != 2 && enc != 4 && enc != 8 {
		return nil, blobErrorf("intset encoding %d, want 2, 4 or 8", enc)
	}
	if 8+uint64(enc)*uint64(n) != uint64(len(b)) {
		return nil, blobErrorf("intset of %d members of %d bytes does not fill %d bytes", n, enc, len(b))
	}
	out := make(Set, 0, n)
	var prev int64
	for i := range int(n) {
		d := b[8+i*int(enc):]
		var v int64
		switch enc {
		case 2:
			v = int64(int16(binary.LittleEndian.Uint16(d)))
		case 4:
			v = int64(int32(binary.LittleEndian.Uint32(d)))
		default:
			v = int64(binary.LittleEndian.Uint64(d))
		}
		if i > 0 && v <= prev {
			return nil, blobErrorf("intset members are not sorted and unique at %d", i)
		}
		prev = v
		out = append(out, strconv.FormatInt(v, 10))
	}
	return out, nil
}

// zipmapFields decodes a zipmap (redis src/zipmap.c, Redis 2.x hashes):
// count byte, then len key len free value [free bytes], then 0xFF. Lengths
// are one byte below 254, else 254 and a uint32.
func zipmapFields(b []byte) (Hash, error) {
	if len(b) < 2 {
		return nil, blobErrorf("zipmap of %d bytes is too short", len(b))
	}
	p := 1
	readLen := func() (int, bool, error) {
		if p >= len(b) {
			return 0, false, blobErrorf("zipmap entry at %d beyond the blob", p)
		}
		switch c := b[p]; {
		case c < 254:
			p++
			return int(c), false, nil
		case c == 254:
			if p+5 > len(b) {
				return 0, false, blobErrorf("zipmap length at %d beyond the blob", p)
			}
			l := binary.LittleEndian.Uint32(b[p+1:])
			p += 5
			if int64(l) > int64(len(b)) {
				return 0, false, blobErrorf("zipmap length %d beyond the blob", l)
			}
			return int(l), false, nil
		}
		return 0, true, nil
	}
	var h Hash
	for {
		kl, end, err := readLen()
		if err != nil {
			return nil, err
		}
		if end {
			if p != len(b)-1 {
				return nil, blobErrorf("zipmap terminator at %d of %d bytes", p, len(b))
			}
			if c := int(b[0]); c < 254 && c != len(h) {
				return nil, blobErrorf("zipmap header says %d fields, found %d", c, len(h))
			}
			return h, nil
		}
		if p+kl > len(b) {
			return nil, blobErrorf("zipmap key at %d beyond the blob", p)
		}
		k := b[p : p+kl]
		p += kl
		vl, end, err := readLen()
		if err != nil {
			return nil, err
		}
		if end || p >= len(b) {
			return nil, blobErrorf("zipmap value length missing at %d", p)
		}
		free := int(b[p])
		p++
		if p+vl+free > len(b) {
			return nil, blobErrorf("zipmap value at %d beyond the blob", p)
		}
		h = append(h, HashField{Field: string(k), Value: string(b[p : p+vl])})
		p += vl + free
	}
}
