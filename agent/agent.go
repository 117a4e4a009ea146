package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/backoff"
	"github.com/r2m-go/r2m/meta"
)

// Agent supervises the redis-server instances of one host. Make one with
// [New] and call [Agent.Run] once.
type Agent struct {
	opts        Options
	store       *meta.Store
	log         *slog.Logger
	memoryBytes int64
	startedAt   time.Time
	board       *board

	mu  sync.Mutex
	ran bool

	// Set up by Run and owned by its goroutine (the reconcile loop).
	dataDir  string              // DataDir with symlinks resolved, as /proc shows it
	want     *meta.DesiredState  // the desired state being applied; nil while unknown
	sups     map[int]*supervisor // desired instances
	retiring map[int]*supervisor // instances being stopped and removed
	invalid  map[int]bool        // desired entries that cannot run (bad port)
	retired  chan int            // a retiring supervisor has finished
	runDone  chan struct{}       // closed when the reconcile loop has stopped
	wg       sync.WaitGroup      // every goroutine Run starts
}

// New checks opts and returns an Agent. It starts nothing.
func New(opts Options) (*Agent, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	mem := o.MemoryBytes
	if mem == 0 {
		mem = totalMemory()
	}
	return &Agent{
		opts:        o,
		store:       meta.NewStore(o.Coordinator),
		log:         o.Logger.With("host", o.Host),
		memoryBytes: mem,
		board:       newBoard(),
	}, nil
}

// desiredUpdate is one report of the desired-state watch; state is nil
// when the record does not exist.
type desiredUpdate struct{ state *meta.DesiredState }

// Run registers the agent, applies the desired state of its host until ctx
// ends, and reports the actual state. It returns after every goroutine it
// started has ended and the live record has been deleted.
//
// The redis-server processes keep running when Run returns, unless
// Options.StopOnExit is set: the next agent for this DataDir adopts them.
// Run fails at once if DataDir cannot be used or another agent holds it
// (ErrLocked). Otherwise it returns nil when ctx ends, or the errors of
// its shutdown steps joined (a live record it could not delete because the
// coordinator was unreachable; instances StopOnExit could not stop).
//
// Run keeps supervising through coordinator outages, on the last desired
// state it saw; after a restart during an outage, on the copy of it kept in
// DataDir.
func (a *Agent) Run(ctx context.Context) (err error) {
	a.mu.Lock()
	if a.ran {
		a.mu.Unlock()
		return ErrAlreadyRun
	}
	a.ran = true
	a.mu.Unlock()

	lock, dataDir, err := lockDataDir(a.opts.DataDir)
	if err != nil {
		return err
	}
	defer lock.Close() // releases the flock
	a.dataDir = dataDir
	a.startedAt = time.Now().UTC().Truncate(time.Millisecond)
	a.sups = make(map[int]*supervisor)
	a.retiring = make(map[int]*supervisor)
	a.invalid = make(map[int]bool)
	a.retired = make(chan int)
	a.runDone = make(chan struct{})
	cached := a.loadCache()

	a.log.Info("agent starting", "data_dir", a.dataDir, "bind", a.opts.BindAddr, "coordinator", a.opts.Coordinator.String())
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	desired := make(chan desiredUpdate, 1)
	a.wg.Go(func() { a.register(runCtx) })
	a.wg.Go(func() { a.watchDesired(runCtx, desired) })
	a.wg.Go(func() { a.report(runCtx) })

	// Until the coordinator answers, or for CoordTimeout, nothing is
	// started or stopped: the desired state may have changed while the
	// agent was away. After that, the local copy stands in for it.
	startup := time.NewTimer(a.opts.CoordTimeout)
	defer startup.Stop()
	resync := time.NewTicker(a.opts.ResyncInterval)
	defer resync.Stop()
	heard := false
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case u := <-desired:
			heard = true
			switch {
			case u.state != nil:
				a.want = u.state
				a.saveCache(u.state)
			case a.want == nil && cached != nil:
				a.log.Warn("no desired state in the coordinator; keeping the local copy", "generation", cached.Generation)
				a.want = cached
			case a.want == nil:
				a.log.Info("no desired state in the coordinator yet; nothing to start or stop")
			default:
				a.log.Warn("desired state record does not exist; keeping the current one (an empty instance list stops everything)")
			}
			a.reconcile(runCtx, false)
		case <-startup.C:
			if !heard && cached != nil {
				a.log.Warn("coordinator has not answered; running on the local copy of the desired state",
					"generation", cached.Generation, "waited", a.opts.CoordTimeout)
				a.want = cached
				a.reconcile(runCtx, false)
			}
		case port := <-a.retired:
			delete(a.retiring, port)
			a.reconcile(runCtx, false)
		case <-resync.C:
			a.reconcile(runCtx, true)
		}
	}

	a.log.Info("agent stopping")
	cancel()
	close(a.runDone)
	a.wg.Wait()
	var errs []error
	if a.opts.StopOnExit {
		sctx, scancel := context.WithTimeout(context.Background(), a.opts.StopTimeout+killWait+time.Second)
		errs = append(errs, a.stopAll(sctx, a.dataDir))
		scancel()
		a.finalReport()
	}
	errs = append(errs, a.deregister())
	err = errors.Join(errs...)
	if err != nil {
		a.log.Warn("agent stopped with errors", "err", err)
	} else {
		a.log.Info("agent stopped")
	}
	return err
}

