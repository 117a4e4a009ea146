package client_test

// Data-path tests on a real 3-master × 1-replica Redis Cluster, judged by
// go-redis, a client we did not write.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/r2m-go/r2m/client"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

// mutableCluster is a second shared 3×1 cluster that the tests which move
// slots, fail over, pause nodes or switch clusters use one after another
// (none of them runs in parallel). They leave it healthy. The other tests
// use sharedCluster, which nobody changes.
func mutableCluster(t testing.TB) *testenv.RedisCluster {
	return testenv.SharedRedisCluster(t, testenv.ClusterOptions{Masters: 3, Replicas: 1, Config: []string{"# mutated by slot-move, failover and switch tests"}})
}

// TestDataPathHundredThousandKeys writes 100,000 keys through the client
// and reads them back through go-redis.
func TestDataPathHundredThousandKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testContext(t)
		rc := sharedCluster(t)
		e := newEnv(t, b.shared(t)(uniqueRoot(t)), "", rc, meta.ClientConfig{})
		c, err := client.New(ctx, e.options(nil))
		must(t, err)
		defer func() { must(t, c.Close()) }()

		const n, batch, workers = 100_000, 500, 8
		prefix := fmt.Sprintf("hk:%s:%x", b.name, rand.Uint32())
		key := func(i int) string { return fmt.Sprintf("%s:%d", prefix, i) }
		val := func(i int) string { return fmt.Sprintf("value-%d-%s", i, strconv.FormatUint(uint64(i)*2654435761, 36)) }
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Go(func() {
				cmds := make(rueidis.Commands, 0, batch)
				for start := w * batch; start < n; start += workers * batch {
					cmds = cmds[:0]
					for i := start; i < min(start+batch, n); i++ {
						cmds = append(cmds, c.B().Set().Key(key(i)).Value(val(i)).Build())
					}
					for _, r := range c.DoMulti(ctx, cmds...) {
						if err := r.Error(); err != nil {
							errs <- err
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("write through the client: %v", err)
		}
		if got := c.Stats().Commands; got < n {
			t.Fatalf("client counted %d commands, want at least %d", got, n)
		}

		gr := goRedis(t, rc)
		mismatches := 0
		for start := 0; start < n; start += 1000 {
			pipe := gr.Pipeline()
			gets := make([]*redis.StringCmd, 0, 1000)
			for i := start; i < min(start+1000, n); i++ {
				gets = append(gets, pipe.Get(ctx, key(i)))
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatalf("go-redis read back from key %d: %v", start, err)
			}
			for j, g := range gets {
				if g.Val() != val(start+j) {
					if mismatches++; mismatches <= 5 {
						t.Errorf("key %s read back by go-redis as %q, want %q", key(start+j), g.Val(), val(start+j))
					}
				}
			}
		}
		if mismatches > 0 {
			t.Fatalf("%d of %d keys differ", mismatches, n)
		}
	})
}

// nodeInfo is one node as CLUSTER NODES describes it.
type nodeInfo struct {
	id, addr string
	master   bool
	masterID string
	slots    string
}

func clusterNodes(t testing.TB, gr *redis.ClusterClient, ctx context.Context) []nodeInfo {
	t.Helper()
	out, err := gr.ClusterNodes(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	var nodes []nodeInfo
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 8 || strings.Contains(f[2], "fail") {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		nodes = append(nodes, nodeInfo{id: f[0], addr: addr, master: strings.Contains(f[2], "master"), masterID: f[3], slots: strings.Join(f[8:], " ")})
	}
	return nodes
}

// nodeClient is a single-node go-redis client, closed with the test.
func nodeClient(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, ReadTimeout: 10 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

// ownerOf returns the master serving slot, from CLUSTER NODES.
func ownerOf(t testing.TB, ctx context.Context, gr *redis.ClusterClient, slot int64) nodeInfo {
	t.Helper()
	for _, n := range clusterNodes(t, gr, ctx) {
		if !n.master {
			continue
		}
		for _, r := range strings.Fields(n.slots) {
			if strings.HasPrefix(r, "[") {
				continue // a slot being imported or migrated
			}
			lo, hi, ok := strings.Cut(r, "-")
			a, _ := strconv.ParseInt(lo, 10, 64)
			b := a
			if ok {
				b, _ = strconv.ParseInt(hi, 10, 64)
			}
			if slot >= a && slot <= b {
				return n
			}
		}
	}
	t.Fatalf("no master serves slot %d", slot)
	return nodeInfo{}
}

// commandCalls reads a command's call count from INFO commandstats.
func commandCalls(t testing.TB, ctx context.Context, c *redis.Client, cmd string) int64 {
	t.Helper()
	out, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "cmdstat_"+cmd+":calls="); ok {
			v, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
			return v
		}
	}
	return 0
}

// counterWriters runs INCR loops, one counter per goroutine, and records
// every failure; the final counter values must equal the successes.
type counterWriters struct {
	keys     []string
	ok       []atomic.Int64
	failures atomic.Int64
	firstErr atomic.Pointer[error]
	maxLat   atomic.Int64
	failAt   sync.Mutex
	first    time.Time
	last     time.Time
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startCounterWriters(ctx context.Context, c *client.Client, keys []string) *counterWriters {
	w := &counterWriters{keys: keys, ok: make([]atomic.Int64, len(keys)), stop: make(chan struct{})}
	for i, k := range keys {
		w.wg.Go(func() {
			for {
				select {
				case <-w.stop:
					return
				default:
				}
				start := time.Now()
				err := c.Do(ctx, c.B().Incr().Key(k).Build()).Error()
				lat := time.Since(start)
				for {
					cur := w.maxLat.Load()
					if int64(lat) <= cur || w.maxLat.CompareAndSwap(cur, int64(lat)) {
						break
					}
				}
				if err != nil {
					w.failures.Add(1)
					w.firstErr.CompareAndSwap(nil, &err)
					now := time.Now()
					w.failAt.Lock()
					if w.first.IsZero() {
						w.first = now
					}
					w.last = now
					w.failAt.Unlock()
					continue
				}
				w.ok[i].Add(1)
			}
		})
	}
	return w
}

func (w *counterWriters) total() int64 {
	var n int64
	for i := range w.ok {
		n += w.ok[i].Load()
	}
	return n
}

// waitProgress waits until every writer has succeeded n more times.
func (w *counterWriters) waitProgress(t testing.TB, n int64) {
	t.Helper()
	base := make([]int64, len(w.ok))
	for i := range w.ok {
		base[i] = w.ok[i].Load()
	}
	waitFor(t, fmt.Sprintf("every writer to succeed %d more times", n), 30*time.Second, func() bool {
		for i := range w.ok {
			if w.ok[i].Load()-base[i] < n {
				return false
			}
		}
		return true
	})
}

func (w *counterWriters) halt() {
	close(w.stop)
	w.wg.Wait()
}

// verify checks each counter, read by go-redis, against the successes.
func (w *counterWriters) verify(t testing.TB, ctx context.Context, gr *redis.ClusterClient) {
	t.Helper()
	for i, k := range w.keys {
		got, err := gr.Get(ctx, k).Int64()
		if err != nil {
			t.Fatalf("go-redis GET %s: %v", k, err)
		}
		if want := w.ok[i].Load(); got != want {
			t.Errorf("counter %s = %d in Redis, but the client saw %d successful INCRs", k, got, want)
		}
	}
}

// TestDataPathSlotMove moves a slot between masters with raw CLUSTER
// SETSLOT and MIGRATE, the way redis-cli --cluster does, while 8 goroutines
// write keys of that slot. No command may fail, and no write may be lost.
func TestDataPathSlotMove(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testContext(t)
		rc := mutableCluster(t)
		e := newEnv(t, b.shared(t)(uniqueRoot(t)), "", rc, meta.ClientConfig{})
		onEv, evs := eventChan()
		c, err := client.New(ctx, e.options(onEv))
		must(t, err)
		defer func() { must(t, c.Close()) }()
		gr := goRedis(t, rc)

		tag := "{move-" + b.name + "}"
		slot, err := gr.ClusterKeySlot(ctx, tag).Result()
		must(t, err)
		src := ownerOf(t, ctx, gr, slot)
		var dst nodeInfo
		for _, n := range clusterNodes(t, gr, ctx) {
			if n.master && n.id != src.id {
				dst = n
				break
			}
		}
		// Keys to migrate besides the counters, so that the move takes a
		// while.
		for i := range 2000 {
			must(t, gr.Set(ctx, fmt.Sprintf("%s:filler:%d", tag, i), "x", 0).Err())
		}
		var keys []string
		for i := range 8 {
			keys = append(keys, fmt.Sprintf("%s:ctr:%d", tag, i))
		}
		w := startCounterWriters(ctx, c, keys)
		w.waitProgress(t, 20)

		srcC, dstC := nodeClient(t, src.addr), nodeClient(t, dst.addr)
		askingBefore := commandCalls(t, ctx, dstC, "asking")
		must(t, dstC.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", src.id).Err())
		must(t, srcC.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst.id).Err())
		host, port, _ := strings.Cut(dst.addr, ":")
		migrate := func(ks []string) {
			args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
			for _, k := range ks {
				args = append(args, k)
			}
			must(t, srcC.Do(ctx, args...).Err())
		}
		// The counters first: from then on the writers' INCRs are answered
		// with ASK by the source and must follow it to the target.
		migrate(keys)
		w.waitProgress(t, 50)
		for {
			ks, err := srcC.ClusterGetKeysInSlot(ctx, int(slot), 100).Result()
			must(t, err)
			if len(ks) == 0 {
				break
			}
			migrate(ks)
		}
		must(t, dstC.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dst.id).Err())
		must(t, srcC.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dst.id).Err())
		for _, n := range clusterNodes(t, gr, ctx) {
			if n.master && n.id != src.id && n.id != dst.id {
				must(t, nodeClient(t, n.addr).Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dst.id).Err())
			}
		}
		// After the move the source answers MOVED; the writers follow it.
		w.waitProgress(t, 50)
		asking := commandCalls(t, ctx, dstC, "asking") - askingBefore
		// The control plane records the change; the node set is the same,
		// so the client notes the epoch and rebuilds nothing.
		epoch := e.bumpTopology(e.cluster, rc)
		ev := waitEvent(t, evs, "topology changed", func(ev client.Event) bool { return ev.Type == client.EventTopologyChanged && ev.Epoch == epoch })
		w.waitProgress(t, 10)
		w.halt()
		must(t, rc.WaitHealthy(ctx))

		t.Logf("slot %d moved %s → %s under load: %d INCRs succeeded, %d failed, %d ASKING commands at the target, max latency %v",
			slot, src.addr, dst.addr, w.total(), w.failures.Load(), asking, time.Duration(w.maxLat.Load()))
		if f := w.failures.Load(); f > 0 {
			t.Fatalf("%d commands failed during the slot move; first: %v", f, *w.firstErr.Load())
		}
		if asking == 0 {
			t.Fatalf("no ASKING reached the target: the writers never followed an ASK redirect, so the test did not test the move")
		}
		if ev.Rebuilt || c.Stats().Rebuilds != 0 {
			t.Fatalf("a slot move rebuilt the inner client (event %+v, %d rebuilds); redirects should have been enough", ev, c.Stats().Rebuilds)
		}
		w.verify(t, ctx, gr)
	})
}

