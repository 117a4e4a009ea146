package rdb

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"strconv"
)

// DefaultMaxLen is the bound on any single declared length (and count) when
// the input size is unknown: Redis's proto-max-bulk-len default.
const DefaultMaxLen = 512 << 20

// Options configures a [Parser]. The zero value is ready to use.
type Options struct {
	// Size is the input length in bytes, when the caller knows it (a $len
	// replication framing, a spool file). Zero means: ask the reader (the
	// remaining bytes of a regular *os.File, or Len() of a *bytes.Reader,
	// *strings.Reader or *bytes.Buffer), and otherwise treat the size as
	// unknown. With a known size every declared length is checked against
	// the bytes left before anything is allocated for it.
	Size int64
	// MaxLen bounds any single declared length or item count when the size is
	// unknown. Zero means DefaultMaxLen (512 MiB). Memory grows only as bytes
	// actually arrive, so a bogus length costs at most the input itself, but a
	// cap stops a hostile stream from making the parser buffer it all.
	MaxLen int64
	// Validate decodes every value as it is parsed (see [Key.Decode]), so
	// that a corrupt listpack, ziplist, intset or stream is reported by Next
	// rather than by whoever uses the raw bytes later.
	Validate bool
}

// Record is one item of an RDB file: *Aux, *SelectDB, *ResizeDB, *SlotInfo,
// *ModuleAux, *Function or *Key.
type Record interface{ record() }

// Aux is an auxiliary field (opcode AUX): "redis-ver", "ctime", "repl-id",
// "repl-offset", "lua" (a script, 6.2 and older), and so on. Integer-encoded
// values come out as decimal text.
type Aux struct{ Key, Value string }

// SelectDB starts the keys of database DB.
type SelectDB struct{ DB int }

// ResizeDB is the size hint that follows SelectDB.
type ResizeDB struct{ Keys, Expires uint64 }

// SlotInfo precedes the first key of a slot in RDB 12 files written in
// cluster mode.
type SlotInfo struct{ Slot, Keys, Expires uint64 }

// ModuleAux is a module's auxiliary data (opcode MODULE_AUX).
type ModuleAux struct {
	// ModuleID holds the module type's 9-character name and its encoding
	// version; see [ModuleName] and [ModuleEncVer].
	ModuleID uint64
	// When is 1 when the data was saved before the keyspace, 2 after it.
	When uint64
	// Raw is the module's opcode-annotated data through its EOF opcode.
	Raw []byte
}

// Function is a function library (opcode FUNCTION2): its source code,
// starting with a "#!<engine> name=<library>" line. It is loaded on a target
// with FUNCTION LOAD.
type Function struct{ Code string }

// NoExpiry is the ExpireAt of a key without a time to live, and the Idle and
// Freq of a key saved without LRU or LFU information.
const NoExpiry = -1

// Key is one key and its value.
type Key struct {
	DB  int
	Key string
	// Type is the value's type byte, which names its encoding.
	Type Type
	// ExpireAt is the absolute expiry in Unix milliseconds, or NoExpiry.
	ExpireAt int64
	// Idle is the LRU idle time in seconds (maxmemory-policy *-lru), or -1.
	Idle int64
	// Freq is the LFU counter (maxmemory-policy *-lfu), or -1.
	Freq int
	// Value holds the exact bytes Redis's rdbSaveObject wrote for the value:
	// the body of a DUMP payload. See [Key.Dump].
	Value []byte
	// Version is the RDB version of the file the key came from.
	Version int
	// Offset is where the key's type byte starts in the input; ValueOffset
	// where its value starts.
	Offset, ValueOffset int64
}

func (*Aux) record()       {}
func (*SelectDB) record()  {}
func (*ResizeDB) record()  {}
func (*SlotInfo) record()  {}
func (*ModuleAux) record() {}
func (*Function) record()  {}
func (*Key) record()       {}

// Parser reads the records of an RDB file one at a time. It holds at most one
// record in memory. It is not safe for concurrent use.
type Parser struct {
	r        reader
	validate bool
	version  int
	db       int
	expire   int64 // key-prefix state: applies to the next key only
	idle     int64
	freq     int
	stored   uint64 // the trailer's CRC64
	err      error  // sticky; io.EOF after the trailer
}

