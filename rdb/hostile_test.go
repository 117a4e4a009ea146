package rdb_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/r2m-go/r2m/rdb"
)

// rdbFile builds a v10 RDB around body, with a correct trailer.
func rdbFile(body ...[]byte) []byte {
	b := []byte("REDIS0010")
	for _, p := range body {
		b = append(b, p...)
	}
	b = append(b, 0xff)
	return binary.LittleEndian.AppendUint64(b, rdb.CRC64(0, b))
}

// onlyReader hides Len and Stat, so the parser cannot know the input size.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

var (
	keyA  = []byte{0x01, 'a'}
	len32 = func(n uint32) []byte { return binary.BigEndian.AppendUint32([]byte{0x80}, n) }
	len64 = func(n uint64) []byte { return binary.BigEndian.AppendUint64([]byte{0x81}, n) }
)

// hostile inputs: each must fail with the given sentinel, without a panic and
// without allocating more than the input warrants.
var hostile = []struct {
	name string
	data []byte
	want error // with the size known
}{
	{"not RDB", []byte("HELLO0010\xff"), rdb.ErrNotRDB},
	{"non-digit version", []byte("REDIS00x1\xff"), rdb.ErrNotRDB},
	{"version 0", []byte("REDIS0000\xff"), rdb.ErrUnsupportedVersion},
	{"version 13", []byte("REDIS0013\xff"), rdb.ErrUnsupportedVersion},
	{"short header", []byte("REDIS"), rdb.ErrTruncated},
	{"no EOF opcode", []byte("REDIS0010"), rdb.ErrTruncated},
	{"truncated trailer", []byte("REDIS0010\xff\x01\x02"), rdb.ErrTruncated},
	{"bad trailer", []byte("REDIS0010\xff\x01\x02\x03\x04\x05\x06\x07\x08"), rdb.ErrChecksum},
	{"unknown opcode", rdbFile([]byte{200}), rdb.ErrCorrupt},
	{"type 8", rdbFile([]byte{8}, keyA, []byte{0}), rdb.ErrCorrupt},
	{"module type 6", rdbFile([]byte{6}, keyA), rdb.ErrUnsupported},
	{"function pre-GA", rdbFile([]byte{246}), rdb.ErrUnsupported},
	{"huge string", rdbFile([]byte{0}, keyA, len32(1<<31), []byte("abc")), rdb.ErrCorrupt},
	{"huge 64-bit string", rdbFile([]byte{0}, keyA, len64(1<<62)), rdb.ErrCorrupt},
	{"huge key", rdbFile([]byte{0}, len32(1<<30)), rdb.ErrCorrupt},
	{"huge list count", rdbFile([]byte{1}, keyA, len64(1<<60), []byte{1, 'x'}), rdb.ErrCorrupt},
	{"huge zset2 count", rdbFile([]byte{5}, keyA, len32(1<<20)), rdb.ErrCorrupt},
	{"huge hash-metadata count", rdbFile([]byte{24}, keyA, make([]byte, 8), len32(1<<25)), rdb.ErrCorrupt},
	{"LZF bomb", rdbFile([]byte{0}, keyA, []byte{0xc3, 0x02}, len32(1<<30), []byte{0, 'a'}), rdb.ErrCorrupt},
	{"LZF bad back reference", rdbFile([]byte{0}, []byte{0xc3, 0x02, 0x08, 0xe0, 0x05}, keyA), rdb.ErrCorrupt},
	{"unknown length encoding", rdbFile([]byte{0}, keyA, []byte{0x82}), rdb.ErrCorrupt},
	{"unknown string encoding", rdbFile([]byte{0}, keyA, []byte{0xc4}), rdb.ErrCorrupt},
	{"huge quicklist", rdbFile([]byte{18}, keyA, len32(1<<31)), rdb.ErrCorrupt},
	{"bad quicklist container", rdbFile([]byte{18}, keyA, []byte{1, 7, 1, 'x'}), rdb.ErrCorrupt},
	{"huge stream listpacks", rdbFile([]byte{19}, keyA, len32(1<<30)), rdb.ErrCorrupt},
	{"stream node key of 3 bytes", rdbFile([]byte{19}, keyA, []byte{1, 3, 'a', 'b', 'c'}), rdb.ErrCorrupt},
	{"huge stream groups", rdbFile([]byte{15}, keyA, []byte{0, 0, 0, 0}, len32(1<<30)), rdb.ErrCorrupt},
	{"huge stream PEL", rdbFile([]byte{15}, keyA, []byte{0, 0, 0, 0, 1, 1, 'g', 0, 0}, len32(1<<29)), rdb.ErrCorrupt},
	{"huge module id then EOF", rdbFile([]byte{7}, keyA, len64(1<<63), []byte{9}), rdb.ErrCorrupt},
	{"module aux when opcode", rdbFile([]byte{247, 1, 3, 1, 0}), rdb.ErrCorrupt},
	{"huge SELECTDB", rdbFile([]byte{254}, len64(1<<40)), rdb.ErrCorrupt},
}