// TestDataPathFailover makes a replica take over its master with CLUSTER
// FAILOVER while 8 goroutines write. Writes must resume; the test reports
// how many commands failed and for how long.
func TestDataPathFailover(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testContext(t)
		rc := mutableCluster(t)
		e := newEnv(t, b.shared(t)(uniqueRoot(t)), "", rc, meta.ClientConfig{})
		onEv, evs := eventChan()
		c, err := client.New(ctx, e.options(onEv))
		must(t, err)
		defer func() { must(t, c.Close()) }()
		gr := goRedis(t, rc)

		// The writers' keys spread over all masters; the failover hits the
		// master of the first key.
		var keys []string
		for i := range 8 {
			keys = append(keys, fmt.Sprintf("failover:%s:%x:%d", b.name, rand.Uint32(), i))
		}
		slot, err := gr.ClusterKeySlot(ctx, keys[0]).Result()
		must(t, err)
		master := ownerOf(t, ctx, gr, slot)
		var replica nodeInfo
		for _, n := range clusterNodes(t, gr, ctx) {
			if !n.master && n.masterID == master.id {
				replica = n
			}
		}
		if replica.id == "" {
			t.Fatalf("master %s has no replica", master.addr)
		}
		w := startCounterWriters(ctx, c, keys)
		w.waitProgress(t, 20)

		start := time.Now()
		must(t, nodeClient(t, replica.addr).Do(ctx, "CLUSTER", "FAILOVER").Err())
		waitFor(t, "the replica to become master", 30*time.Second, func() bool {
			return ownerOf(t, ctx, gr, slot).id == replica.id
		})
		took := time.Since(start)
		must(t, rc.WaitHealthy(ctx))
		// Writes resume, on every key.
		w.waitProgress(t, 100)
		epoch := e.bumpTopology(e.cluster, rc)
		waitEvent(t, evs, "topology changed", func(ev client.Event) bool { return ev.Type == client.EventTopologyChanged && ev.Epoch == epoch })
		w.halt()

		failed := w.failures.Load()
		var window time.Duration
		if failed > 0 {
			window = w.last.Sub(w.first)
		}
		t.Logf("CLUSTER FAILOVER %s → %s took %v: %d INCRs succeeded, %d failed (over %v), max command latency %v",
			master.addr, replica.addr, took.Round(time.Millisecond), w.total(), failed, window, time.Duration(w.maxLat.Load()).Round(time.Millisecond))
		if failed > 0 {
			t.Logf("first failure: %v", *w.firstErr.Load())
		}
		// Every successful INCR is in Redis; failed ones may or may not be
		// (a failure after sending is ambiguous), so compare only when none
		// failed.
		if failed == 0 {
			w.verify(t, ctx, gr)
		}
	})
}

