package rdb

import (
	"encoding/binary"
	"io"
	"math"
)

const (
	minRead = 32 << 10 // smallest read from the source
	maxRead = 1 << 20  // largest read from the source
)

// reader is the byte source of the parser and of the value decoders. Over a
// stream (src != nil) it buffers what the current record needs; over a
// complete value (src == nil) buf is the whole input.
//
// Every declared length is checked before anything is allocated for it:
// against the bytes left when the input size is known (limit >= 0), else
// against maxLen. The buffer grows only as bytes arrive, in reads that double
// with the record (minRead to maxRead), so a length that promises more than
// the input holds costs at most about twice what actually arrived.
//
// Slices returned by take and readString are views into buf, valid until the
// next call that may read more (fill): callers copy what they keep.
type reader struct {
	src    io.Reader
	srcErr error // sticky error from src, io.EOF included

	buf      []byte
	pos      int   // next byte to consume
	recStart int   // start of the current record in buf; bytes before it are in crc and may be dropped
	base     int64 // input offset of buf[0]
	limit    int64 // input offset where the input ends, or -1 when unknown
	maxLen   int64 // bound on any declared length when limit is unknown
	crc      uint64
	pinned   bool // buf's array backs a value handed to a caller: never overwrite it
}

func newSliceReader(b []byte, base int64) *reader {
	return &reader{buf: b, base: base, limit: base + int64(len(b)), maxLen: int64(len(b))}
}

func (r *reader) offset() int64 { return r.base + int64(r.pos) }

// beginRecord adds the bytes consumed so far to the CRC and lets fill drop
// them.
func (r *reader) beginRecord() {
	r.crc = CRC64(r.crc, r.buf[r.recStart:r.pos])
	r.recStart = r.pos
}

// since returns a view of the bytes from input offset off (inside the current
// record) to the current position.
func (r *reader) since(off int64) []byte {
	i := int(off - r.base)
	return r.buf[i:r.pos:r.pos]
}

// fill makes at least n unconsumed bytes available.
func (r *reader) fill(n int) error {
	if len(r.buf)-r.pos >= n {
		return nil
	}
	if r.src == nil {
		return r.truncated(n)
	}
	zeroReads := 0
	for len(r.buf)-r.pos < n {
		if r.srcErr != nil {
			if r.srcErr == io.EOF {
				return r.truncated(n)
			}
			return &Error{Offset: r.base + int64(len(r.buf)), Msg: "reading the input: " + r.srcErr.Error(), Err: r.srcErr}
		}
		want := n - (len(r.buf) - r.pos)
		if r.limit >= 0 && r.base+int64(len(r.buf))+int64(want) > r.limit {
			return r.truncated(n)
		}
		// Read in chunks that double with the record's size: a length that
		// promises more than arrives costs no more than twice what arrived.
		step := min(max(len(r.buf)-r.recStart, minRead), maxRead)
		if r.limit >= 0 {
			step = int(min(int64(step), r.limit-r.base-int64(len(r.buf))))
		}
		if cap(r.buf)-len(r.buf) < minRead/2 {
			r.makeRoom(step)
		}
		m, err := r.src.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+m]
		if err != nil {
			r.srcErr = err
		}
		if m == 0 && err == nil {
			if zeroReads++; zeroReads > 100 {
				r.srcErr = io.ErrNoProgress
			}
		}
	}
	return nil
}

// makeRoom drops the bytes before the current record and makes room for step
// more bytes, in place unless a caller holds a view of the array.
func (r *reader) makeRoom(step int) {
	keep := r.buf[r.recStart:]
	need := len(keep) + step
	if !r.pinned && cap(r.buf) >= need {
		n := copy(r.buf, keep)
		r.buf = r.buf[:n]
	} else {
		nb := make([]byte, len(keep), max(need, 2*len(keep), minRead))
		copy(nb, keep)
		r.buf, r.pinned = nb, false
	}
	r.base += int64(r.recStart)
	r.pos -= r.recStart
	r.recStart = 0
}

func (r *reader) truncated(n int) error {
	have := len(r.buf) - r.pos
	return errAt(r.base+int64(len(r.buf)), ErrTruncated, "input ends %d bytes short (%d more needed, %d left)", n-have, n, have)
}

// left returns how many input bytes remain, or -1 when unknown.
func (r *reader) left() int64 {
	if r.limit < 0 {
		return -1
	}
	return r.limit - r.offset()
}

// checkLen verifies that a declared length n of what can be satisfied.
func (r *reader) checkLen(at int64, n uint64, what string) error {
	if left := r.left(); left >= 0 {
		if n > uint64(left) {
			return errAt(at, ErrCorrupt, "%s %d exceeds the %d bytes left", what, n, left)
		}
		return nil
	}
	if n > uint64(r.maxLen) {
		return errAt(at, ErrTooLarge, "%s %d exceeds the limit of %d", what, n, r.maxLen)
	}
	return nil
}

// checkCount verifies that n items of at least minSize bytes each can follow.
func (r *reader) checkCount(at int64, n uint64, minSize int, what string) error {
	if left := r.left(); left >= 0 {
		if n > uint64(left)/uint64(minSize) {
			return errAt(at, ErrCorrupt, "%d %s cannot fit in the %d bytes left", n, what, left)
		}
		return nil
	}
	if n > uint64(r.maxLen) {
		return errAt(at, ErrTooLarge, "%d %s exceeds the limit of %d", n, what, r.maxLen)
	}
	return nil
}

func (r *reader) byte1() (byte, error) {
	if r.pos >= len(r.buf) {
		if err := r.fill(1); err != nil {
			return 0, err
		}
	}
	b := r.buf[r.pos]
	r.pos++
	return b, nil
}

// take consumes n bytes and returns a view of them.
func (r *reader) take(n int) ([]byte, error) {
	if err := r.fill(n); err != nil {
		return nil, err
	}
	b := r.buf[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return b, nil
}

// takeLen consumes a declared length n of bytes after checking it.
func (r *reader) takeLen(at int64, n uint64, what string) ([]byte, error) {
	if err := r.checkLen(at, n, what); err != nil {
		return nil, err
	}
	if n > math.MaxInt {
		return nil, errAt(at, ErrCorrupt, "%s %d is too large", what, n)
	}
	return r.take(int(n))
}

func (r *reader) u64le() (uint64, error) {
	b, err := r.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (r *reader) u32le() (uint32, error) {
	b, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}
