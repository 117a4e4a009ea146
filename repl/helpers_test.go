package repl_test

import (
	"bufio"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/repl"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// info returns the fields of INFO <section>.
func info(t *testing.T, ctx context.Context, c *redis.Client, section string) map[string]string {
	t.Helper()
	text, err := c.Info(ctx, section).Result()
	must(t, err)
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			m[k] = v
		}
	}
	return m
}

func masterOffset(t *testing.T, ctx context.Context, c *redis.Client) int64 {
	t.Helper()
	n, err := strconv.ParseInt(info(t, ctx, c, "replication")["master_repl_offset"], 10, 64)
	must(t, err)
	return n
}

// replicaOffsets returns the offset the source shows for each replica
// ("slaveN:ip=...,port=...,state=...,offset=...,lag=...") by listening port.
func replicaOffsets(t *testing.T, ctx context.Context, c *redis.Client) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for k, v := range info(t, ctx, c, "replication") {
		if !strings.HasPrefix(k, "slave") || !strings.Contains(v, "offset=") {
			continue
		}
		var port, off string
		for _, kv := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(kv, "=")
			switch name {
			case "port":
				port = val
			case "offset":
				off = val
			}
		}
		n, err := strconv.ParseInt(off, 10, 64)
		must(t, err)
		out[port] = n
	}
	return out
}

// eventually polls cond every 20 ms until it holds or ctx ends.
func eventually(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// fullSync dials a full resync and reads the whole RDB.
func fullSync(t *testing.T, ctx context.Context, s *testenv.RedisServer, opts repl.Options) (*repl.Conn, []byte) {
	t.Helper()
	if opts.Password == "" {
		opts.Password = s.Password()
	}
	c, err := repl.Dial(ctx, s.Addr, opts)
	must(t, err)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	if !c.FullSync() {
		t.Fatalf("PSYNC %q %d: partial resync, want a full one", opts.ReplID, opts.Offset)
	}
	rdb, err := io.ReadAll(c.RDB())
	must(t, err)
	return c, rdb
}

// readUntil calls Next until the stream reaches offset, returning the
// commands; it fails on overshoot.
func readUntil(t *testing.T, ctx context.Context, c *repl.Conn, offset int64) []repl.Command {
	t.Helper()
	var out []repl.Command
	for c.Received() < offset {
		cmd, err := c.Next(ctx)
		must(t, err)
		out = append(out, cmd)
	}
	if c.Received() != offset {
		t.Fatalf("stream at offset %d, passed the source's %d", c.Received(), offset)
	}
	return out
}

func names(cmds []repl.Command) []string {
	var out []string
	for _, c := range cmds {
		args := []string{c.Name()}
		for _, a := range c.Args[1:] {
			args = append(args, string(a))
		}
		out = append(out, strings.Join(args, " "))
	}
	return out
}
