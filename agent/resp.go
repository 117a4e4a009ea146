package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// redisConn is a minimal RESP2 connection for the few commands the agent
// sends to its instances (PING, AUTH, CONFIG SET). A full client would
// bring connection pools and background goroutines the agent does not need.
// It is used by one goroutine at a time, and must be discarded after any
// error other than a Redis error reply.
type redisConn struct {
	nc net.Conn
	br *bufio.Reader
}

// redisError is an error reply from Redis ("-NOAUTH …"). Receiving one
// proves the server is up and answering.
type redisError string

func (e redisError) Error() string { return "redis: " + string(e) }

// defaultIOTimeout bounds an exchange when ctx has no deadline.
const defaultIOTimeout = 5 * time.Second

func dialRedis(ctx context.Context, addr string) (*redisConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &redisConn{nc: nc, br: bufio.NewReader(nc)}, nil
}

func (c *redisConn) Close() error { return c.nc.Close() }

// do sends one command and reads its reply: a string, int64, nil, []any,
// or a redisError returned as the error.
func (c *redisConn) do(ctx context.Context, args ...string) (any, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(defaultIOTimeout)
	}
	if err := c.nc.SetDeadline(dl); err != nil {
		return nil, err
	}
	// A cancelled ctx interrupts blocked I/O by moving the deadline.
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c.nc, b.String()); err != nil {
		return nil, ctxErr(ctx, err)
	}
	v, err := readReply(c.br)
	if err != nil {
		var re redisError
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, ctxErr(ctx, err)
	}
	return v, nil
}

// ctxErr prefers ctx's error to the I/O error it caused.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return "", errors.New("redis: malformed reply line")
	}
	return line[:len(line)-2], nil
}

func readReply(br *bufio.Reader) (any, error) {
	line, err := readLine(br)
	if err != nil {
		return nil, err
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, redisError(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 || n > 512<<20 {
			return nil, errors.New("redis: malformed bulk length")
		}
		if n == -1 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 || n > 1<<20 {
			return nil, errors.New("redis: malformed array length")
		}
		if n == -1 {
			return nil, nil
		}
		out := make([]any, 0, n)
		for range n {
			v, err := readReply(br)
			var re redisError
			if err != nil && !errors.As(err, &re) {
				return nil, err
			}
			if err != nil {
				v = re
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("redis: unknown reply type %q", line[0])
}