// TestDataPathCoordinatorOutage stops the coordinator for 30 seconds while
// 8 goroutines write: no command may fail for that reason, and the client
// must recover its session and registration afterwards.
func TestDataPathCoordinatorOutage(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			// Longer than testContext: the outage alone is 30s, and the
			// recovery may take over a minute (see below).
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			fc := b.fault(t)
			root := uniqueRoot(t)
			rc := sharedCluster(t)
			e := newEnv(t, fc.url(root), fc.directURL(root), rc, meta.ClientConfig{})
			onEv, evs := eventChan()
			c, err := client.New(ctx, e.options(onEv))
			must(t, err)
			defer func() { must(t, c.Close()) }()
			var keys []string
			for i := range 8 {
				keys = append(keys, fmt.Sprintf("outage:%s:%x:%d", b.name, rand.Uint32(), i))
			}
			w := startCounterWriters(ctx, c, keys)
			w.waitProgress(t, 20)

			must(t, fc.stop())
			waitEvent(t, evs, "session lost", func(ev client.Event) bool { return ev.Type == client.EventSessionLost })
			before := w.total()
			<-time.After(30 * time.Second) // the outage itself, not a synchronisation
			during := w.total() - before
			must(t, fc.start())
			// A ZooKeeper server accepts connections while it starts but
			// answers none of them, and go-zookeeper waits 10 × 2/3 of the
			// session timeout (about 67s) for a handshake reply: a client
			// that reconnects in that window recovers only after it.
			ev := waitEventWithin(t, evs, "session recovered", 2*time.Minute, func(ev client.Event) bool { return ev.Type == client.EventSessionRecovered })
			w.waitProgress(t, 20)
			w.halt()
			t.Logf("coordinator down 30s: %d INCRs succeeded meanwhile, %d failed; recovered (session expired: %v)", during, w.failures.Load(), ev.Expired)
			if f := w.failures.Load(); f > 0 {
				t.Fatalf("%d commands failed while the coordinator was down; first: %v", f, *w.firstErr.Load())
			}
			if during == 0 {
				t.Fatal("no command succeeded while the coordinator was down")
			}
			w.verify(t, ctx, goRedis(t, rc))
			waitFor(t, "the registration to be present after the recovery", 30*time.Second, func() bool {
				ids, err := e.st.Clients(e.app).Names(ctx)
				return err == nil && len(ids) == 1 && ids[0] == c.ID()
			})
		})
	}
}

