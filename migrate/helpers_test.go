package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/migrate"
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

// testLogger sends Warn and above to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// runningLink is a link running in the test process.
type runningLink struct {
	*migrate.Link
	cancel context.CancelFunc
	done   chan error
}

func startLink(t *testing.T, opts migrate.Options) *runningLink {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	l, err := migrate.New(opts)
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	rl := &runningLink{Link: l, cancel: cancel, done: make(chan error, 1)}
	go func() { rl.done <- l.Run(ctx) }()
	t.Cleanup(func() { _ = rl.stop() })
	return rl
}

// stop stops the link and returns Run's error; later calls return nil.
func (rl *runningLink) stop() error {
	rl.cancel()
	err, ok := <-rl.done
	if ok {
		close(rl.done)
	}
	return err
}

func (rl *runningLink) waitCaughtUp(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case err := <-rl.done:
		t.Fatalf("link stopped: %v", err)
	default:
	}
	if err := rl.WaitCaughtUp(ctx); err != nil {
		t.Fatalf("%v; stats %+v", err, rl.Stats())
	}
}

// writerLog is what one writer had acknowledged, and how many of its
// writes failed (and so may or may not have been applied).
type writerLog struct {
	acked  []int64 // sequence numbers of acknowledged iterations
	failed []int64 // iterations with an error (outcome unknown)
	incr   int64
	hincr  int64
	evals  int64
	ambig  int64 // writes whose outcome is unknown
}

// writers write, each in its own slot group, and log every acknowledged
// write: SET, INCR, RPUSH, XADD, HINCRBY, and an EVAL touching two keys of
// one slot.
type writers struct {
	logs []*writerLog
	stop chan struct{}
	wg   sync.WaitGroup
	ops  atomic.Int64
}

const evalScript = "redis.call('INCR', KEYS[1]); redis.call('RPUSH', KEYS[2], ARGV[1]); return 1"

func startWriters(t *testing.T, c redis.Cmdable, n int, pace time.Duration) *writers {
	w := &writers{stop: make(chan struct{})}
	for i := range n {
		lg := &writerLog{}
		w.logs = append(w.logs, lg)
		w.wg.Go(func() {
			ctx := context.Background()
			var tick *time.Ticker
			if pace > 0 {
				tick = time.NewTicker(pace)
				defer tick.Stop()
			}
			for seq := int64(1); ; seq++ {
				select {
				case <-w.stop:
					return
				default:
				}
				if tick != nil {
					select {
					case <-w.stop:
						return
					case <-tick.C:
					}
				}
				tag := "{w" + strconv.Itoa(i) + "}"
				s := strconv.FormatInt(seq, 10)
				ok := true
				note := func(err error) bool {
					if err != nil {
						ok = false
						lg.ambig++
						return false
					}
					return true
				}
				note(c.Set(ctx, "set:"+tag+":"+s, s, 0).Err())
				if note(c.Incr(ctx, "cnt:"+tag).Err()) {
					lg.incr++
				}
				note(c.RPush(ctx, "log:"+tag, s).Err())
				note(c.XAdd(ctx, &redis.XAddArgs{Stream: "xs:" + tag, Values: []string{"seq", s}}).Err())
				if note(c.HIncrBy(ctx, "h:"+tag, "f", 1).Err()) {
					lg.hincr++
				}
				if note(c.Eval(ctx, evalScript, []string{"ev:" + tag + ":n", "ev:" + tag + ":l"}, s).Err()) {
					lg.evals++
				}
				if ok {
					lg.acked = append(lg.acked, seq)
				} else {
					lg.failed = append(lg.failed, seq)
				}
				w.ops.Add(6)
			}
		})
	}
	return w
}

func (w *writers) halt() {
	close(w.stop)
	w.wg.Wait()
}

// checkWriters checks the target against the writers' logs: every
// acknowledged write is there, counters equal the acknowledged counts (up
// to the writes whose outcome is unknown), and every list and stream holds
// each sequence at most once, in order, with every acknowledged one.
func checkWriters(t *testing.T, ctx context.Context, tc redis.Cmdable, w *writers) {
	t.Helper()
	for i, lg := range w.logs {
		tag := "{w" + strconv.Itoa(i) + "}"
		for _, seq := range lg.acked {
			s := strconv.FormatInt(seq, 10)
			v, err := tc.Get(ctx, "set:"+tag+":"+s).Result()
			if err != nil || v != s {
				t.Errorf("writer %d: set:%s:%s = %q, %v; want %q", i, tag, s, v, err, s)
				break
			}
		}
		counter := func(what string, got string, want int64) {
			n, _ := strconv.ParseInt(got, 10, 64)
			if n < want || n > want+lg.ambig {
				t.Errorf("writer %d: %s = %d, acknowledged %d (unknown outcome %d)", i, what, n, want, lg.ambig)
			}
		}
		v, _ := tc.Get(ctx, "cnt:"+tag).Result()
		counter("INCR counter", v, lg.incr)
		v, _ = tc.HGet(ctx, "h:"+tag, "f").Result()
		counter("HINCRBY field", v, lg.hincr)
		v, _ = tc.Get(ctx, "ev:"+tag+":n").Result()
		counter("EVAL counter", v, lg.evals)

		list, err := tc.LRange(ctx, "log:"+tag, 0, -1).Result()
		must(t, err)
		checkSeqs(t, fmt.Sprintf("writer %d RPUSH list", i), list, lg)
		elist, err := tc.LRange(ctx, "ev:"+tag+":l", 0, -1).Result()
		must(t, err)
		checkSeqs(t, fmt.Sprintf("writer %d EVAL list", i), elist, lg)
		xs, err := tc.XRange(ctx, "xs:"+tag, "-", "+").Result()
		must(t, err)
		var xseq []string
		for _, m := range xs {
			xseq = append(xseq, fmt.Sprint(m.Values["seq"]))
		}
		checkSeqs(t, fmt.Sprintf("writer %d XADD stream", i), xseq, lg)
	}
}