func TestHostileInputs(t *testing.T) {
	for _, tc := range hostile {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRDB(tc.data, rdb.Options{})
			var re *rdb.Error
			if !errors.Is(err, tc.want) || !errors.As(err, &re) {
				t.Fatalf("size known: %v, want %v", err, tc.want)
			}
			if re.Offset < 0 || re.Offset > int64(len(tc.data)) {
				t.Errorf("error offset %d outside the %d-byte input", re.Offset, len(tc.data))
			}
			// Without the size, the same input fails too (checked lengths
			// become truncation or the MaxLen cap) and allocates little.
			alloc := allocated(func() {
				p, err := rdb.NewParser(onlyReader{bytes.NewReader(tc.data)}, rdb.Options{MaxLen: 1 << 30})
				for err == nil {
					_, err = p.Next()
				}
				if err == io.EOF {
					t.Errorf("size unknown: parsed without error")
				}
			})
			if alloc > 3<<20 {
				t.Errorf("size unknown: allocated %d bytes for a %d-byte input", alloc, len(tc.data))
			}
		})
	}
}

func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestMaxLenOnStreams: on input of unknown size a length beyond MaxLen is
// refused before anything is read for it.
func TestMaxLenOnStreams(t *testing.T) {
	data := rdbFile([]byte{0}, keyA, len32(10_000), make([]byte, 10_000))
	p, err := rdb.NewParser(onlyReader{bytes.NewReader(data)}, rdb.Options{MaxLen: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Next(); !errors.Is(err, rdb.ErrTooLarge) || !strings.Contains(err.Error(), "exceeds the limit of 4096") {
		t.Fatalf("Next: %v, want ErrTooLarge", err)
	}
	// The same input with a big enough cap parses.
	if _, err := parseRDBStream(data, rdb.Options{}); err != nil {
		t.Fatalf("with the default cap: %v", err)
	}
}

// TestBigValueStream: a value much larger than the read size arrives in
// small pieces and is still parsed whole, and its memory follows the input.
func TestBigValueStream(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	data := rdbFile([]byte{0}, keyA, len32(uint32(len(big))), big, []byte{0}, []byte{1, 'b'}, []byte{1, 'c'})
	var p *parsed
	var err error
	alloc := allocated(func() { p, err = parseRDBStream(data, rdb.Options{}) })
	if err != nil {
		t.Fatal(err)
	}
	if v := decode(t, p.key(0, "a")); v != rdb.String(big) {
		t.Fatalf("big value differs")
	}
	wantString(t, p, 0, "b", "c")
	if alloc > 4*uint64(len(data)) {
		t.Errorf("allocated %d bytes for a %d-byte input", alloc, len(data))
	}
}

// parseRDBStream parses data through a reader that hides its size and
// returns at most 1000 bytes per Read.
func parseRDBStream(data []byte, opts rdb.Options) (*parsed, error) {
	out := &parsed{aux: map[string]string{}}
	p, err := rdb.NewParser(onlyReader{&smallReads{data}}, opts)
	if err != nil {
		return out, err
	}
	for {
		rec, err := p.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if k, ok := rec.(*rdb.Key); ok {
			out.keys = append(out.keys, k)
		}
	}
}

type smallReads struct{ b []byte }

func (s *smallReads) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 1000)], s.b)
	s.b = s.b[n:]
	return n, nil
}

// TestStreamedFixturesEqual: every fixture parses the same whether the
// parser knows the size or reads it 1000 bytes at a time.
func TestStreamedFixturesEqual(t *testing.T) {
	for name := range fixtureFacts {
		data := readFixture(t, name)
		a, errA := parseRDB(data, rdb.Options{})
		b, errB := parseRDBStream(data, rdb.Options{})
		if errA != nil || errB != nil || len(a.keys) != len(b.keys) {
			t.Fatalf("%s: %v / %v, %d / %d keys", name, errA, errB, len(a.keys), len(b.keys))
		}
		for i := range a.keys {
			if !bytes.Equal(a.keys[i].Value, b.keys[i].Value) || a.keys[i].Key != b.keys[i].Key {
				t.Fatalf("%s: key %d differs", name, i)
			}
		}
	}
}

// TestCorruptBlobs: Validate reports blobs that frame correctly but are
// broken inside, which the streaming pass alone cannot see.
func TestCorruptBlobs(t *testing.T) {
	lp := []byte{0x0b, 0, 0, 0, 2, 0, 0x81, 'a', 0x02, 0x01, 0x01, 0xff} // listpack ["a", 1], but total 11 != 12
	cases := map[string][]byte{
		"listpack total":   rdbFile([]byte{20}, keyA, []byte{byte(len(lp))}, lp),
		"intset encoding":  rdbFile([]byte{11}, keyA, []byte{12, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0}),
		"ziplist too long": rdbFile([]byte{10}, keyA, []byte{11, 200, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0xff}),
		"intset unsorted":  rdbFile([]byte{11}, keyA, []byte{12, 2, 0, 0, 0, 2, 0, 0, 0, 5, 0, 4, 0}),
	}
	for name, data := range cases {
		if _, err := parseRDB(data, rdb.Options{}); err != nil {
			t.Errorf("%s: the framing pass failed: %v", name, err)
		}
		if _, err := parseRDB(data, rdb.Options{Validate: true}); !errors.Is(err, rdb.ErrCorrupt) {
			t.Errorf("%s: Validate: %v, want ErrCorrupt", name, err)
		}
	}
}
