package repl

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestFramingOneByteAtATime feeds the RDB framings through a reader that
// returns one byte per Read, so the end mark is split across every possible
// boundary, with keep-alive newlines before the header and payloads that
// end with a prefix of the mark. Real sources (the tests against
// redis-server) cannot be made to split their writes this way.
func TestFramingOneByteAtATime(t *testing.T) {
	mark := strings.Repeat("0123456789", 4)
	payloads := [][]byte{
		[]byte("REDIS0010\xff12345678"),
		append([]byte("REDIS0010 ends with part of the mark "), mark[:39]...),
		{},
	}
	stream := "*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
	for i, payload := range payloads {
		for _, framing := range []string{"eof", "len"} {
			t.Run(framing+"-"+strconv.Itoa(i), func(t *testing.T) {
				var script bytes.Buffer
				script.WriteString("\n\n")
				if framing == "eof" {
					script.WriteString("$EOF:" + mark + "\r\n")
					script.Write(payload)
					script.WriteString(mark)
				} else {
					script.WriteString("$" + strconv.Itoa(len(payload)) + "\r\n")
					script.Write(payload)
				}
				script.WriteString(stream)
				c, acks := scriptedConn(t, &script)
				got, err := io.ReadAll(c.RDB())
				if err != nil || !bytes.Equal(got, payload) {
					t.Fatalf("RDB = %q, %v; want %q", got, err, payload)
				}
				if ack := <-acks; ack != "*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$3\r\n100\r\n" {
					t.Fatalf("first write after the RDB = %q, want REPLCONF ACK 100", ack)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				ping, err := c.Next(ctx)
				if err != nil || ping.Name() != "ping" || ping.Offset != 114 {
					t.Fatalf("first command = %q at %d, %v; want ping at 114", ping.Raw, ping.Offset, err)
				}
				set, err := c.Next(ctx)
				if err != nil || set.Name() != "set" || len(set.Args) != 3 || len(set.Args[2]) != 0 || set.Offset != 114+int64(len(stream))-14 {
					t.Fatalf("second command = %q at %d, %v", set.Raw, set.Offset, err)
				}
			})
		}
	}
}

// scriptedConn returns a Conn in the state Dial leaves after +FULLRESYNC
// (replid x, offset 100), reading script one byte at a time; what the Conn
// writes arrives on the channel.
func scriptedConn(t *testing.T, script io.Reader) (*Conn, <-chan string) {
	t.Helper()
	local, remote := net.Pipe()
	writes := make(chan string, 16)
	go func() {
		defer close(writes)
		buf := make([]byte, 4096)
		for {
			n, err := remote.Read(buf)
			if err != nil {
				return
			}
			select {
			case writes <- string(buf[:n]):
			default:
			}
		}
	}()
	opts := Options{AckInterval: time.Hour}.withDefaults()
	c := &Conn{opts: opts, addr: "script", nc: local, log: opts.Logger, done: make(chan struct{}),
		replID: "x", full: true, initial: 100}
	c.br = bufio.NewReader(iotest.OneByteReader(script))
	c.readTimeout.Store(int64(opts.ReadTimeout))
	c.received.Store(100)
	c.applied.Store(100)
	c.rdb = &rdbReader{c: c, size: -1}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		remote.Close()
		for range writes {
		}
	})
	return c, writes
}
