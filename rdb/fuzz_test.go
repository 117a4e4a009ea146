package rdb_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/r2m-go/r2m/rdb"
)

// FuzzParse feeds arbitrary bytes to the parser, with and without the input
// size, and to everything a key offers (Decode, Dump, DumpFor, Convert). It
// must never panic, and it must not allocate far beyond the input's size.
//
//	go test -fuzz FuzzParse ./rdb/
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.rdb")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, h := range hostile {
		f.Add(h.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		alloc := allocated(func() {
			exerciseParser(rdb.NewParser(bytes.NewReader(data), rdb.Options{Validate: true}))
			exerciseParser(rdb.NewParser(onlyReader{bytes.NewReader(data)}, rdb.Options{MaxLen: 1 << 20}))
		})
		// LZF expands at most 88 times and decoding a compact blob into Go
		// strings costs some 40 bytes an element: a linear bound with room.
		if limit := uint64(8<<20 + 8192*len(data)); alloc > limit {
			t.Fatalf("allocated %d bytes for a %d-byte input (limit %d)", alloc, len(data), limit)
		}
	})
}

func exerciseParser(p *rdb.Parser, err error) {
	if err != nil {
		return
	}
	for {
		rec, err := p.Next()
		if err != nil {
			if err != io.EOF && err.Error() == "" {
				panic("empty error message")
			}
			return
		}
		if k, ok := rec.(*rdb.Key); ok {
			_, _ = k.Decode()
			if _, _, _, err := rdb.ParsePayload(k.Dump()); err != nil {
				panic("our own payload does not parse: " + err.Error())
			}
			for _, target := range []int{1, 7, 9, 10, 12} {
				_, _ = k.DumpFor(target)
			}
		}
	}
}

// FuzzDecodeValue decodes and converts arbitrary value bytes of every type.
func FuzzDecodeValue(f *testing.F) {
	f.Add(byte(rdb.TypeListQuicklist2), []byte{1, 2, 0x0b, 0x0b, 0, 0, 0, 1, 0, 0x81, 'a', 0x02, 0xff})
	f.Add(byte(rdb.TypeStreamListpacks3), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(byte(rdb.TypeHashMetadata), []byte{0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 'f', 1, 'v'})
	f.Fuzz(func(t *testing.T, typ byte, raw []byte) {
		alloc := allocated(func() {
			_, _ = rdb.DecodeValue(rdb.Type(typ), raw)
			for _, target := range []int{1, 7, 9, 10} {
				_, _, _ = rdb.Convert(rdb.Type(typ), raw, target)
			}
		})
		if limit := uint64(8<<20 + 8192*len(raw)); alloc > limit {
			t.Fatalf("allocated %d bytes for a %d-byte value", alloc, len(raw))
		}
	})
}
