package clientbench

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/r2m-go/r2m/client"
)

// TestHarness runs every part of the benchmarks briefly, so that the
// harness keeps working between benchmark runs: each client and
// redis-benchmark produce a rate, and topology changes reach clients in this
// process and in two child processes.
func TestHarness(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	r2m, err := client.New(ctx, w.options("bench"))
	must(t, err)
	defer func() { must(t, r2m.Close()) }()
	// One seed, as the R2M client gives its inner clients: given several,
	// rueidis dials them all and closes a dial that lands during its first
	// refresh on a goroutine that sleeps 5 s first, outliving Close and
	// failing the package's leak check at random.
	raw, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: w.rc.Addrs()[:1], DisableCache: true})
	must(t, err)
	defer raw.Close()
	gr := redis.NewClusterClient(&redis.ClusterOptions{Addrs: w.rc.Addrs()})
	defer gr.Close()
	for name, drv := range map[string]func() driver{
		"r2m":      func() driver { return &rueidisDriver{c: r2m} },
		"rueidis":  func() driver { return &rueidisDriver{c: raw} },
		"go-redis": func() driver { return goRedisDriver{gr} },
		"hot key":  func() driver { return hotDriver{c: r2m, hot: keys[:4]} },
	} {
		for _, depth := range []int{1, 16} {
			rate, err := measure(200*time.Millisecond, 8, drv, true, depth)
			if err != nil || rate <= 0 {
				t.Fatalf("%s SET P%d: %.0f cmds/s, %v", name, depth, rate, err)
			}
		}
	}
	if rate, err := redisBenchmark(w.rc.Nodes[0].Addr, false, 16, 8, 20_000); err != nil || rate <= 0 {
		t.Fatalf("redis-benchmark: %.0f, %v", rate, err)
	}

	a := newArrivals(10)
	cs, err := newClients(ctx, w.options("bench"), 10, func(_ int, ev client.Event) { a.add(ev.Epoch, time.Now()) })
	must(t, err)
	if lat := w.propagate(t, a, 1); len(lat) != 10 {
		t.Fatalf("one process: %d arrivals, want 10", len(lat))
	}
	must(t, closeAll(cs))
	if lat, _ := w.propagateChildren(t, newArrivals(10), 2, 10, 1); len(lat) != 10 {
		t.Fatalf("two processes: %d arrivals, want 10", len(lat))
	}
}