// TestDataPathTopologyEventReachesEveryClient changes the topology record
// and checks that every client, in two coordinator sessions, reports the new
// epoch, uses it, and writes it into its registration.
func TestDataPathTopologyEventReachesEveryClient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testContext(t)
		rc := sharedCluster(t)
		url := b.shared(t)(uniqueRoot(t))
		e := newEnv(t, url, "", rc, meta.ClientConfig{})
		const n = 20
		type member struct {
			c   *client.Client
			evs chan client.Event
		}
		var ms []member
		for i := range n {
			opts := e.options(nil)
			if i%2 == 1 {
				// Another spelling of the same URL: another session.
				opts.Coordinator = url + "?session_timeout=10s"
			}
			onEv, evs := eventChan()
			opts.OnEvent = onEv
			c, err := client.New(ctx, opts)
			must(t, err)
			defer func() { must(t, c.Close()) }()
			ms = append(ms, member{c, evs})
		}
		if got := client.SessionCount(); got != 2 {
			t.Fatalf("sessions = %d, want 2 (two URL spellings)", got)
		}
		epoch := e.bumpTopology(e.cluster, rc)
		for i, m := range ms {
			ev := waitEvent(t, m.evs, fmt.Sprintf("topology changed in client %d", i), func(ev client.Event) bool {
				return ev.Type == client.EventTopologyChanged && ev.Epoch == epoch
			})
			if ev.Rebuilt || len(ev.Nodes) != len(rc.Nodes) {
				t.Fatalf("client %d: event %+v; want no rebuild and %d nodes", i, ev, len(rc.Nodes))
			}
			if s := m.c.Stats(); s.Epoch != epoch {
				t.Fatalf("client %d uses epoch %d after the event, want %d", i, s.Epoch, epoch)
			}
		}
		waitFor(t, "every registration to report the new epoch", 30*time.Second, func() bool {
			for _, m := range ms {
				rec, _, err := e.st.Client(e.app, m.c.ID()).Get(ctx)
				if err != nil || rec.TopologyEpoch != epoch {
					return false
				}
			}
			return true
		})
	})
}

