package rdb

import (
	"encoding/binary"
	"strconv"
)

// String encodings of the special length form 11xxxxxx (rdb.h RDB_ENC_*).
const (
	encInt8  = 0
	encInt16 = 1
	encInt32 = 2
	encLZF   = 3
)

// lzfMaxRatio bounds the expansion of LZF: the longest back reference is
// three input bytes for 264 output bytes. A declared uncompressed length
// beyond clen*lzfMaxRatio cannot be real, so it is refused before anything is
// allocated for it.
const lzfMaxRatio = 88

// readLen reads an RDB length (rdbLoadLenByRef). When enc is true the value
// is not a length but the special string encoding that follows.
func (r *reader) readLen() (n uint64, enc bool, err error) {
	at := r.offset()
	b, err := r.byte1()
	if err != nil {
		return 0, false, err
	}
	switch b >> 6 {
	case 0:
		return uint64(b & 0x3f), false, nil
	case 1:
		b2, err := r.byte1()
		if err != nil {
			return 0, false, err
		}
		return uint64(b&0x3f)<<8 | uint64(b2), false, nil
	case 2:
		switch b {
		case 0x80:
			p, err := r.take(4)
			if err != nil {
				return 0, false, err
			}
			return uint64(binary.BigEndian.Uint32(p)), false, nil
		case 0x81:
			p, err := r.take(8)
			if err != nil {
				return 0, false, err
			}
			return binary.BigEndian.Uint64(p), false, nil
		}
		return 0, false, errAt(at, ErrCorrupt, "unknown length encoding 0x%02x", b)
	default:
		return uint64(b & 0x3f), true, nil
	}
}

// readPlainLen reads a length that must not be a special encoding.
func (r *reader) readPlainLen(what string) (uint64, error) {
	at := r.offset()
	n, enc, err := r.readLen()
	if err != nil {
		return 0, err
	}
	if enc {
		return 0, errAt(at, ErrCorrupt, "%s: encoded-string marker 0x%02x where a length belongs", what, 0xc0|n)
	}
	return n, nil
}

// readCount reads a number of items of at least minSize bytes each and checks
// that they can fit in the input.
func (r *reader) readCount(minSize int, what string) (uint64, error) {
	at := r.offset()
	n, err := r.readPlainLen("number of " + what)
	if err != nil {
		return 0, err
	}
	return n, r.checkCount(at, n, minSize, what)
}

// readString reads an RDB string (rdbGenericLoadStringObject): plain, an
// integer, or LZF-compressed. A plain string is returned as a view of the
// buffer; integers and decompressed strings are new slices.
func (r *reader) readString() ([]byte, error) {
	at := r.offset()
	n, enc, err := r.readLen()
	if err != nil {
		return nil, err
	}
	if !enc {
		return r.takeLen(at, n, "string length")
	}
	switch n {
	case encInt8, encInt16, encInt32:
		v, err := r.readIntEnc(n)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, v, 10), nil
	case encLZF:
		clen, ulen, err := r.lzfHeader(at)
		if err != nil {
			return nil, err
		}
		in, err := r.take(int(clen))
		if err != nil {
			return nil, err
		}
		out, err := lzfDecompress(in, int(ulen))
		if err != nil {
			return nil, errAt(at, ErrCorrupt, "LZF string: %v", err)
		}
		return out, nil
	}
	return nil, errAt(at, ErrCorrupt, "unknown string encoding %d", n)
}

// skipString consumes an RDB string without decoding it.
func (r *reader) skipString() error {
	at := r.offset()
	n, enc, err := r.readLen()
	if err != nil {
		return err
	}
	if !enc {
		_, err := r.takeLen(at, n, "string length")
		return err
	}
	switch n {
	case encInt8, encInt16, encInt32:
		_, err := r.readIntEnc(n)
		return err
	case encLZF:
		clen, _, err := r.lzfHeader(at)
		if err != nil {
			return err
		}
		_, err = r.take(int(clen))
		return err
	}
	return errAt(at, ErrCorrupt, "unknown string encoding %d", n)
}

func (r *reader) readIntEnc(enc uint64) (int64, error) {
	size := 1 << enc // 1, 2 or 4 bytes, little-endian
	p, err := r.take(size)
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return int64(int8(p[0])), nil
	case 2:
		return int64(int16(binary.LittleEndian.Uint16(p))), nil
	default:
		return int64(int32(binary.LittleEndian.Uint32(p))), nil
	}
}

// lzfHeader reads and checks the compressed and uncompressed lengths.
func (r *reader) lzfHeader(at int64) (clen, ulen uint64, err error) {
	if clen, err = r.readPlainLen("LZF compressed length"); err != nil {
		return 0, 0, err
	}
	if ulen, err = r.readPlainLen("LZF uncompressed length"); err != nil {
		return 0, 0, err
	}
	if err := r.checkLen(at, clen, "LZF compressed length"); err != nil {
		return 0, 0, err
	}
	if clen == 0 || ulen == 0 || ulen > clen*lzfMaxRatio {
		return 0, 0, errAt(at, ErrCorrupt, "LZF lengths %d compressed, %d uncompressed are impossible", clen, ulen)
	}
	if ulen > uint64(max(r.maxLen, 512<<20)) {
		return 0, 0, errAt(at, ErrTooLarge, "LZF uncompressed length %d exceeds the limit", ulen)
	}
	return clen, ulen, nil
}

type lzfError string

func (e lzfError) Error() string { return string(e) }

// lzfDecompress expands LZF data (redis src/lzf_d.c) into exactly outLen
// bytes.
func lzfDecompress(in []byte, outLen int) ([]byte, error) {
	out := make([]byte, 0, outLen)
	i := 0
	for i < len(in) {
		ctrl := int(in[i])
		i++
		if ctrl < 32 { // literal run of ctrl+1 bytes
			n := ctrl + 1
			if i+n > len(in) {
				return nil, lzfError("literal run beyond the input")
			}
			if len(out)+n > outLen {
				return nil, lzfError("output longer than declared")
			}
			out = append(out, in[i:i+n]...)
			i += n
			continue
		}
		n := ctrl >> 5
		if n == 7 {
			if i >= len(in) {
				return nil, lzfError("back reference length beyond the input")
			}
			n += int(in[i])
			i++
		}
		if i >= len(in) {
			return nil, lzfError("back reference offset beyond the input")
		}
		ref := len(out) - (ctrl&0x1f)<<8 - int(in[i]) - 1
		i++
		n += 2
		if ref < 0 {
			return nil, lzfError("back reference before the start of the output")
		}
		if len(out)+n > outLen {
			return nil, lzfError("output longer than declared")
		}
		if ref+n <= len(out) {
			out = append(out, out[ref:ref+n]...)
		} else {
			for k := range n { // overlapping copy repeats a pattern
				out = append(out, out[ref+k])
			}
		}
	}
	if len(out) != outLen {
		return nil, lzfError("output " + strconv.Itoa(len(out)) + " bytes, declared " + strconv.Itoa(outLen))
	}
	return out, nil
}
