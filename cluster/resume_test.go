package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// fillSlots writes perSlot keys into each slot; key names carry the slot as
// a hash tag.
func fillSlots(t *testing.T, cl *redis.ClusterClient, slots []int, perSlot int) map[string]string {
	t.Helper()
	ctx := ctxFor(t, 60*time.Second)
	want := map[string]string{}
	for _, s := range slots {
		tag := keyInSlot("tag", s)
		pipe := cl.Pipeline()
		for i := range perSlot {
			k := fmt.Sprintf("{%s}:%d", tag, i)
			want[k] = "v" + k
			pipe.Set(ctx, k, want[k], 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

func requireValues(t *testing.T, cl *redis.ClusterClient, want map[string]string) {
	t.Helper()
	ctx := ctxFor(t, 60*time.Second)
	pipe := cl.Pipeline()
	cmds := map[string]*redis.StringCmd{}
	for k := range want {
		cmds[k] = pipe.Get(ctx, k)
	}
	_, _ = pipe.Exec(ctx)
	for k, c := range cmds {
		if got, err := c.Result(); err != nil || got != want[k] {
			t.Fatalf("%s = %q, %v; want %q", k, got, err, want[k])
		}
	}
}

func TestZeroLossCrashAndResume(t *testing.T) {
	for _, tc := range []struct {
		name    string
		recover func(ctx context.Context, t *testing.T, e *cluster.Engine, seed string, store cluster.StateStore)
	}{
		{"fresh engine resumes from the store", func(ctx context.Context, t *testing.T, e *cluster.Engine, seed string, store cluster.StateStore) {
			res, err := e.Resume(ctx, seed, store, cluster.MoveOptions{})
			if err != nil {
				t.Fatalf("Resume: %v", err)
			}
			t.Logf("resumed: %s", res.Progress)
			states, _ := store.LoadSlots(ctx)
			for _, st := range states {
				if st.Phase != cluster.PhaseDone {
					t.Fatalf("slot %d still %s after Resume", st.Slot, st.Phase)
				}
			}
		}},
		{"fix closes the half-moved slot", func(ctx context.Context, t *testing.T, e *cluster.Engine, seed string, _ cluster.StateStore) {
			rep, err := e.Fix(ctx, seed, cluster.FixOptions{})
			if err != nil {
				t.Fatalf("Fix: %v", err)
			}
			t.Logf("fix report:\n%s", rep)
			if len(rep.Actions) == 0 {
				t.Fatal("Fix found nothing to do on a half-moved slot")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 2, Replicas: 1})
			seed := c.Nodes[0].Addr
			src, dst := c.Masters()[0].Addr, c.Masters()[1].Addr
			slots := []int{10, 11, 12}
			want := fillSlots(t, c.Client(t), slots, 3000)
			w := startChecker(t, c.Addrs(), "", "crash", 3)
			w.waitAcked(t, 200)

			store := &cluster.MemoryStore{}
			e1 := newEngine(t, "")
			ctx := ctxFor(t, 120*time.Second)
			moveCtx, crash := context.WithCancel(ctx)
			defer crash()
			// Crash hard in the middle of the first slot: after 600 of its
			// 3000 keys have moved, in small batches.
			_, err := e1.MoveSlots(moveCtx, seed, movesOf(slots, src, dst), cluster.MoveOptions{
				Store: store, BatchKeys: 50, Parallel: 1,
				Progress: func(p cluster.Progress) {
					if p.Keys >= 600 {
						crash()
					}
				},
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("MoveSlots after crash: err = %v, want context.Canceled", err)
			}
			e1.Close()
			states, _ := store.LoadSlots(ctx)
			half := 0
			for _, st := range states {
				if st.Phase == cluster.PhaseMigrating {
					half++
				}
			}
			// A round opens all three slots before their keys move, so the
			// crash leaves the first slot half-moved and the others open
			// with their keys still on the source; all of them are
			// persisted as migrating and must be finished.
			if half == 0 {
				t.Fatalf("want the open slots persisted half-moved, got states %+v", states)
			}
			findings, _, err := newEngine(t, "").Check(ctx, seed)
			if err != nil {
				t.Fatal(err)
			}
			if !hasFinding(findings, cluster.FindOpenSlot) {
				t.Fatalf("no open slot after the crash:\n%s", describe(findings))
			}

			tc.recover(ctx, t, newEngine(t, ""), seed, store)
			w.requireNoLoss(t)
			requireHealthy(t, newEngine(t, ""), seed, "")
			requireValues(t, c.Client(t), want)
		})
	}
}

func TestMoveResolvesBusyKeysByComparingValues(t *testing.T) {
	f := newFixEnv(t, testenv.ClusterOptions{})
	e := newEngine(t, "")
	ctx := ctxFor(t, 60*time.Second)
	bg := context.Background()
	same, differ, hash := f.keys[0], f.keys[1], f.keys[2]
	// The slot is half open towards master 1, which already holds copies.
	f.do(t, 1, "CLUSTER", "SETSLOT", f.slot, "IMPORTING", f.ids[0])
	if err := f.direct[0].Set(bg, same, "identical", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.direct[0].Set(bg, differ, "source-version", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var fields, reversed []any
	for i := range 300 { // beyond listpack limits: a real hash table
		fields = append(fields, fmt.Sprintf("f%d", i), i)
		reversed = append([]any{fmt.Sprintf("f%d", i), i}, reversed...)
	}
	if err := f.direct[0].HSet(bg, hash, fields...).Err(); err != nil {
		t.Fatal(err)
	}
	askingDo := func(args ...any) {
		t.Helper()
		if _, err := f.direct[1].Pipelined(bg, func(p redis.Pipeliner) error {
			p.Do(bg, "ASKING")
			p.Do(bg, args...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	askingDo("SET", same, "identical")
	askingDo("SET", differ, "target-version")
	askingDo(append([]any{"HSET", hash}, reversed...)...)
	moves := []cluster.Move{{Slot: f.slot, From: f.ids[0], To: f.ids[1]}}

	first, err := e.MoveSlots(ctx, f.c.Nodes[0].Addr, moves, cluster.MoveOptions{})
	if !errors.Is(err, cluster.ErrBusyKeyConflict) {
		t.Fatalf("MoveSlots with a conflicting key: err = %v, want ErrBusyKeyConflict", err)
	}
	// The identical string and the hash with the same fields (inserted in
	// another order) are resolved; only the conflicting key stops the move.
	if first.BusyKeysResolved != 2 {
		t.Errorf("busy keys resolved as identical = %d, want 2", first.BusyKeysResolved)
	}
	if got := f.direct[0].Get(bg, differ).Val(); got != "source-version" {
		t.Fatalf("source copy of the conflicting key = %q after refusal", got)
	}
	res, err := e.MoveSlots(ctx, f.c.Nodes[0].Addr, moves, cluster.MoveOptions{BusyKey: cluster.BusyKeyKeepSource})
	if err != nil {
		t.Fatalf("MoveSlots with BusyKeyKeepSource: %v", err)
	}
	if res.BusyKeysResolved != 0 {
		t.Errorf("second run resolved %d identical keys, want 0 (already resolved)", res.BusyKeysResolved)
	}
	requireHealthy(t, e, f.c.Nodes[0].Addr, "")
	cl := f.c.Client(t)
	if got := cl.Get(ctx, same).Val(); got != "identical" {
		t.Errorf("%s = %q", same, got)
	}
	if got := cl.Get(ctx, differ).Val(); got != "source-version" {
		t.Errorf("%s = %q, want the source's version as the policy says", differ, got)
	}
	if n := cl.HLen(ctx, hash).Val(); n != 300 {
		t.Errorf("HLEN %s = %d, want 300", hash, n)
	}
}