// TestDataPathClientCache checks server-assisted client-side caching
// through the client: a hit is served without a round trip (it is served
// while the node is frozen), and after another writer changes the key, no
// read returns the old value once the invalidation has arrived.
func TestDataPathClientCache(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testContext(t)
		rc := mutableCluster(t)
		e := newEnv(t, b.shared(t)(uniqueRoot(t)), "", rc, meta.ClientConfig{ClientCache: true, ClientCacheBytes: 1 << 20})
		c, err := client.New(ctx, e.options(nil))
		must(t, err)
		defer func() { must(t, c.Close()) }()
		gr := goRedis(t, rc)
		key := fmt.Sprintf("cache:%s:%x", b.name, rand.Uint32())
		get := func(ctx context.Context) rueidis.RedisResult {
			return c.DoCache(ctx, c.B().Get().Key(key).Cache(), time.Minute)
		}

		must(t, gr.Set(ctx, key, "v0", 0).Err())
		if r := get(ctx); r.IsCacheHit() || mustString(t, r) != "v0" {
			t.Fatalf("first DoCache: hit=%v, want a miss returning v0", r.IsCacheHit())
		}
		if r := get(ctx); !r.IsCacheHit() || mustString(t, r) != "v0" {
			t.Fatalf("second DoCache: hit=%v, want a hit returning v0", r.IsCacheHit())
		}

		// Freeze the node that serves the key: a hit must not need it.
		slot, err := gr.ClusterKeySlot(ctx, key).Result()
		must(t, err)
		owner := ownerOf(t, ctx, gr, slot)
		var frozen *testenv.RedisServer
		for _, n := range rc.Nodes {
			if n.Addr == owner.addr {
				frozen = n
			}
		}
		must(t, frozen.Pause())
		hctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		r := get(hctx)
		cancel()
		must(t, frozen.Resume())
		if !r.IsCacheHit() || mustString(t, r) != "v0" {
			t.Fatalf("DoCache with the node frozen: hit=%v err=%v; want a hit served from memory", r.IsCacheHit(), r.Error())
		}

		// Another writer changes the key; once the invalidation has arrived
		// no read may return the old value.
		hits := c.Stats().CacheHits
		for round := 1; round <= 20; round++ {
			want := "v" + strconv.Itoa(round)
			inv := c.Stats().Invalidations
			must(t, gr.Set(ctx, key, want, 0).Err())
			waitFor(t, "the invalidation", 10*time.Second, func() bool { return c.Stats().Invalidations > inv })
			for i := range 5 {
				r := get(ctx)
				if got := mustString(t, r); got != want {
					t.Fatalf("round %d read %d after the invalidation: got %q (hit=%v), want %q", round, i, got, r.IsCacheHit(), want)
				}
			}
		}
		if got := c.Stats().CacheHits - hits; got < 20*4 {
			t.Fatalf("%d cache hits in 20 rounds of 5 reads, want at least 80 (one miss per round)", got)
		}
	})
}

