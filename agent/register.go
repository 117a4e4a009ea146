package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/backoff"
	"github.com/r2m-go/r2m/internal/buildinfo"
	"github.com/r2m-go/r2m/meta"
)

// register keeps the agent registered until ctx ends: the persistent host
// record /agents/{host} and the ephemeral /agents/{host}/live. It follows
// the session's events: a new session (the first one, or the one after an
// expiry, whose ephemerals the server deleted) gets a new live record;
// attempts that fail during an outage are retried with backoff and again
// when the connection returns.
func (a *Agent) register(ctx context.Context) {
	events := a.opts.Coordinator.SessionEvents(ctx)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	bo := backoff.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second}
	registered := false
	// While an earlier agent's live record is in the way, a watch on it
	// says when its session has ended, so registration follows at once.
	var (
		held       <-chan coord.NodeEvent
		stopHeld   context.CancelFunc = func() {}
		unwatchOld                    = func() { stopHeld(); held = nil }
	)
	defer func() { unwatchOld() }()
	attempt := func() {
		err := a.registerOnce(ctx)
		switch {
		case err == nil:
			registered = true
			bo.Reset()
			retry.Stop()
			unwatchOld()
		case ctx.Err() != nil:
		default:
			d := bo.Next()
			switch {
			case errors.Is(err, errHeld) && held == nil:
				var wctx context.Context
				wctx, stopHeld = context.WithCancel(ctx)
				held = a.opts.Coordinator.Watch(wctx, a.store.AgentLive(a.opts.Host).Path())
				a.log.Info("waiting for an earlier agent's live record to go", "err", err)
				d = heldRetry // the watch normally reports first
			case errors.Is(err, errHeld):
				d = heldRetry
			default:
				a.log.Warn("agent registration failed; retrying", "err", err, "retry_in", d)
			}
			retry.Reset(d)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-held:
			switch {
			case !ok || ev.Err != nil:
				unwatchOld()
			case ev.Node == nil && !registered:
				unwatchOld()
				attempt()
			}
		case ev, ok := <-events:
			if !ok {
				return
			}
			switch ev.State {
			case coord.SessionConnected:
				// A new session has none of our ephemerals.
				registered = false
				attempt()
			case coord.SessionReconnected:
				if !registered {
					attempt()
				}
			case coord.SessionExpired:
				registered = false
				a.log.Warn("coordinator session expired; the live record is gone until the new session re-creates it", "session", ev.SessionID)
			case coord.SessionClosed:
				a.log.Warn("coordinator closed while the agent runs; instances stay supervised, but registration and reports stop")
				return
			}
		case <-retry.C:
			if !registered {
				attempt()
			}
		}
	}
}

// heldRetry is how often registration is retried while another session's
// live record is watched, in case the watch misses its end.
const heldRetry = 5 * time.Second

// errHeld: the live record exists and belongs to another session.
var errHeld = errors.New("held by another session")

// registerOnce writes the host record and creates the live record. An
// existing live record owned by this session (a create whose reply was lost)
// counts as success; one owned by another session is an agent that ran
// before this one and died, and goes when its session times out.
func (a *Agent) registerOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.opts.CoordTimeout)
	defer cancel()
	if err := a.writeHostRecord(ctx); err != nil {
		return err
	}
	live := a.store.AgentLive(a.opts.Host)
	err := live.CreateEphemeral(ctx, &meta.AgentLive{PID: os.Getpid(), Version: buildinfo.Version, StartedAt: a.startedAt})
	if errors.Is(err, coord.ErrExists) {
		n, gerr := a.opts.Coordinator.Get(ctx, live.Path())
		switch {
		case gerr != nil:
			return fmt.Errorf("agent: create live record %s: it exists, and reading it failed: %w", live.Path(), gerr)
		case n.Owner == a.opts.Coordinator.SessionID():
			err = nil
		default:
			return fmt.Errorf("agent: create live record %s: %w: session %s holds it (an earlier agent for host %s, gone once that session times out, or another agent using the same host name)",
				live.Path(), errHeld, n.Owner, a.opts.Host)
		}
	}
	if err != nil {
		return fmt.Errorf("agent: create live record %s: %w", live.Path(), err)
	}
	a.log.Info("agent registered", "live", live.Path(), "session", a.opts.Coordinator.SessionID())
	return nil
}

// writeHostRecord creates or refreshes /agents/{host}. The node may exist
// with no data: creating /agents/{host}/desired (which the manager may do
// first) creates its missing ancestors as empty nodes, which meta cannot
// decode. Such a placeholder is overwritten with a compare-and-set on its
// version; a node with other undecodable data is left alone.
func (a *Agent) writeHostRecord(ctx context.Context) error {
	host := a.store.Agent(a.opts.Host)
	now := time.Now().UTC().Truncate(time.Millisecond)
	fill := func(r *meta.Agent) error {
		r.Host = a.opts.Host
		r.Addr = a.opts.BindAddr
		r.MemoryBytes = a.memoryBytes
		r.MaxInstances = a.opts.MaxInstances
		r.Datacenter = a.opts.Datacenter
		if r.RegisteredAt.IsZero() {
			r.RegisteredAt = now
		}
		return nil
	}
	_, _, err := host.Upsert(ctx, fill)
	if errors.Is(err, meta.ErrBadRecord) {
		n, gerr := a.opts.Coordinator.Get(ctx, host.Path())
		if gerr == nil && len(n.Data) == 0 {
			r := &meta.Agent{}
			_ = fill(r)
			_, err = host.Set(ctx, r, n.Version)
		}
	}
	if err != nil {
		return fmt.Errorf("agent: write host record %s: %w", host.Path(), err)
	}
	return nil
}

// deregister deletes the live record if this session owns it. It runs as
// Run ends, with its own bounded context.
func (a *Agent) deregister() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.opts.CoordTimeout)
	defer cancel()
	live := a.store.AgentLive(a.opts.Host)
	n, err := a.opts.Coordinator.Get(ctx, live.Path())
	switch {
	case errors.Is(err, coord.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("agent: delete live record %s: read: %w (it vanishes when the coordinator session ends)", live.Path(), err)
	case n.Owner != a.opts.Coordinator.SessionID():
		return nil // not ours: a later or earlier agent's
	}
	if err := a.opts.Coordinator.Delete(ctx, live.Path(), n.Version); err != nil && !errors.Is(err, coord.ErrNotFound) {
		return fmt.Errorf("agent: delete live record %s: %w (it vanishes when the coordinator session ends)", live.Path(), err)
	}
	a.log.Info("agent deregistered", "live", live.Path())
	return nil
}

// totalMemory reads MemTotal from /proc/meminfo, or returns 0.
func totalMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}