// reconcile makes the supervisors match a.want: new instances get a
// supervisor, changed ones their new spec (every one on a resync, which
// re-reads passwords), removed ones are retired, and instance directories
// that nothing wants (left by an earlier agent) are stopped and removed.
func (a *Agent) reconcile(ctx context.Context, resync bool) {
	if a.want == nil {
		return
	}
	want := make(map[int]meta.Instance, len(a.want.Instances))
	invalid := make(map[int]bool)
	for _, in := range a.want.Instances {
		if err := validatePort(in.Port); err != nil {
			a.log.Error("desired instance cannot run", "port", in.Port, "err", err)
			invalid[in.Port] = true
			a.board.set(meta.InstanceStatus{Port: in.Port, Cluster: in.Cluster, State: StateStopped,
				Error: fmt.Sprintf("agent: instance %d: invalid desired instance: %v", in.Port, err)})
			continue
		}
		if prev, dup := want[in.Port]; dup {
			a.log.Error("desired state lists a port twice; the first entry wins", "port", in.Port, "clusters", []string{prev.Cluster, in.Cluster})
			continue
		}
		want[in.Port] = in
	}
	for port := range a.invalid {
		if !invalid[port] {
			a.board.remove(port)
		}
	}
	a.invalid = invalid
	for port, s := range a.sups {
		if _, ok := want[port]; !ok {
			a.log.Info("instance no longer desired", "port", port, "generation", a.want.Generation)
			close(s.retire)
			a.retiring[port] = s
			delete(a.sups, port)
		}
	}
	for port, in := range want {
		if s, ok := a.sups[port]; ok {
			if resync || s.sent != in {
				s.update(in)
			}
			continue
		}
		if _, busy := a.retiring[port]; busy {
			continue // re-added while being removed: started once removed
		}
		s := a.newSupervisor(port)
		s.sent = in
		a.sups[port] = s
		a.wg.Go(func() { s.run(ctx, in, false) })
	}
	a.sweep(ctx, want)
	a.board.setGeneration(a.want.Generation)
}