func mustString(t testing.TB, r rueidis.RedisResult) string {
	t.Helper()
	s, err := r.ToString()
	if err != nil {
		t.Fatalf("reply: %v", err)
	}
	return s
}

// TestLiveConfig changes the app's client config while commands run,
// including a blocking one: the client must apply it without failing any,
// and report the config version it applied.
func TestLiveConfig(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testContext(t)
		rc := sharedCluster(t)
		e := newEnv(t, b.shared(t)(uniqueRoot(t)), "", rc, meta.ClientConfig{})
		onEv, evs := eventChan()
		c, err := client.New(ctx, e.options(onEv))
		must(t, err)
		defer func() { must(t, c.Close()) }()
		var keys []string
		for i := range 8 {
			keys = append(keys, fmt.Sprintf("cfg:%s:%x:%d", b.name, rand.Uint32(), i))
		}
		w := startCounterWriters(ctx, c, keys)
		w.waitProgress(t, 20)

		// A blocking command in flight across the swap finishes on the old
		// connections.
		blpop := make(chan error, 1)
		go func() {
			err := c.Do(ctx, c.B().Blpop().Key(keys[0]+":list").Timeout(1.5).Build()).Error()
			if rueidis.IsRedisNil(err) {
				err = nil // timed out with nothing to pop: the normal outcome
			}
			blpop <- err
		}()

		replicaGets := func() int64 {
			var n int64
			for i := range rc.Masters() {
				for _, r := range rc.ReplicasOf(i) {
					n += commandCalls(t, ctx, nodeClient(t, r.Addr), "get")
				}
			}
			return n
		}
		_, _, err = e.st.App(e.app).Update(ctx, func(a *meta.App) error {
			a.Client = meta.ClientConfig{PoolSize: 16, DialTimeout: meta.Duration(2 * time.Second), ReadTimeout: meta.Duration(3 * time.Second), MaxRetries: 3, ReadFromReplica: true, ClientCache: true}
			a.ConfigVersion = 2
			return nil
		})
		must(t, err)
		ev := waitEvent(t, evs, "config changed to v2", func(ev client.Event) bool { return ev.Type == client.EventConfigChanged && ev.ConfigVersion == 2 })
		if !ev.Rebuilt {
			t.Fatalf("config v2 changed rueidis settings but the event says no rebuild: %+v", ev)
		}
		if err := recvBounded(t, blpop, "BLPOP across the swap"); err != nil {
			t.Fatalf("a blocking command in flight across the config change failed: %v", err)
		}
		w.waitProgress(t, 20)
		// Reads now go to replicas.
		before := replicaGets()
		for range 200 {
			if err := c.Do(ctx, c.B().Get().Key(keys[1]).Build()).Error(); err != nil {
				t.Fatalf("GET after the change: %v", err)
			}
		}
		if got := replicaGets() - before; got < 200 {
			t.Fatalf("replicas served %d GETs of 200 after read_from_replica was turned on", got)
		}

		// Only the heartbeat interval: applied without a rebuild.
		_, _, err = e.st.App(e.app).Update(ctx, func(a *meta.App) error {
			a.Client.HeartbeatInterval = meta.Duration(30 * time.Second)
			a.ConfigVersion = 3
			return nil
		})
		must(t, err)
		ev = waitEvent(t, evs, "config changed to v3", func(ev client.Event) bool { return ev.Type == client.EventConfigChanged && ev.ConfigVersion == 3 })
		if ev.Rebuilt {
			t.Fatalf("a heartbeat-only change rebuilt the client: %+v", ev)
		}
		w.waitProgress(t, 20)
		w.halt()
		if f := w.failures.Load(); f > 0 {
			t.Fatalf("%d commands failed across the config changes; first: %v", f, *w.firstErr.Load())
		}
		if s := c.Stats(); s.Rebuilds != 1 || s.ConfigVersion != 3 {
			t.Fatalf("stats %+v: want 1 rebuild and config version 3", s)
		}
		w.verify(t, ctx, goRedis(t, rc))
		waitFor(t, "the registration to report config version 3", 30*time.Second, func() bool {
			rec, _, err := e.st.Client(e.app, c.ID()).Get(ctx)
			return err == nil && rec.ConfigVersion == 3
		})
	})
}

