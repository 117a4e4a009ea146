package clientbench

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/r2m-go/r2m/client"
)

var (
	propClients = flag.Int("r2m.clients", 1000, "clients in the propagation benchmark")
	propRounds  = flag.Int("r2m.proprounds", 5, "topology changes measured in the propagation benchmark")
)

// The propagation benchmark spreads clients over child processes: the test
// binary started again with these variables set runs runChild instead of
// the tests.
const (
	childEnv     = "R2M_BENCH_CHILD"
	childURLEnv  = "R2M_BENCH_URL"
	childAppEnv  = "R2M_BENCH_APP"
	childNEnv    = "R2M_BENCH_CLIENTS"
	childReady   = "READY"
	childEventID = "EV"
)

// newClients creates n clients concurrently; onTopology gets each client's
// index and every topology event it receives.
func newClients(ctx context.Context, opts client.Options, n int, onTopology func(i int, ev client.Event)) ([]*client.Client, error) {
	cs := make([]*client.Client, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			o := opts
			o.RueidisOption = smallBuffers
			o.OnEvent = func(ev client.Event) {
				if ev.Type == client.EventTopologyChanged {
					onTopology(i, ev)
				}
			}
			cs[i], errs[i] = client.New(ctx, o)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(cs)
		return nil, err
	}
	return cs, nil
}

func closeAll(cs []*client.Client) error {
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		if c != nil {
			wg.Go(func() { errs[i] = c.Close() })
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// runChild is a child process: it creates its clients, says READY, prints
// "EV <epoch> <unix nanoseconds>" for each topology event, and closes its
// clients when its standard input ends.
func runChild() int {
	n, _ := strconv.Atoi(os.Getenv(childNEnv))
	opts := client.Options{Coordinator: os.Getenv(childURLEnv), App: os.Getenv(childAppEnv), Name: "bench-child"}
	opts.Logger = nil
	lines := make(chan string, 4*n)
	cs, err := newClients(context.Background(), opts, n, func(_ int, ev client.Event) {
		lines <- fmt.Sprintf("%s %d %d", childEventID, ev.Epoch, time.Now().UnixNano())
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, childReady)
	out.Flush()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	for {
		select {
		case l := <-lines:
			fmt.Fprintln(out, l)
			if len(lines) == 0 {
				out.Flush()
			}
		case <-done:
			out.Flush()
			if err := closeAll(cs); err != nil {
				fmt.Fprintln(os.Stderr, "child: close:", err)
				return 1
			}
			return 0
		}
	}
}

// arrivals collects, per epoch, the time each client saw it.
type arrivals struct {
	mu   sync.Mutex
	m    map[int64][]time.Time
	want int
	full map[int64]chan struct{}
}

func newArrivals(want int) *arrivals {
	return &arrivals{m: map[int64][]time.Time{}, want: want, full: map[int64]chan struct{}{}}
}

func (a *arrivals) wait(epoch int64) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.full[epoch] == nil {
		a.full[epoch] = make(chan struct{})
	}
	return a.full[epoch]
}

func (a *arrivals) add(epoch int64, at time.Time) {
	ch := a.wait(epoch)
	a.mu.Lock()
	a.m[epoch] = append(a.m[epoch], at)
	if len(a.m[epoch]) == a.want {
		close(ch)
	}
	a.mu.Unlock()
}

// propagate changes the topology record rounds times and returns, for every
// client and round, the time from the CAS write to the client's event.
func (w *world) propagate(tb testing.TB, a *arrivals, rounds int) []time.Duration {
	ctx := context.Background()
	var lat []time.Duration
	for range rounds {
		tp, version, err := w.st.Topology("c1").Get(ctx)
		must(tb, err)
		tp.Epoch, tp.UpdatedAt = tp.Epoch+1, time.Now().UTC()
		epoch := tp.Epoch
		full := a.wait(epoch)
		start := time.Now() // the compare-and-set write starts
		_, err = w.st.Topology("c1").Set(ctx, tp, version)
		must(tb, err)
		select {
		case <-full:
		case <-time.After(60 * time.Second):
			a.mu.Lock()
			got := len(a.m[epoch])
			a.mu.Unlock()
			tb.Fatalf("only %d of %d clients saw epoch %d within 60s", got, a.want, epoch)
		}
		a.mu.Lock()
		for _, at := range a.m[epoch] {
			lat = append(lat, at.Sub(start))
		}
		a.mu.Unlock()
	}
	return lat
}

func summary(lat []time.Duration) (p50, p99, maxd time.Duration) {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*99/100], s[len(s)-1]
}

// BenchmarkPropagation measures, for 1,000 clients, the time from the
// compare-and-set write of a topology record to each client's topology
// event: all clients in this process (one coordinator session, one watch),
// and spread over four child processes (four sessions).
func BenchmarkPropagation(b *testing.B) {
	w := newWorld(b)
	n := *propClients

	// One process.
	a := newArrivals(n)
	start := time.Now()
	cs, err := newClients(context.Background(), w.options("bench"), n, func(_ int, ev client.Event) { a.add(ev.Epoch, time.Now()) })
	must(b, err)
	created := time.Since(start)
	lat := w.propagate(b, a, *propRounds)
	must(b, closeAll(cs))
	p50, p99, mx := summary(lat)
	fmt.Printf("\nPropagation (load average %s), %d clients in 1 process (created in %v), %d changes: p50 %v, p99 %v, max %v\n",
		loadavg(), n, created.Round(time.Millisecond), *propRounds, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), mx.Round(10*time.Microsecond))
	b.ReportMetric(float64(p99.Microseconds())/1000, "1proc_p99_ms")

	// Four processes.
	const procs = 4
	a = newArrivals(n)
	lat, created = w.propagateChildren(b, a, procs, n, *propRounds)
	p50, p99, mx = summary(lat)
	fmt.Printf("Propagation, %d clients in %d processes (created in %v), %d changes: p50 %v, p99 %v, max %v\n\n",
		n, procs, created.Round(time.Millisecond), *propRounds, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), mx.Round(10*time.Microsecond))
	b.ReportMetric(float64(p99.Microseconds())/1000, "4proc_p99_ms")
}

