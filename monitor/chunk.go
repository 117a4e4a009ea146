package monitor

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
)

// The history stores a series as chunks: one row holds a run of points
// rather than one row per point, which is what lets 100,000 series fit
// (docs/monitoring.md "History"). A chunk's blob is a sequence of
// segments, each standing alone, so two chunks of the same series and
// block concatenate into a valid chunk: a late write appends a segment
// with `data = data || excluded.data` instead of reading the row back.
//
// A raw segment is uvarint(n) followed by n points, each a zigzag varint
// of the timestamp's difference from the previous one (from 0 for the
// first) and the value XORed with the previous value's bits (from 0).
// A minute segment is the same with count (uvarint) after the timestamp
// and three XORed floats: min, max, sum, each against the previous
// entry's own field.
//
// An XORed float is one header byte, lead<<4 | trail, counting the zero
// bytes at either end of the XOR, then the 8 - lead - trail bytes between
// them, most significant first. An unchanged value is one byte (lead 8).
// Whole numbers and slowly moving gauges, which most Redis metrics are,
// leave zero bytes at both ends.

// errCorruptChunk reports a chunk blob that does not decode.
var errCorruptChunk = errors.New("monitor: history: corrupt chunk")

// sample is one raw point.
type sample struct {
	ts    int64
	value float64
}

// rawEncoder appends raw points to a segment under construction.
type rawEncoder struct {
	buf    []byte
	n      int
	prevTS int64
	prev   uint64
}

func (e *rawEncoder) add(ts int64, v float64) {
	e.buf = binary.AppendVarint(e.buf, ts-e.prevTS)
	b := math.Float64bits(v)
	e.buf = appendXOR(e.buf, b^e.prev)
	e.prevTS, e.prev = ts, b
	e.n++
}

// segment returns the finished segment: the count, then the points.
func (e *rawEncoder) segment() []byte {
	out := make([]byte, 0, binary.MaxVarintLen64+len(e.buf))
	out = binary.AppendUvarint(out, uint64(e.n))
	return append(out, e.buf...)
}

func (e *rawEncoder) reset() { *e = rawEncoder{buf: e.buf[:0]} }

// appendXOR writes x with its zero bytes at both ends left out.
func appendXOR(buf []byte, x uint64) []byte {
	if x == 0 {
		return append(buf, 8<<4)
	}
	lead, trail := bits.LeadingZeros64(x)/8, bits.TrailingZeros64(x)/8
	buf = append(buf, byte(lead<<4|trail))
	for i := 7 - lead; i >= trail; i-- {
		buf = append(buf, byte(x>>(8*i)))
	}
	return buf
}

// chunkReader decodes segments with every length checked against the
// bytes left: a damaged file yields errCorruptChunk, never a panic or a
// huge allocation.
type chunkReader struct {
	b   []byte
	err error
}

func (r *chunkReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorruptChunk
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *chunkReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorruptChunk
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *chunkReader) xor() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errCorruptChunk
		return 0
	}
	h := r.b[0]
	lead, trail := int(h>>4), int(h&0x0f)
	if lead == 8 && trail == 0 {
		r.b = r.b[1:]
		return 0
	}
	width := 8 - lead - trail
	if lead > 7 || width <= 0 || len(r.b) < 1+width {
		r.err = errCorruptChunk
		return 0
	}
	var x uint64
	for _, c := range r.b[1 : 1+width] {
		x = x<<8 | uint64(c)
	}
	r.b = r.b[1+width:]
	return x << (8 * trail)
}

// count reads a segment's point count; every point takes at least
// minBytes, which bounds n by what is left.
func (r *chunkReader) count(minBytes int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/minBytes) {
		r.err = errCorruptChunk
	}
	return int(n)
}

// eachRaw calls fn for every point of a raw chunk, in stored order.
func eachRaw(data []byte, fn func(ts int64, v float64)) error {
	r := chunkReader{b: data}
	for len(r.b) > 0 && r.err == nil {
		n := r.count(2)
		var ts int64
		var prev uint64
		for range n {
			ts += r.varint()
			prev ^= r.xor()
			if r.err != nil {
				break
			}
			fn(ts, math.Float64frombits(prev))
		}
	}
	return r.err
}

// minuteEncoder builds a minute segment.
type minuteEncoder struct {
	buf    []byte
	n      int
	prevTS int64
	prev   [3]uint64 // min, max, sum
}

func (e *minuteEncoder) add(b bucket) {
	e.buf = binary.AppendVarint(e.buf, b.ts-e.prevTS)
	e.buf = binary.AppendUvarint(e.buf, uint64(b.count))
	for i, v := range [3]float64{b.min, b.max, b.sum} {
		x := math.Float64bits(v)
		e.buf = appendXOR(e.buf, x^e.prev[i])
		e.prev[i] = x
	}
	e.prevTS = b.ts
	e.n++
}

func (e *minuteEncoder) segment() []byte {
	out := make([]byte, 0, binary.MaxVarintLen64+len(e.buf))
	out = binary.AppendUvarint(out, uint64(e.n))
	return append(out, e.buf...)
}

// eachMinute calls fn for every entry of a minute chunk.
func eachMinute(data []byte, fn func(bucket)) error {
	r := chunkReader{b: data}
	for len(r.b) > 0 && r.err == nil {
		n := r.count(5)
		var ts int64
		var prev [3]uint64
		for range n {
			ts += r.varint()
			c := r.uvarint()
			for i := range prev {
				prev[i] ^= r.xor()
			}
			if r.err != nil {
				break
			}
			if c == 0 || c > math.MaxInt32 {
				r.err = errCorruptChunk
				break
			}
			fn(bucket{ts: ts, count: int64(c), min: math.Float64frombits(prev[0]),
				max: math.Float64frombits(prev[1]), sum: math.Float64frombits(prev[2])})
		}
	}
	return r.err
}
