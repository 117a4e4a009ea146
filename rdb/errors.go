package rdb

import (
	"errors"
	"fmt"
)

// Errors that callers branch on with errors.Is. Every error the parser
// returns is an [*Error] that wraps one of them.
var (
	// ErrUnsupportedVersion: the header names an RDB version this package
	// does not read (newer than [MaxVersion], or not a version at all).
	ErrUnsupportedVersion = errors.New("rdb: unsupported RDB version")
	// ErrNotRDB: the input does not start with "REDIS" and four digits.
	ErrNotRDB = errors.New("rdb: not an RDB file")
	// ErrChecksum: the CRC64 trailer does not match the data.
	ErrChecksum = errors.New("rdb: checksum mismatch")
	// ErrTruncated: the input ended inside an item.
	ErrTruncated = errors.New("rdb: unexpected end of input")
	// ErrCorrupt: the bytes do not form a valid item (a length beyond the
	// input, an unknown encoding, an inconsistent blob).
	ErrCorrupt = errors.New("rdb: corrupt data")
	// ErrTooLarge: a length exceeds [Options.MaxLen] on input of unknown size.
	ErrTooLarge = errors.New("rdb: length exceeds the configured limit")
	// ErrUnsupported: a valid but unsupported item: the module type of the
	// 4.0 release candidates (6), or the function format of the 7.0 release
	// candidates (opcode 246). Redis GA versions refuse both as well.
	ErrUnsupported = errors.New("rdb: unsupported item")
	// ErrNotConvertible: a value cannot be expressed in the types an older
	// target knows without losing information (module values, hash field
	// TTLs, streams before RDB 9).
	ErrNotConvertible = errors.New("rdb: value cannot be converted for the target version")
)

// Error describes a problem at a byte offset of the input.
type Error struct {
	// Offset is the byte offset, from the start of the input (or of the value
	// for [DecodeValue] and [Convert] without a key), where the bad item starts.
	Offset int64
	// Msg says what was being read and what was wrong with it.
	Msg string
	// Err is one of the package's sentinel errors.
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("rdb: at offset %d: %s", e.Offset, e.Msg)
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

func errAt(off int64, sentinel error, format string, args ...any) *Error {
	return &Error{Offset: off, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

// withContext prefixes what the parser was doing ("key \"k\" (list-quicklist-2)")
// to the message of an *Error, keeping its offset and sentinel.
func withContext(err error, format string, args ...any) error {
	var e *Error
	if errors.As(err, &e) {
		return &Error{Offset: e.Offset, Msg: fmt.Sprintf(format, args...) + ": " + e.Msg, Err: e.Err}
	}
	return err
}