// NewParser reads and checks the header ("REDIS" and a four-digit version
// from 1 to MaxVersion). The parser may read ahead of the record it returns,
// up to the end of the input: give it a reader that ends where the RDB ends.
func NewParser(r io.Reader, opts Options) (*Parser, error) {
	size := opts.Size
	if size <= 0 {
		size = sizeOf(r)
	}
	maxLen := opts.MaxLen
	if maxLen <= 0 {
		maxLen = DefaultMaxLen
	}
	p := &Parser{
		r:        reader{src: r, limit: size, maxLen: maxLen},
		validate: opts.Validate,
		expire:   NoExpiry, idle: -1, freq: -1,
	}
	hdr, err := p.r.take(9)
	if err != nil {
		return nil, withContext(err, "reading the 9-byte header")
	}
	if !bytes.HasPrefix(hdr, []byte("REDIS")) {
		return nil, errAt(0, ErrNotRDB, "not an RDB file: header %q does not start with \"REDIS\"", hdr)
	}
	v, err := strconv.Atoi(string(hdr[5:]))
	if err != nil || v < 0 {
		return nil, errAt(5, ErrNotRDB, "not an RDB file: version %q is not a number", hdr[5:])
	}
	if v < 1 || v > MaxVersion {
		return nil, errAt(5, ErrUnsupportedVersion, "unsupported RDB version %d (this parser reads versions 1 to %d)", v, MaxVersion)
	}
	p.version = v
	return p, nil
}

// sizeOf returns the bytes left in r when r can tell, else -1.
func sizeOf(r io.Reader) int64 {
	switch r := r.(type) {
	case interface{ Len() int }: // *bytes.Reader, *strings.Reader, *bytes.Buffer
		return int64(r.Len())
	case *os.File:
		st, err := r.Stat()
		if err != nil || !st.Mode().IsRegular() {
			return -1
		}
		pos, err := r.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		return st.Size() - pos
	}
	return -1
}

// Version returns the file's RDB version.
func (p *Parser) Version() int { return p.version }

// Offset returns how many input bytes the records returned so far span.
func (p *Parser) Offset() int64 { return p.r.offset() }

// Checksum returns the CRC64 stored in the trailer, once Next has returned
// io.EOF. Zero means the file was saved without a checksum (or is older than
// RDB 5), and nothing was checked.
func (p *Parser) Checksum() uint64 { return p.stored }

// Next returns the next record. After the EOF opcode it verifies the CRC64
// trailer and returns io.EOF. Any other error is an [*Error] and is returned
// again by every later call.
func (p *Parser) Next() (Record, error) {
	if p.err != nil {
		return nil, p.err
	}
	rec, err := p.next()
	if err != nil {
		p.err = err
	}
	return rec, err
}

func (p *Parser) next() (Record, error) {
	r := &p.r
	for {
		r.beginRecord()
		at := r.offset()
		op, err := r.byte1()
		if err != nil {
			return nil, withContext(err, "reading the next opcode (the input has no EOF opcode)")
		}
		switch op {
		case opEOF:
			return nil, p.finish()
		case opSelectDB:
			db, err := r.readPlainLen("database number")
			if err != nil {
				return nil, withContext(err, "SELECTDB at offset %d", at)
			}
			if db > math.MaxInt32 {
				return nil, errAt(at, ErrCorrupt, "SELECTDB: database number %d is out of range", db)
			}
			p.db = int(db)
			return &SelectDB{DB: p.db}, nil
		case opResizeDB:
			var rs ResizeDB
			if rs.Keys, err = r.readPlainLen("RESIZEDB keys"); err == nil {
				rs.Expires, err = r.readPlainLen("RESIZEDB expires")
			}
			if err != nil {
				return nil, withContext(err, "RESIZEDB at offset %d", at)
			}
			return &rs, nil
		case opSlotInfo:
			var si SlotInfo
			if si.Slot, err = r.readPlainLen("SLOT_INFO slot"); err == nil {
				if si.Keys, err = r.readPlainLen("SLOT_INFO keys"); err == nil {
					si.Expires, err = r.readPlainLen("SLOT_INFO expires")
				}
			}
			if err != nil {
				return nil, withContext(err, "SLOT_INFO at offset %d", at)
			}
			return &si, nil
		case opAux:
			k, err := r.readString()
			if err != nil {
				return nil, withContext(err, "AUX field name at offset %d", at)
			}
			key := string(k)
			v, err := r.readString()
			if err != nil {
				return nil, withContext(err, "AUX field %s", quoteKey(key))
			}
			return &Aux{Key: key, Value: string(v)}, nil
		case opExpire: // seconds, int32
			v, err := r.u32le()
			if err != nil {
				return nil, withContext(err, "EXPIRETIME at offset %d", at)
			}
			p.expire = int64(int32(v)) * 1000
		case opExpireMs: // little-endian from RDB 9; earlier files were written in host order, which was little-endian in practice
			v, err := r.u64le()
			if err != nil {
				return nil, withContext(err, "EXPIRETIME_MS at offset %d", at)
			}
			p.expire = int64(v)
		case opIdle:
			v, err := r.readPlainLen("LRU idle time")
			if err != nil {
				return nil, withContext(err, "IDLE at offset %d", at)
			}
			p.idle = int64(min(v, math.MaxInt64))
		case opFreq:
			v, err := r.byte1()
			if err != nil {
				return nil, withContext(err, "FREQ at offset %d", at)
			}
			p.freq = int(v)
		case opRAMLRU: // Redis Enterprise; carries a length, ignored as librdb does
			if _, err := r.readPlainLen("RAM_LRU value"); err != nil {
				return nil, withContext(err, "RAM_LRU (Redis Enterprise opcode 107) at offset %d", at)
			}
		case opModuleAux:
			m, err := p.moduleAux(at)
			if err != nil {
				return nil, withContext(err, "MODULE_AUX at offset %d", at)
			}
			return m, nil
		case opFunction2:
			code, err := r.readString()
			if err != nil {
				return nil, withContext(err, "FUNCTION2 at offset %d", at)
			}
			return &Function{Code: string(code)}, nil
		case opFunction:
			return nil, errAt(at, ErrUnsupported, "opcode 246 is the function format of Redis 7.0 release candidates, which Redis 7.0 GA refuses too")
		default:
			t := Type(op)
			if t == TypeModulePreGA {
				return nil, errAt(at, ErrUnsupported, "value type 6 is the module format of Redis 4.0 release candidates, which no GA Redis loads")
			}
			if !t.Valid() {
				return nil, errAt(at, ErrCorrupt, "unknown opcode or value type %d", op)
			}
			return p.key(at, t)
		}
	}
}