// sweep retires instance directories that are neither desired nor already
// supervised: instances removed from the desired state while no agent ran.
func (a *Agent) sweep(ctx context.Context, want map[int]meta.Instance) {
	entries, err := os.ReadDir(a.dataDir)
	if err != nil {
		a.log.Error("cannot list the data directory", "dir", a.dataDir, "err", err)
		return
	}
	for _, e := range entries {
		port, ok := portOfDir(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		_, wanted := want[port]
		_, supervised := a.sups[port]
		_, busy := a.retiring[port]
		if wanted || supervised || busy {
			continue
		}
		s := a.newSupervisor(port)
		a.retiring[port] = s
		a.wg.Go(func() { s.run(ctx, meta.Instance{Port: port}, true) })
	}
}

// watchDesired feeds the desired state into out (capacity 1, newest
// wins) until ctx ends. The coordinator's watch resumes by itself after
// reconnections; it is re-opened only if it fails otherwise.
func (a *Agent) watchDesired(ctx context.Context, out chan desiredUpdate) {
	ref := a.store.Desired(a.opts.Host)
	bo := backoff.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
	for {
		stop := false
		for ev := range ref.Watch(ctx) {
			switch {
			case ev.Err != nil && (ctx.Err() != nil || errors.Is(ev.Err, coord.ErrClosed)):
				if ctx.Err() == nil {
					a.log.Warn("coordinator closed while the agent runs; keeping the last desired state", "err", ev.Err)
				}
				stop = true
			case ev.Err != nil:
				a.log.Warn("desired state watch ended; watching again", "path", ref.Path(), "err", ev.Err)
			case ev.Invalid != nil:
				a.log.Error("desired state record is unreadable; keeping the last good one", "path", ref.Path(), "err", ev.Invalid)
			default:
				select { // replace an update the loop has not taken yet
				case <-out:
				default:
				}
				out <- desiredUpdate{state: ev.Value}
			}
		}
		if stop || bo.Wait(ctx) != nil {
			return
		}
	}
}

// StopAll stops every redis-server instance under DataDir (gracefully,
// then with SIGKILL) and leaves their directories and data in place, so the
// next Run starts them again with their data and cluster identity. It must
// not run while Run does: it fails with ErrLocked then.
func (a *Agent) StopAll(ctx context.Context) error {
	lock, dataDir, err := lockDataDir(a.opts.DataDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	return a.stopAll(ctx, dataDir)
}

// stopAll stops the instances under dataDir, in parallel.
func (a *Agent) stopAll(ctx context.Context, dataDir string) error {
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		return fmt.Errorf("agent: stop all: list %s: %w", dataDir, err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, e := range entries {
		port, ok := portOfDir(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		p, err := findInstance(ctx, instanceDir(dataDir, port), port)
		if err != nil {
			errs = append(errs, fmt.Errorf("agent: instance %d: stop: %w", port, err))
			continue
		}
		if p == nil {
			continue
		}
		wg.Go(func() {
			a.log.Info("stopping redis-server", "port", port, "pid", p.pid, "why", "agent exits with StopOnExit")
			if err := p.stop(a.opts.StopTimeout); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("agent: instance %d: stop: %w", port, err))
				mu.Unlock()
				return
			}
			a.board.set(meta.InstanceStatus{Port: port, State: StateStopped})
			a.log.Info("redis-server stopped", "port", port, "pid", p.pid, "how", p.exit)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// finalReport marks every instance stopped in the actual state, best
// effort, after StopOnExit.
func (a *Agent) finalReport() {
	a.board.mu.Lock()
	for port, st := range a.board.instances {
		st.State, st.PID, st.Error = StateStopped, 0, ""
		a.board.instances[port] = st
	}
	a.board.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), a.opts.CoordTimeout)
	defer cancel()
	if _, _, err := a.store.Actual(a.opts.Host).Upsert(ctx, func(rec *meta.ActualState) error {
		a.board.fill(rec)
		return nil
	}); err != nil {
		a.log.Warn("cannot write the final actual state", "err", err)
	}
}

// lockDataDir creates the data directory if need be and takes its lock:
// an exclusive flock on agent.lock, held until the returned file is closed
// (or the process dies). It returns the directory with symlinks resolved.
func lockDataDir(dir string) (*os.File, string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("agent: data directory: %w", err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, "", fmt.Errorf("agent: data directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(real, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("agent: data directory lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, "", fmt.Errorf("%w: %s", ErrLocked, real)
		}
		return nil, "", fmt.Errorf("agent: data directory lock: %w", err)
	}
	// For an operator wondering who holds it.
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, real, nil
}

// loadCache reads the local copy of the last desired state, or nil.
func (a *Agent) loadCache() *meta.DesiredState {
	b, err := os.ReadFile(filepath.Join(a.dataDir, desiredName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var d meta.DesiredState
	if err == nil {
		err = json.Unmarshal(b, &d)
	}
	if err == nil && (d.V == 0 || d.V > meta.DesiredStateSchema) {
		err = fmt.Errorf("schema version %d, this agent knows %d", d.V, meta.DesiredStateSchema)
	}
	if err != nil {
		a.log.Warn("ignoring the local copy of the desired state", "file", filepath.Join(a.dataDir, desiredName), "err", err)
		return nil
	}
	return &d
}

// saveCache keeps a copy of the desired state in DataDir, for a restart
// during a coordinator outage. It holds no secrets: passwords stay in the
// coordinator and in the instances' own config files.
func (a *Agent) saveCache(d *meta.DesiredState) {
	c := *d
	c.V = meta.DesiredStateSchema
	b, err := json.Marshal(&c)
	if err == nil {
		err = writeFileAtomic(filepath.Join(a.dataDir, desiredName), b, 0o600)
	}
	if err != nil {
		a.log.Warn("cannot save the local copy of the desired state", "err", err)
	}
}
