package repl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is one replication link to a source Redis, after the handshake.
//
// After a full resynchronization the caller reads the RDB from RDB() to its
// end, then calls Next for each command of the stream. After a partial one
// (+CONTINUE) it calls Next at once. Next must be called from one goroutine
// at a time; Ack, Close and the accessors are safe from any goroutine.
//
// The Conn sends REPLCONF ACK with the applied offset (what the caller
// passed to Ack): first as soon as the RDB has been received, again every
// 100 ms until the first command arrives (see startAckInterval), then every
// AckInterval, and at once when the stream asks with REPLCONF GETACK.
type Conn struct {
	opts Options
	addr string
	nc   net.Conn
	br   *bufio.Reader
	log  *slog.Logger

	replID  string // the source's replication ID (adopted from +CONTINUE <id>)
	full    bool
	initial int64 // offset the stream starts at
	rdb     *rdbReader

	received  atomic.Int64 // offset after the last command Next returned
	streaming atomic.Bool  // a command has arrived
	applied   atomic.Int64 // what the caller acknowledged

	readTimeout atomic.Int64 // per Read deadline, in nanoseconds

	rmu         sync.Mutex // orders "interrupted" with the read deadline
	interrupted bool       // a context ended: reads fail until cleared

	wmu sync.Mutex // serializes writes to nc

	mu       sync.Mutex // guards closed, acking, failErr
	closed   bool
	acking   bool           // the first ACK was sent and ackLoop runs
	failErr  error          // first fatal error; nc is closed when set
	done     chan struct{}  // closed by Close: ackLoop returns
	wg       sync.WaitGroup // ackLoop
	closeErr error
	once     sync.Once

	beforeFirstAck func() // tests only: runs before the first ACK is sent
}

// Dial connects to a source at addr and performs the replica handshake:
// PING, AUTH, REPLCONF listening-port, REPLCONF capa eof capa psync2, and
// PSYNC (see Options.ReplID). It returns when the source has answered
// +FULLRESYNC or +CONTINUE. ctx bounds the dial and the handshake only.
func Dial(ctx context.Context, addr string, opts Options) (*Conn, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	d := net.Dialer{Timeout: opts.Timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("repl: dial %s: %w", addr, err)
	}
	c := &Conn{
		opts: opts, addr: addr, nc: nc,
		log:  opts.Logger.With("source", addr),
		done: make(chan struct{}),
	}
	c.br = bufio.NewReaderSize(connReader{c}, 64<<10)
	if err := c.start(ctx); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// start runs the handshake and sets the Conn up for what follows.
func (c *Conn) start(ctx context.Context) error {
	c.readTimeout.Store(int64(c.opts.Timeout))
	if err := c.interruptible(ctx, c.handshake); err != nil {
		return fmt.Errorf("repl: handshake with %s: %w", c.addr, err)
	}
	c.readTimeout.Store(int64(c.opts.ReadTimeout))
	c.received.Store(c.initial)
	c.applied.Store(c.initial)
	if c.full {
		c.rdb = &rdbReader{c: c, size: -1}
		c.log.Info("full resynchronization", "replid", c.replID, "offset", c.initial)
		return nil
	}
	c.log.Info("partial resynchronization", "replid", c.replID, "offset", c.initial)
	return c.startAcking()
}

// connReader reads from the socket with a fresh deadline per Read, unless
// a context has interrupted the Conn.
type connReader struct{ c *Conn }

var errInterrupted = errors.New("repl: read interrupted")

func (r connReader) Read(p []byte) (int, error) {
	c := r.c
	c.rmu.Lock()
	if c.interrupted {
		c.rmu.Unlock()
		return 0, errInterrupted
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(time.Duration(c.readTimeout.Load())))
	c.rmu.Unlock()
	return c.nc.Read(p)
}

// interruptible runs f, making reads fail at once if ctx ends meanwhile.
// When f returns, the interruption is cleared.
func (c *Conn) interruptible(ctx context.Context, f func() error) error {
	if ctx.Done() == nil { // never ends: nothing to watch
		return f()
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		c.rmu.Lock()
		c.interrupted = true
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
		c.rmu.Unlock()
	})
	err := f()
	if !stop() {
		<-fired
		c.rmu.Lock()
		c.interrupted = false
		c.rmu.Unlock()
		if err != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
	}
	return err
}