func (p *Parser) key(at int64, t Type) (*Key, error) {
	r := &p.r
	kb, err := r.readString()
	if err != nil {
		return nil, withContext(err, "key name of a %s at offset %d", t, at)
	}
	k := &Key{
		DB: p.db, Key: string(kb), Type: t,
		ExpireAt: p.expire, Idle: p.idle, Freq: p.freq,
		Version: p.version, Offset: at, ValueOffset: r.offset(),
	}
	p.expire, p.idle, p.freq = NoExpiry, -1, -1
	if err := r.skipValue(t); err != nil {
		return nil, withContext(err, "key %s (%s) at offset %d", quoteKey(k.Key), t, at)
	}
	raw := r.since(k.ValueOffset)
	if len(raw) <= maxRead {
		raw = bytes.Clone(raw)
	} else { // hand the buffer over instead of copying a big value
		r.pinned = true
	}
	k.Value = raw
	if p.validate {
		if _, err := k.Decode(); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func (p *Parser) moduleAux(at int64) (*ModuleAux, error) {
	r := &p.r
	id, err := r.readPlainLen("module id")
	if err != nil {
		return nil, err
	}
	op, err := r.readPlainLen("module 'when' opcode")
	if err != nil {
		return nil, err
	}
	if op != moduleOpUint {
		return nil, errAt(at, ErrCorrupt, "module %s: 'when' opcode is %d, want %d (UINT)", ModuleName(id), op, moduleOpUint)
	}
	when, err := r.readPlainLen("module 'when'")
	if err != nil {
		return nil, err
	}
	start := r.offset()
	if err := r.skipModuleBody(); err != nil {
		return nil, withContext(err, "module %s", ModuleName(id))
	}
	return &ModuleAux{ModuleID: id, When: when, Raw: bytes.Clone(r.since(start))}, nil
}

// finish reads and verifies the trailer after the EOF opcode.
func (p *Parser) finish() error {
	r := &p.r
	r.beginRecord() // the CRC covers everything through the EOF opcode
	if p.version < 5 {
		return io.EOF
	}
	at := r.offset()
	b, err := r.take(8)
	if err != nil {
		return withContext(err, "reading the 8-byte CRC64 trailer after the EOF opcode")
	}
	p.stored = binary.LittleEndian.Uint64(b)
	if p.stored != 0 && p.stored != r.crc {
		return errAt(at, ErrChecksum, "checksum mismatch: expected %016x (the CRC64 of the %d bytes before the trailer), got %016x (the trailer)", r.crc, at, p.stored)
	}
	return io.EOF
}

// quoteKey quotes a key for an error message, shortened if long.
func quoteKey(k string) string {
	if len(k) > 64 {
		return strconv.Quote(k[:64]) + "..."
	}
	return strconv.Quote(k)
}

// Parse calls fn for every record of the RDB in r, then returns nil after a
// verified trailer, or the first error from the parser or fn.
func Parse(r io.Reader, opts Options, fn func(Record) error) error {
	p, err := NewParser(r, opts)
	if err != nil {
		return err
	}
	for {
		rec, err := p.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}
