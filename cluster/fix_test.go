package cluster_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// fixEnv is a fresh three-master cluster with direct clients to each
// master, for putting slots into broken states by hand.
type fixEnv struct {
	c       *testenv.RedisCluster
	direct  []*redis.Client
	ids     []string
	slot    int // a slot owned by master 0
	keys    []string
	present map[string]string
}

func newFixEnv(t *testing.T, opts testenv.ClusterOptions) *fixEnv {
	t.Helper()
	opts.Masters = 3
	c := testenv.StartRedisCluster(t, opts)
	f := &fixEnv{c: c, slot: 100, present: map[string]string{}}
	ctx := ctxFor(t, 10*time.Second)
	for _, m := range c.Masters() {
		cl := m.Client(t)
		id, err := cl.ClusterMyID(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		f.direct = append(f.direct, cl)
		f.ids = append(f.ids, id)
	}
	for i := 0; len(f.keys) < 20; i++ {
		if k := "fix:" + strconv.Itoa(i); cluster.KeySlot(k) == f.slot {
			f.keys = append(f.keys, k)
		}
	}
	return f
}

// do runs a raw command on master i and fails the test on error.
func (f *fixEnv) do(t *testing.T, i int, args ...any) {
	t.Helper()
	if err := f.direct[i].Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("master %d: %v: %v", i, args, err)
	}
}

// put writes keys[from:to] on master i (with ASKING, so an importing node
// accepts them) and remembers their values.
func (f *fixEnv) put(t *testing.T, i, from, to int) {
	t.Helper()
	ctx := context.Background()
	for _, k := range f.keys[from:to] {
		v := "value-of-" + k
		_, err := f.direct[i].Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Do(ctx, "ASKING")
			p.Set(ctx, k, v, 0)
			return nil
		})
		if err != nil {
			t.Fatalf("put %s on master %d: %v", k, i, err)
		}
		f.present[k] = v
	}
}

// migrate moves keys[from:to] from master 0 to master j with MIGRATE, as an
// interrupted reshard would have.
func (f *fixEnv) migrate(t *testing.T, j, from, to int) {
	t.Helper()
	args := []any{"MIGRATE", "127.0.0.1", f.c.Masters()[j].Port, "", 0, 5000}
	if pw := f.c.Password(); pw != "" {
		args = append(args, "AUTH", pw)
	}
	args = append(args, "KEYS")
	for _, k := range f.keys[from:to] {
		args = append(args, k)
	}
	f.do(t, 0, args...)
}

// requireKeys reads every remembered key through a cluster client.
func (f *fixEnv) requireKeys(t *testing.T) {
	t.Helper()
	cl := f.c.Client(t)
	ctx := ctxFor(t, 20*time.Second)
	for k, want := range f.present {
		if got, err := cl.Get(ctx, k).Result(); err != nil || got != want {
			t.Errorf("after fix %s = %q, %v; want %q", k, got, err, want)
		}
	}
}

