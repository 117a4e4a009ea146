// Package rdb reads Redis RDB files, versions 1 to 12 (Redis 1.x to 8.4), as a
// stream of records, and builds DUMP payloads from the values it finds.
//
// # Reading
//
// [NewParser] checks the header; [Parser.Next] returns one record at a time
// and, after the EOF opcode, verifies the CRC64 trailer and returns io.EOF:
//
//	p, err := rdb.NewParser(f, rdb.Options{})
//	if err != nil {
//		return err
//	}
//	for {
//		rec, err := p.Next()
//		if err == io.EOF {
//			break // the checksum matched (or the file has none)
//		}
//		if err != nil {
//			return err // an *rdb.Error naming the offset and what was wrong
//		}
//		if k, ok := rec.(*rdb.Key); ok {
//			restore(k.DB, k.Key, k.ExpireAt, k.Dump())
//		}
//	}
//
// A [Key] carries its database, absolute expiry, LRU idle time or LFU
// counter, its type byte, and the exact bytes Redis's rdbSaveObject wrote for
// the value. Those bytes are what a DUMP payload holds, so [Key.Dump] turns
// them into a payload that RESTORE accepts and that equals, byte for byte,
// what DUMP returns on the source. [Key.Decode] gives a typed view of the
// value ([String], [List], [Set], [ZSet], [Hash], [*Stream], [*Module]) on
// demand, checking every listpack, ziplist, intset, zipmap and stream node in
// depth.
//
// The parser reads every opcode (AUX, SELECTDB, RESIZEDB, EXPIRETIME,
// EXPIRETIME_MS, IDLE, FREQ, MODULE_AUX, FUNCTION2, SLOT_INFO, EOF, and the
// Redis Enterprise RAM_LRU hint) and every value type 0 to 25, except the two
// formats of release candidates that GA Redis refuses as well: module type 6
// (4.0 RCs) and function opcode 246 (7.0 RCs); those give ErrUnsupported.
//
// # Older targets
//
// A payload restores only on a server whose RDB version is at least the
// payload's footer and that knows its type byte. [Key.DumpFor] and [Convert]
// take the target's RDB version (Redis 7.0 reads 10; 5.0 to 6.2 read 9) and
// rewrite what the target cannot load: listpack, ziplist, intset and
// quicklist encodings become the plain list, set, sorted-set (5, or 3 before
// RDB 8) and hash types, and newer stream encodings drop the metadata that
// older ones lack. Hash field TTLs and module values cannot be carried to a
// target that lacks them: that is ErrNotConvertible.
//
// # Hostile input
//
// Every declared length and count is checked against the bytes left before
// anything is allocated for it: the input size is taken from [Options.Size],
// or from the reader (a regular *os.File, a *bytes.Reader, ...). When the size
// is unknown (a network stream), lengths are capped by [Options.MaxLen], and
// the buffer grows only as bytes actually arrive. LZF lengths are checked
// against LZF's maximal expansion. No input makes the package panic; errors
// are [*Error] values that wrap ErrCorrupt, ErrTruncated, ErrChecksum,
// ErrUnsupportedVersion and the other sentinels in errors.go.
package rdb