func (c *Conn) handshake() error {
	// PING: an error reply about authentication is fine, as for Redis's own
	// replicas (syncWithMaster).
	reply, err := c.roundTrip("PING", "PING")
	if err != nil {
		return err
	}
	if strings.HasPrefix(reply, "-") && !strings.HasPrefix(reply, "-NOAUTH") && !strings.HasPrefix(reply, "-NOPERM") &&
		!strings.HasPrefix(reply, "-ERR operation not permitted") {
		return &ReplyError{Step: "PING", Reply: reply[1:]}
	}
	if c.opts.Password != "" {
		args := []string{"AUTH", c.opts.Password}
		if c.opts.Username != "" {
			args = []string{"AUTH", c.opts.Username, c.opts.Password}
		}
		if err := c.expectOK("AUTH", args...); err != nil {
			return err
		}
	}
	// Errors to REPLCONF are not fatal, as for Redis's own replicas.
	if reply, err := c.roundTrip("REPLCONF listening-port", "REPLCONF", "listening-port", strconv.Itoa(c.opts.ListeningPort)); err != nil {
		return err
	} else if strings.HasPrefix(reply, "-") {
		c.log.Warn("REPLCONF listening-port refused", "reply", reply)
	}
	if reply, err := c.roundTrip("REPLCONF capa", "REPLCONF", "capa", "eof", "capa", "psync2"); err != nil {
		return err
	} else if strings.HasPrefix(reply, "-") {
		c.log.Warn("REPLCONF capa refused", "reply", reply)
	}
	id, off := "?", "-1"
	if c.opts.ReplID != "" {
		id, off = c.opts.ReplID, strconv.FormatInt(c.opts.Offset+1, 10)
	}
	if err := c.write(command("PSYNC", id, off)); err != nil {
		return err
	}
	for {
		line, err := c.readLine()
		if err != nil {
			return fmt.Errorf("PSYNC: %w", err)
		}
		if line == "" {
			continue // keep-alive newline while the source prepares
		}
		return c.psyncReply(line)
	}
}

func (c *Conn) psyncReply(line string) error {
	f := strings.Fields(line)
	if len(f) == 0 {
		return fmt.Errorf("%w: blank PSYNC reply %q", ErrProtocol, line)
	}
	switch {
	case f[0] == "+FULLRESYNC" && len(f) == 3:
		off, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || off < 0 {
			return fmt.Errorf("%w: PSYNC reply %q has a bad offset", ErrProtocol, line)
		}
		c.full, c.replID, c.initial = true, f[1], off
		return nil
	case f[0] == "+CONTINUE" && len(f) <= 2:
		if c.opts.ReplID == "" {
			return fmt.Errorf("%w: +CONTINUE to PSYNC ? -1", ErrProtocol)
		}
		c.replID, c.initial = c.opts.ReplID, c.opts.Offset
		if len(f) == 2 {
			c.replID = f[1] // the source's ID changed (a failover): adopt it
		}
		return nil
	case strings.HasPrefix(line, "-NOMASTERLINK"), strings.HasPrefix(line, "-LOADING"):
		return fmt.Errorf("%w: %w", ErrTryLater, &ReplyError{Step: "PSYNC", Reply: line[1:]})
	case strings.HasPrefix(line, "-"):
		return &ReplyError{Step: "PSYNC", Reply: line[1:]}
	}
	return fmt.Errorf("%w: unexpected PSYNC reply %q", ErrProtocol, line)
}

// roundTrip sends one command and returns the reply line.
func (c *Conn) roundTrip(step string, args ...string) (string, error) {
	if err := c.write(command(args...)); err != nil {
		return "", err
	}
	line, err := c.readLine()
	if err != nil {
		return "", fmt.Errorf("%s: %w", step, err)
	}
	return line, nil
}

func (c *Conn) expectOK(step string, args ...string) error {
	reply, err := c.roundTrip(step, args...)
	if err != nil {
		return err
	}
	if strings.HasPrefix(reply, "-") {
		return &ReplyError{Step: step, Reply: reply[1:]}
	}
	if reply != "+OK" {
		return fmt.Errorf("%w: %s: unexpected reply %q", ErrProtocol, step, reply)
	}
	return nil
}

// readLine reads one reply line without its "\r\n" (or bare "\n", which a
// keep-alive is).
func (c *Conn) readLine() (string, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", fmt.Errorf("%w: reply line longer than %d bytes", ErrProtocol, c.br.Size())
		}
		return "", c.readErr(err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
	return s, nil
}

// command encodes args as a RESP array.
func command(args ...string) []byte {
	b := make([]byte, 0, 64)
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	return b
}

