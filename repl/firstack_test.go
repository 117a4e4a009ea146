package repl

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/internal/testenv"
)

// TestNoStreamBeforeFirstAck holds the first ACK back (a test hook runs just
// before it is sent), writes to the source meanwhile, and looks for stream
// bytes on the socket. With diskless sync ("$EOF:" framing) none arrive
// within 300 ms; after the ACK the writes stream in, and the offset matches
// the source's. With disk-based sync ("$len") the same probe sees the stream
// at once: the control that shows the probe can see bytes.
func TestNoStreamBeforeFirstAck(t *testing.T) {
	for _, diskless := range []bool{true, false} {
		t.Run("diskless="+strconv.FormatBool(diskless), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s := testenv.StartRedis(t, testenv.RedisOptions{Config: []string{
				"repl-diskless-sync " + map[bool]string{true: "yes", false: "no"}[diskless],
			}})
			rc := s.Client(t)
			c, err := Dial(ctx, s.Addr, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()

			var probe error
			hookRan := false
			c.beforeFirstAck = func() {
				hookRan = true
				if err := rc.Set(ctx, "during-hold", "1", 0).Err(); err != nil {
					probe = err
					return
				}
				if err := rc.Incr(ctx, "counter").Err(); err != nil {
					probe = err
					return
				}
				if err := rc.Ping(ctx).Err(); err != nil { // one more event-loop turn on the source
					probe = err
					return
				}
				// Peek for stream bytes with a short deadline; a timeout
				// leaves the buffered reader usable.
				c.readTimeout.Store(int64(300 * time.Millisecond))
				_, probe = c.br.Peek(1)
				c.readTimeout.Store(int64(c.opts.ReadTimeout))
			}
			if _, err := io.Copy(io.Discard, c.RDB()); err != nil {
				t.Fatal(err)
			}
			if !hookRan {
				t.Fatal("the first ACK was not sent when the RDB ended")
			}
			if diskless {
				if !errors.Is(probe, os.ErrDeadlineExceeded) {
					t.Fatalf("diskless: before the first ACK the probe got %v, want no bytes (a timeout)", probe)
				}
			} else if probe != nil {
				t.Fatalf("disk-based: the probe saw no stream before the first ACK: %v", probe)
			}

			inf, err := rc.Info(ctx, "replication").Result()
			if err != nil {
				t.Fatal(err)
			}
			want := infoInt(t, inf, "master_repl_offset")
			var got []string
			for c.Received() < want {
				cmd, err := c.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, cmd.Name())
			}
			if c.Received() != want || !strings.Contains(strings.Join(got, " "), "set incr") {
				t.Fatalf("after the ACK: stream %q ends at %d, want the writes ending at %d", got, c.Received(), want)
			}
		})
	}
}

func infoInt(t *testing.T, text, field string) int64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("INFO has no %s", field)
	return 0
}
