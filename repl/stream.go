package repl

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// Command is one command of the replication stream.
type Command struct {
	// Args are the command's arguments, name first. They are views into Raw.
	Args [][]byte
	// Raw holds the command's exact bytes in the stream (a RESP array).
	Raw []byte
	// Offset is the replication offset just after this command: pass it to
	// Ack once the command is applied.
	Offset int64
}

// Name returns the command name in lower case ("set", "select", "ping",
// "replconf", "multi", ...).
func (c Command) Name() string {
	if len(c.Args) == 0 {
		return ""
	}
	return string(bytes.ToLower(c.Args[0]))
}

// Next returns the next command of the stream. Every command is returned,
// SELECT, PING and REPLCONF included, so offsets stay contiguous: a caller
// that applies nothing for them still acknowledges their Offset.
// REPLCONF GETACK is answered at once with the applied offset before Next
// returns it.
//
// If ctx ends while Next waits for a command to start, Next returns ctx's
// error and the Conn stays usable; if it ends in the middle of a command, or
// the link fails, the Conn is broken: Close it and resume with Dial,
// Options.ReplID = ReplID() and Options.Offset = Applied().
func (c *Conn) Next(ctx context.Context) (Command, error) {
	if err := c.failure(); err != nil {
		return Command{}, err
	}
	if c.rdb != nil && !c.rdb.done {
		return Command{}, ErrRDBPending
	}
	if err := c.startAcking(); err != nil {
		return Command{}, err
	}
	if err := ctx.Err(); err != nil {
		return Command{}, fmt.Errorf("repl: waiting for the next command: %w", err)
	}
	var cmd Command
	started := false
	err := c.interruptible(ctx, func() error {
		if _, err := c.br.Peek(1); err != nil {
			return err
		}
		started = true
		c.streaming.Store(true)
		var err error
		cmd, err = c.readCommand()
		return err
	})
	if err != nil {
		if !started && ctx.Err() != nil {
			return Command{}, fmt.Errorf("repl: waiting for the next command: %w", ctx.Err())
		}
		err = c.readErr(err)
		c.fail(err)
		return Command{}, err
	}
	c.received.Store(cmd.Offset)
	if len(cmd.Args) >= 2 && bytes.EqualFold(cmd.Args[0], []byte("REPLCONF")) && bytes.EqualFold(cmd.Args[1], []byte("GETACK")) {
		if err := c.sendAck(); err != nil {
			c.fail(err)
			return Command{}, err
		}
	}
	return cmd, nil
}

// readCommand reads one RESP array of bulk strings. Memory grows with the
// bytes that arrive, whatever lengths the headers announce.
func (c *Conn) readCommand() (Command, error) {
	raw := make([]byte, 0, 128)
	line, err := c.streamLine(&raw)
	if err != nil {
		return Command{}, err
	}
	if len(line) < 2 || line[0] != '*' {
		return Command{}, fmt.Errorf("%w: expected a command array in the stream, got %q", ErrProtocol, line)
	}
	n, err := strconv.ParseInt(string(line[1:]), 10, 64)
	if err != nil || n < 1 || n > 1<<31 {
		return Command{}, fmt.Errorf("%w: bad command array length %q", ErrProtocol, line)
	}
	spans := make([][2]int, 0, min(n, 1024))
	for range n {
		line, err := c.streamLine(&raw)
		if err != nil {
			return Command{}, err
		}
		if len(line) < 2 || line[0] != '$' {
			return Command{}, fmt.Errorf("%w: expected a bulk string in the stream, got %q", ErrProtocol, line)
		}
		size, err := strconv.ParseInt(string(line[1:]), 10, 64)
		if err != nil || size < 0 {
			return Command{}, fmt.Errorf("%w: bad bulk length %q", ErrProtocol, line)
		}
		if size > c.opts.MaxBulkLen {
			return Command{}, fmt.Errorf("%w: bulk of %d bytes exceeds MaxBulkLen %d", ErrProtocol, size, c.opts.MaxBulkLen)
		}
		start := len(raw)
		if raw, err = c.readFull(raw, size+2); err != nil {
			return Command{}, err
		}
		if raw[len(raw)-2] != '\r' || raw[len(raw)-1] != '\n' {
			return Command{}, fmt.Errorf("%w: bulk string not followed by CRLF", ErrProtocol)
		}
		spans = append(spans, [2]int{start, start + int(size)})
	}
	args := make([][]byte, len(spans))
	for i, s := range spans {
		args[i] = raw[s[0]:s[1]:s[1]]
	}
	return Command{Args: args, Raw: raw, Offset: c.received.Load() + int64(len(raw))}, nil
}

// streamLine appends one CRLF-terminated line to raw and returns it without
// the CRLF.
func (c *Conn) streamLine(raw *[]byte) ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: header line longer than %d bytes", ErrProtocol, c.br.Size())
		}
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: line %q does not end with CRLF", ErrProtocol, line)
	}
	*raw = append(*raw, line...)
	return (*raw)[len(*raw)-len(line) : len(*raw)-2], nil
}

// readFull appends n bytes from the stream to raw, growing it as they
// arrive.
func (c *Conn) readFull(raw []byte, n int64) ([]byte, error) {
	for n > 0 {
		chunk := int(min(n, 1<<20))
		raw = slices.Grow(raw, chunk)
		m, err := io.ReadFull(c.br, raw[len(raw):len(raw)+chunk])
		raw = raw[:len(raw)+m]
		n -= int64(m)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return raw, err
		}
	}
	return raw, nil
}