func (c *Conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.opts.Timeout))
	if _, err := c.nc.Write(b); err != nil {
		return c.readErr(err)
	}
	return nil
}

// readErr maps a socket error: a closed Conn reports ErrClosed, a fatal
// error recorded earlier is reported instead of its consequence.
func (c *Conn) readErr(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return ErrClosed
	case c.failErr != nil:
		return c.failErr
	case errors.Is(err, io.EOF):
		return fmt.Errorf("repl: source %s closed the connection: %w", c.addr, io.ErrUnexpectedEOF)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("repl: nothing from %s for %v: %w", c.addr, time.Duration(c.readTimeout.Load()), err)
	}
	return fmt.Errorf("repl: %s: %w", c.addr, err)
}

// fail records the first fatal error and closes the socket, so that every
// read and write ends.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failErr == nil && !c.closed {
		c.failErr = err
		_ = c.nc.Close()
	}
}

func (c *Conn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	return c.failErr
}

// startAcking sends the first ACK and starts the periodic ones, once.
func (c *Conn) startAcking() error {
	c.mu.Lock()
	if c.acking || c.closed {
		c.mu.Unlock()
		return nil
	}
	c.acking = true
	c.mu.Unlock()
	if c.beforeFirstAck != nil {
		c.beforeFirstAck()
	}
	if err := c.sendAck(); err != nil {
		c.fail(err)
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.wg.Add(1)
		go c.ackLoop()
	}
	return nil
}

// startAckInterval is the ACK period until the first command arrives. A
// diskless source starts the stream on the first ACK that finds the replica
// online, and it may mark it online only after the ACK sent at the end of the
// RDB arrived (the child that wrote the RDB has not exited yet; 7.0
// replconfCommand). Redis's own replicas wait for their next 1 s ACK; this
// retries sooner.
const startAckInterval = 100 * time.Millisecond

func (c *Conn) ackLoop() {
	defer c.wg.Done()
	t := time.NewTimer(c.ackPeriod())
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if err := c.sendAck(); err != nil {
				c.fail(fmt.Errorf("repl: sending REPLCONF ACK: %w", err))
				return
			}
			t.Reset(c.ackPeriod())
		}
	}
}

func (c *Conn) ackPeriod() time.Duration {
	if !c.streaming.Load() {
		return min(c.opts.AckInterval, startAckInterval)
	}
	return c.opts.AckInterval
}

func (c *Conn) sendAck() error {
	return c.write(command("REPLCONF", "ACK", strconv.FormatInt(c.applied.Load(), 10)))
}

// Ack records that every command up to offset (a Command.Offset, or the
// initial offset) has been applied. The next REPLCONF ACK reports it, so the
// source's INFO replication and WAIT see what the target really holds.
// Offsets below the current applied offset are ignored; offsets beyond the
// received stream are ErrBadAck.
func (c *Conn) Ack(offset int64) error {
	if rcv := c.received.Load(); offset > rcv {
		return fmt.Errorf("%w: %d, received %d", ErrBadAck, offset, rcv)
	}
	for {
		cur := c.applied.Load()
		if offset <= cur || c.applied.CompareAndSwap(cur, offset) {
			return nil
		}
	}
}

// FullSync reports whether the source answered +FULLRESYNC, so that an RDB
// precedes the stream.
func (c *Conn) FullSync() bool { return c.full }

// ReplID returns the source's replication ID: the one from +FULLRESYNC, or
// the new one a +CONTINUE carried, or Options.ReplID. Resume with it.
func (c *Conn) ReplID() string { return c.replID }

// InitialOffset returns the offset the stream starts at: the +FULLRESYNC
// offset, or Options.Offset on a partial resync.
func (c *Conn) InitialOffset() int64 { return c.initial }

// Received returns the offset after the last command Next returned.
func (c *Conn) Received() int64 { return c.received.Load() }

// Applied returns the offset last given to Ack (or the initial offset).
func (c *Conn) Applied() int64 { return c.applied.Load() }

// Close closes the link and stops the ACK goroutine. It is idempotent and
// safe from any goroutine; a Next or RDB Read in progress returns
// ErrClosed.
func (c *Conn) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		alreadyClosed := c.failErr != nil
		c.mu.Unlock()
		close(c.done)
		if err := c.nc.Close(); err != nil && !alreadyClosed {
			c.closeErr = fmt.Errorf("repl: closing the link to %s: %w", c.addr, err)
		}
		c.wg.Wait()
	})
	return c.closeErr
}