func (f *fixEnv) owner(t *testing.T, e *cluster.Engine) string {
	t.Helper()
	v, err := e.Inspect(ctxFor(t, 10*time.Second), f.c.Nodes[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	if o := v.Owner(f.slot); o != nil {
		return o.Addr
	}
	return ""
}

func TestFixClosesOpenAndUncoveredSlots(t *testing.T) {
	for _, tc := range []struct {
		name      string
		setup     func(t *testing.T, f *fixEnv)
		wantCase  string
		wantOwner int // index of the master that must own the slot after
		finding   cluster.FindingKind
	}{
		{"case 1: reshard interrupted with keys on both ends", func(t *testing.T, f *fixEnv) {
			f.put(t, 0, 0, 20)
			f.do(t, 1, "CLUSTER", "SETSLOT", f.slot, "IMPORTING", f.ids[0])
			f.do(t, 0, "CLUSTER", "SETSLOT", f.slot, "MIGRATING", f.ids[1])
			f.migrate(t, 1, 0, 10)
		}, "case 1", 1, cluster.FindOpenSlot},
		{"case 2: importing node holds keys, nothing migrating", func(t *testing.T, f *fixEnv) {
			f.put(t, 0, 0, 10)
			f.do(t, 1, "CLUSTER", "SETSLOT", f.slot, "IMPORTING", f.ids[0])
			f.put(t, 1, 10, 15)
		}, "case 2", 0, cluster.FindOpenSlot},
		{"case 3: one migrating, two importing", func(t *testing.T, f *fixEnv) {
			f.put(t, 0, 0, 20)
			f.do(t, 1, "CLUSTER", "SETSLOT", f.slot, "IMPORTING", f.ids[0])
			f.do(t, 2, "CLUSTER", "SETSLOT", f.slot, "IMPORTING", f.ids[0])
			f.do(t, 0, "CLUSTER", "SETSLOT", f.slot, "MIGRATING", f.ids[1])
		}, "case 3", 1, cluster.FindOpenSlot},
		{"case 4: migrating only", func(t *testing.T, f *fixEnv) {
			f.put(t, 0, 0, 20)
			f.do(t, 0, "CLUSTER", "SETSLOT", f.slot, "MIGRATING", f.ids[1])
		}, "case 4", 0, cluster.FindOpenSlot},
		{"uncovered slot whose keys are on a node", func(t *testing.T, f *fixEnv) {
			f.put(t, 0, 0, 20)
			f.do(t, 0, "CLUSTER", "DELSLOTS", f.slot)
		}, "coverage", 0, cluster.FindUncovered},
		{"uncovered empty slot", func(t *testing.T, f *fixEnv) {
			f.do(t, 0, "CLUSTER", "DELSLOTS", f.slot)
		}, "coverage", -1, cluster.FindUncovered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixEnv(t, testenv.ClusterOptions{Password: "fixpw"})
			e := newEngine(t, "fixpw")
			ctx := ctxFor(t, 60*time.Second)
			tc.setup(t, f)
			findings, _, err := e.Check(ctx, f.c.Nodes[0].Addr)
			if err != nil {
				t.Fatal(err)
			}
			if !hasFinding(findings, tc.finding) {
				t.Fatalf("Check before Fix: no %s finding:\n%s", tc.finding, describe(findings))
			}
			rep, err := e.Fix(ctx, f.c.Nodes[0].Addr, cluster.FixOptions{})
			if err != nil {
				t.Fatalf("Fix: %v\nreport:\n%s", err, rep)
			}
			t.Logf("fix report:\n%s", rep)
			if !strings.Contains(rep.String(), tc.wantCase) {
				t.Errorf("report does not mention %q", tc.wantCase)
			}
			requireHealthy(t, e, f.c.Nodes[0].Addr, "fixpw")
			if tc.wantOwner >= 0 {
				if got, want := f.owner(t, e), f.c.Masters()[tc.wantOwner].Addr; got != want {
					t.Errorf("slot %d owned by %s, want %s", f.slot, got, want)
				}
			}
			f.requireKeys(t)
		})
	}
}

func TestFixRefusesWithUnreachableMasterUnlessForced(t *testing.T) {
	// A long node timeout, so that the paused master is never flagged
	// failed while the test talks to the others.
	f := newFixEnv(t, testenv.ClusterOptions{NodeTimeout: 30 * time.Second})
	e := cluster.New(cluster.Config{DialTimeout: 300 * time.Millisecond, CommandTimeout: 300 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { e.Close() })
	ctx := ctxFor(t, 60*time.Second)
	f.put(t, 0, 0, 5)
	f.do(t, 0, "CLUSTER", "SETSLOT", f.slot, "MIGRATING", f.ids[1])
	paused := f.c.Masters()[2]
	if err := paused.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			if err := paused.Resume(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(resume)
	_, err := e.Fix(ctx, f.c.Nodes[0].Addr, cluster.FixOptions{})
	if !errors.Is(err, cluster.ErrMastersUnreachable) || !strings.Contains(err.Error(), paused.Addr) {
		t.Fatalf("Fix with a paused master: err = %v, want ErrMastersUnreachable naming %s", err, paused.Addr)
	}
	rep, err := e.Fix(ctx, f.c.Nodes[0].Addr, cluster.FixOptions{Force: true})
	resume()
	if err != nil {
		t.Fatalf("forced Fix: %v", err)
	}
	t.Logf("forced fix report:\n%s", rep)
	if !rep.Forced || len(rep.Skipped) != 1 || rep.Skipped[0] != paused.Addr || !strings.Contains(rep.String(), "case 4") {
		t.Fatalf("forced report %+v does not say what it skipped and did", rep)
	}
	requireHealthy(t, newEngine(t, ""), f.c.Nodes[0].Addr, "")
	f.requireKeys(t)
}
