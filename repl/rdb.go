package repl

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

const eofMarkLen = 40

// RDB returns the RDB payload of a full resynchronization as a reader that
// ends (io.EOF) exactly where the payload ends, whichever framing the source
// used: "$<len>" (disk-based) or "$EOF:<mark>" (diskless), after any
// keep-alive newlines. The first REPLCONF ACK goes out when the reader
// reports io.EOF or Next is called after the payload's last byte, so spool
// the payload to disk first: a diskless source sends no stream before that
// ACK. After a partial resynchronization the reader returns ErrNoRDB.
func (c *Conn) RDB() io.Reader {
	if c.rdb == nil {
		return errReader{ErrNoRDB}
	}
	return c.rdb
}

// RDBSize returns the payload size announced by "$<len>" framing, or -1 for
// diskless "$EOF:" framing or while the framing is not known yet (before the
// first Read of RDB).
func (c *Conn) RDBSize() int64 {
	if c.rdb == nil {
		return -1
	}
	return c.rdb.size
}

// Diskless reports whether the source sent the RDB with "$EOF:" framing, as
// it does with repl-diskless-sync yes. Valid after the first Read of RDB.
func (c *Conn) Diskless() bool { return c.rdb != nil && c.rdb.mark != nil }

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// rdbReader delivers the payload. With the EOF framing it holds back the last
// 40 bytes it has read until it knows they are not the end mark; the source
// sends nothing after the mark before the first ACK, so the mark is always at
// the end of what has arrived (readSyncBulkPayload checks it the same way).
type rdbReader struct {
	c       *Conn
	started bool
	size    int64  // "$<len>" framing: the payload's size; -1 otherwise
	left    int64  // "$<len>" framing: bytes still to read
	mark    []byte // "$EOF:" framing: the 40-byte end mark
	hold    []byte // "$EOF:" framing: the last bytes read, not yet delivered
	scratch []byte
	done    bool  // every payload byte was read from the socket
	err     error // sticky
}

func (r *rdbReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if !r.started {
		if err := r.header(); err != nil {
			r.err = err
			return 0, err
		}
		r.started = true
	}
	if r.done {
		if err := r.c.startAcking(); err != nil {
			r.err = err
			return 0, err
		}
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var err error
	if r.mark == nil {
		n, err = r.c.br.Read(p[:min(int64(len(p)), r.left)])
		r.left -= int64(n)
		r.done = r.left == 0
	} else {
		n, err = r.readMarked(p)
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		r.err = fmt.Errorf("repl: reading the RDB: %w", r.c.readErr(err))
		if n == 0 {
			return 0, r.err
		}
	}
	return n, nil
}

// header reads "$<len>" or "$EOF:<mark>", skipping keep-alive newlines.
func (r *rdbReader) header() error {
	for {
		line, err := r.c.readLine()
		if err != nil {
			return fmt.Errorf("repl: waiting for the RDB: %w", err)
		}
		switch {
		case line == "":
			continue // keep-alive while the source runs BGSAVE
		case strings.HasPrefix(line, "-"):
			return fmt.Errorf("repl: the source aborted the transfer: %w", &ReplyError{Step: "RDB transfer", Reply: line[1:]})
		case strings.HasPrefix(line, "$EOF:"):
			mark := line[5:]
			if len(mark) != eofMarkLen {
				return fmt.Errorf("%w: RDB end mark of %d bytes, want %d", ErrProtocol, len(mark), eofMarkLen)
			}
			r.mark = []byte(mark)
			r.scratch = make([]byte, 64<<10)
			return nil
		case strings.HasPrefix(line, "$"):
			n, err := strconv.ParseInt(line[1:], 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("%w: bad RDB length line %q", ErrProtocol, line)
			}
			r.size, r.left, r.done = n, n, n == 0
			return nil
		default:
			return fmt.Errorf("%w: expected the RDB, got %q", ErrProtocol, line)
		}
	}
}

// readMarked reads EOF-framed bytes into p, keeping the last 40 back.
func (r *rdbReader) readMarked(p []byte) (int, error) {
	for {
		m, err := r.c.br.Read(r.scratch[:min(len(p), len(r.scratch))])
		if m > 0 {
			r.hold = append(r.hold, r.scratch[:m]...)
			if len(r.hold) >= eofMarkLen && bytes.Equal(r.hold[len(r.hold)-eofMarkLen:], r.mark) {
				// At most len(p) bytes precede the mark: hold had at most
				// 40 before this read of at most len(p).
				r.done = true
				return copy(p, r.hold[:len(r.hold)-eofMarkLen]), nil
			}
			if len(r.hold) > eofMarkLen {
				n := copy(p, r.hold[:len(r.hold)-eofMarkLen])
				r.hold = append(r.hold[:0], r.hold[n:]...)
				return n, nil
			}
		}
		if err != nil {
			return 0, err
		}
	}
}