// TestClusterSwitch points the app at another cluster (a datacenter switch)
// while commands run: the client must build a new inner client for it, swap
// it in without failing a command, and send new commands there.
func TestClusterSwitch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testContext(t)
		from, to := sharedCluster(t), mutableCluster(t)
		e := newEnv(t, b.shared(t)(uniqueRoot(t)), "", from, meta.ClientConfig{})
		e.writeCluster("c2", to)
		onEv, evs := eventChan()
		c, err := client.New(ctx, e.options(onEv))
		must(t, err)
		defer func() { must(t, c.Close()) }()
		stop := make(chan struct{})
		writes := make(chan error, 8)
		for i := range 8 {
			go func() { writes <- writeUntil(ctx, c, fmt.Sprintf("switch:%s:%d", b.name, i), stop) }()
		}
		_, _, err = e.st.App(e.app).Update(ctx, func(a *meta.App) error {
			a.ActiveCluster = "c2"
			return nil
		})
		must(t, err)
		ev := waitEvent(t, evs, "switch to c2", func(ev client.Event) bool { return ev.Type == client.EventTopologyChanged && ev.Cluster == "c2" })
		if !ev.Rebuilt {
			t.Fatalf("switch event %+v: want Rebuilt", ev)
		}
		key := fmt.Sprintf("switched:%s:%x", b.name, rand.Uint32())
		must(t, c.Do(ctx, c.B().Set().Key(key).Value("in c2").Build()).Error())
		close(stop)
		for range 8 {
			if err := recvBounded(t, writes, "a writer"); err != nil {
				t.Fatalf("a command failed during the switch: %v", err)
			}
		}
		if v, err := goRedis(t, to).Get(ctx, key).Result(); err != nil || v != "in c2" {
			t.Fatalf("key written after the switch, read from c2: %q, %v", v, err)
		}
		if err := goRedis(t, from).Get(ctx, key).Err(); !errors.Is(err, redis.Nil) {
			t.Fatalf("key written after the switch, read from c1: %v, want redis.Nil", err)
		}
		if s := c.Stats(); s.Cluster != "c2" || s.Rebuilds != 1 {
			t.Fatalf("stats after the switch %+v", s)
		}
		// The old inner client drains and closes: the old cluster's nodes
		// see no connection of this client any more.
		waitFor(t, "the old cluster to see none of the client's connections", 30*time.Second, func() bool {
			return namedConns(t, ctx, from, "r2m-"+c.ID()) == 0
		})
		if n := namedConns(t, ctx, to, "r2m-"+c.ID()); n == 0 {
			t.Fatal("the new cluster sees no connection of the client")
		}
	})
}

