package migrate

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
)

// maxArgs bounds the number of arguments of one spooled command; the source
// wrote the stream, but the spool is read back from disk.
const maxArgs = 1 << 24

// command is one command read back from the spooled stream.
type command struct {
	args [][]byte
	size int64 // bytes in the stream
}

// respReader reads RESP arrays of bulk strings, the form of every command in
// a replication stream.
type respReader struct {
	br      *bufio.Reader
	maxBulk int64
}

func newRESPReader(r io.Reader, maxBulk int64) *respReader {
	return &respReader{br: bufio.NewReaderSize(r, 256<<10), maxBulk: maxBulk}
}

func (r *respReader) line() ([]byte, error) {
	l, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, fmt.Errorf("%w: line longer than %d bytes", ErrSpoolCorrupt, r.br.Size())
	}
	if err != nil {
		return nil, err
	}
	if len(l) < 3 || l[len(l)-2] != '\r' {
		return nil, fmt.Errorf("%w: bad line %q", ErrSpoolCorrupt, l)
	}
	return l, nil
}

func (r *respReader) next() (command, error) {
	l, err := r.line()
	if err != nil {
		return command{}, err
	}
	if l[0] != '*' {
		return command{}, fmt.Errorf("%w: expected an array, got %q", ErrSpoolCorrupt, l)
	}
	n, err := strconv.ParseInt(string(l[1:len(l)-2]), 10, 64)
	if err != nil || n < 0 || n > maxArgs {
		return command{}, fmt.Errorf("%w: bad array length %q", ErrSpoolCorrupt, l)
	}
	cmd := command{args: make([][]byte, 0, n), size: int64(len(l))}
	for range n {
		l, err := r.line()
		if err != nil {
			return command{}, unexpected(err)
		}
		if l[0] != '$' {
			return command{}, fmt.Errorf("%w: expected a bulk string, got %q", ErrSpoolCorrupt, l)
		}
		m, err := strconv.ParseInt(string(l[1:len(l)-2]), 10, 64)
		if err != nil || m < 0 || m > r.maxBulk {
			return command{}, fmt.Errorf("%w: bad bulk length %q", ErrSpoolCorrupt, l)
		}
		cmd.size += int64(len(l)) + m + 2
		b := make([]byte, m+2)
		if _, err := io.ReadFull(r.br, b); err != nil {
			return command{}, unexpected(err)
		}
		cmd.args = append(cmd.args, b[:m])
	}
	return cmd, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