// checkSeqs: each sequence at most once, increasing, and every
// acknowledged one present.
func checkSeqs(t *testing.T, what string, got []string, lg *writerLog) {
	t.Helper()
	var prev int64
	seen := map[int64]bool{}
	for _, s := range got {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Errorf("%s: element %q is not a sequence number", what, s)
			return
		}
		if seen[n] {
			t.Errorf("%s: sequence %d appears twice (duplicate apply)", what, n)
			return
		}
		if n <= prev {
			t.Errorf("%s: sequence %d after %d (out of order)", what, n, prev)
			return
		}
		seen[n], prev = true, n
	}
	for _, a := range lg.acked {
		if !seen[a] {
			t.Errorf("%s: acknowledged sequence %d is missing (lost write); have %d elements", what, a, len(got))
			return
		}
	}
	for n := range seen {
		if !slices.Contains(lg.acked, n) && !slices.Contains(lg.failed, n) {
			t.Errorf("%s: sequence %d was never written", what, n)
			return
		}
	}
}

// preload writes every type, big values, a function library and volatile
// keys. Keys use hash tags so that a cluster source can hold them too.
func preload(t *testing.T, ctx context.Context, c redis.Cmdable, volatile int) {
	t.Helper()
	must(t, c.Set(ctx, "str", "hello", 0).Err())
	must(t, c.Set(ctx, "int", "12345", 0).Err())
	must(t, c.Set(ctx, "bigstr", string(make([]byte, 300<<10)), 0).Err())
	must(t, c.RPush(ctx, "list", "a", "b", "c").Err())
	must(t, c.SAdd(ctx, "intset", 1, 2, 3).Err())
	must(t, c.SAdd(ctx, "set", "x", "y", "z").Err())
	must(t, c.ZAdd(ctx, "zset", redis.Z{Score: 1.5, Member: "a"}, redis.Z{Score: 2, Member: "b"}).Err())
	must(t, c.HSet(ctx, "hash", "f1", "v1", "f2", "2").Err())
	must(t, c.XAdd(ctx, &redis.XAddArgs{Stream: "stream", ID: "1-1", Values: []string{"a", "1"}}).Err())
	must(t, c.XAdd(ctx, &redis.XAddArgs{Stream: "stream", ID: "2-1", Values: []string{"b", "2"}}).Err())
	must(t, c.XGroupCreate(ctx, "stream", "g1", "0").Err())
	must(t, c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g1", Consumer: "c1", Streams: []string{"stream", ">"}, Count: 1}).Err())
	must(t, c.Set(ctx, "ttl:long", "v", time.Hour).Err())
	// Big values, written in pieces (the test sets BigValueBytes to 64 KiB).
	var elems []any
	var zs []redis.Z
	var hf []any
	for i := range 20000 {
		s := fmt.Sprintf("element-%06d", i)
		elems = append(elems, s)
		zs = append(zs, redis.Z{Score: float64(i), Member: s})
		hf = append(hf, s, i)
	}
	must(t, c.RPush(ctx, "big:list", elems...).Err())
	must(t, c.SAdd(ctx, "big:set", elems...).Err())
	must(t, c.ZAdd(ctx, "big:zset", zs...).Err())
	must(t, c.HSet(ctx, "big:hash", hf...).Err())
	must(t, c.Expire(ctx, "big:hash", 2*time.Hour).Err())
	must(t, c.FunctionLoadReplace(ctx, "#!lua name=r2mlib\nredis.register_function('r2m_one', function(keys, args) return 1 end)").Err())
	// Volatile keys, pipelined.
	for start := 0; start < volatile; start += 5000 {
		p := c.Pipeline()
		for i := start; i < min(start+5000, volatile); i++ {
			p.Set(ctx, "vol:"+strconv.Itoa(i), i, time.Hour+time.Duration(i)*time.Millisecond)
		}
		_, err := p.Exec(ctx)
		must(t, err)
	}
}

// verify compares source and target in full.
func verify(t *testing.T, ctx context.Context, src, dst migrate.Endpoint) {
	t.Helper()
	rep, err := migrate.Verify(ctx, migrate.VerifyOptions{Source: src, Target: dst})
	if err != nil {
		if errors.Is(err, migrate.ErrDifferent) {
			t.Fatalf("%v: %+v", err, rep.Diffs)
		}
		t.Fatal(err)
	}
	if rep.Checked == 0 {
		t.Fatal("verify checked no key")
	}
	t.Logf("verify: %d keys equal (source %d keys, target %d)", rep.Checked, rep.SourceKeys, rep.TargetKeys)
}

// checkFunctions checks that every target master has the library.
func checkFunctions(t *testing.T, ctx context.Context, cl *testenv.RedisCluster) {
	t.Helper()
	for _, m := range cl.Masters() {
		libs, err := m.Client(t).FunctionList(ctx, redis.FunctionListQuery{LibraryNamePattern: "r2mlib"}).Result()
		must(t, err)
		if len(libs) != 1 {
			t.Errorf("target master %s: %d libraries named r2mlib, want 1", m.Addr, len(libs))
		}
	}
}

var _ = io.EOF

type ctxT = context.Context
type redisClient = *redis.Client