// propagateChildren starts procs children holding n clients between them
// and measures propagation to all of them.
func (w *world) propagateChildren(tb testing.TB, a *arrivals, procs, n, rounds int) ([]time.Duration, time.Duration) {
	var (
		ready sync.WaitGroup
		wg    sync.WaitGroup
		stdin []io.WriteCloser
		cmds  []*exec.Cmd
		bad   atomic.Pointer[error]
	)
	start := time.Now()
	for p := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=1", childURLEnv+"="+w.url, childAppEnv+"=bench",
			childNEnv+"="+strconv.Itoa(n/procs+boolInt(p < n%procs)))
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		must(tb, err)
		out, err := cmd.StdoutPipe()
		must(tb, err)
		must(tb, cmd.Start())
		stdin, cmds = append(stdin, in), append(cmds, cmd)
		ready.Add(1)
		wg.Go(func() {
			sc := bufio.NewScanner(out)
			isReady := false
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				switch {
				case len(f) == 1 && f[0] == childReady:
					isReady = true
					ready.Done()
				case len(f) == 3 && f[0] == childEventID:
					epoch, _ := strconv.ParseInt(f[1], 10, 64)
					ns, _ := strconv.ParseInt(f[2], 10, 64)
					a.add(epoch, time.Unix(0, ns))
				}
			}
			if !isReady {
				err := fmt.Errorf("child %d ended before it was ready", p)
				bad.CompareAndSwap(nil, &err)
				ready.Done()
			}
		})
	}
	stop := func() {
		for _, in := range stdin {
			in.Close()
		}
		wg.Wait()
		for _, c := range cmds {
			if err := c.Wait(); err != nil {
				tb.Errorf("child: %v", err)
			}
		}
	}
	ready.Wait()
	if e := bad.Load(); e != nil {
		stop()
		tb.Fatal(*e)
	}
	created := time.Since(start)
	lat := w.propagate(tb, a, rounds)
	stop()
	return lat, created
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