// namedConns counts the connections with a client name across a cluster's
// nodes (CLIENT LIST).
func namedConns(t testing.TB, ctx context.Context, rc *testenv.RedisCluster, name string) int {
	t.Helper()
	n := 0
	for _, node := range rc.Nodes {
		out, err := nodeClient(t, node.Addr).ClientList(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		n += strings.Count(out, " name="+name+" ")
	}
	return n
}

// TestHeartbeatStats checks the stats the heartbeat writes into the
// registration record: summed over the windows, exactly the commands and
// errors the client sent, with latency percentiles and open connections.
func TestHeartbeatStats(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testContext(t)
		e := newEnv(t, b.shared(t)(uniqueRoot(t)), "", sharedCluster(t), meta.ClientConfig{})
		opts := e.options(nil)
		opts.HeartbeatInterval = 300 * time.Millisecond
		c, err := client.New(ctx, opts)
		must(t, err)
		defer func() { must(t, c.Close()) }()

		const ok, bad = 500, 7
		key := fmt.Sprintf("hb:%s:%x", b.name, rand.Uint32())
		for i := range ok {
			must(t, c.Do(ctx, c.B().Set().Key(fmt.Sprintf("%s:%d", key, i)).Value("v").Build()).Error())
		}
		must(t, c.Do(ctx, c.B().Set().Key(key+":str").Value("not a number").Build()).Error())
		for range bad {
			if err := c.Do(ctx, c.B().Incr().Key(key+":str").Build()).Error(); err == nil {
				t.Fatal("INCR of a string succeeded")
			}
		}
		want := int64(ok + 1 + bad)

		// Every heartbeat lasts one interval in the record; polling at a
		// tenth of it sees each one.
		seen := map[time.Time]meta.Heartbeat{}
		var rec *meta.Client
		waitFor(t, "the heartbeats to account for every command", 30*time.Second, func() bool {
			r, _, err := e.st.Client(e.app, c.ID()).Get(ctx)
			if err != nil {
				return false
			}
			rec = r
			seen[r.Heartbeat.At] = r.Heartbeat
			var cmds int64
			for _, hb := range seen {
				cmds += hb.Commands
			}
			return cmds >= want
		})
		var cmds, errs int64
		var p99 time.Duration
		for _, hb := range seen {
			cmds += hb.Commands
			errs += hb.Errors
			p99 = max(p99, time.Duration(hb.P99))
		}
		if cmds != want || errs != bad {
			t.Fatalf("heartbeats counted %d commands and %d errors; the client sent %d and %d failed", cmds, errs, want, bad)
		}
		if p99 <= 0 || rec.OpenConns <= 0 || rec.CreationSite == "" || rec.PID == 0 || rec.ProcessStart.IsZero() {
			t.Fatalf("registration record lacks stats or identity: %+v", rec)
		}
		if s := c.Stats(); s.Commands != want || s.Errors != bad {
			t.Fatalf("Stats() = %+v; want %d commands, %d errors", s, want, bad)
		}
	})
}
