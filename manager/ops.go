package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	clusterpkg "github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// opKind is one type of operation.
type opKind struct {
	// plan checks a request and computes what the operation will do. It
	// changes nothing, so it is also the dry run.
	plan func(ctx context.Context, req *opRequest) (*opPlan, error)
	// run carries the operation out. After a leader change it is called
	// again on the same record, so it must be idempotent: opExec.step skips
	// steps that already finished, and slot moves resume from their
	// persisted state.
	run func(ctx context.Context, x *opExec) error
	// creates is true for operations that bring a cluster into being, which
	// have no cluster record to check before they run.
	creates bool
	// movesSlots is true for operations that move slots, and so keys,
	// between a cluster's masters: they must not run on the source of a
	// migration link (sourceguard.go).
	movesSlots bool
}

// opRequest is an operation request as the API received it.
type opRequest struct {
	s        *Server
	Cluster  string
	Params   json.RawMessage
	User     string
	Throttle int // keys per second, 0 for no cap
}

// opPlan is a computed plan.
type opPlan struct {
	Steps  []string
	Detail any    // stored with the operation and shown by the dry run
	Text   string // the plan for people
	// Params, when set, is stored instead of the request's parameters:
	// plans strip secrets from it.
	Params json.RawMessage
	// Cluster is the record that an operation which creates a cluster
	// writes when it is accepted (state creating or adopting), and
	// Password its Redis password, kept apart in its credentials.
	Cluster  *meta.Cluster
	Password string
}

// storedPlan is what Operation.Plan holds.
type storedPlan struct {
	Params json.RawMessage `json:"params,omitempty"`
	Detail json.RawMessage `json:"detail,omitempty"`
	Text   string          `json:"text"`
}

// errOpCancelled ends a run that was cancelled through the API.
var errOpCancelled = errors.New("operation cancelled")

// newOpID returns an ID that sorts by creation time.
func newOpID(kind string) string {
	return time.Now().UTC().Format("20060102-150405") + "-" + kind + "-" + strings.ToLower(strings.NewReplacer("_", "x", "-", "y").Replace(randomString(4)))
}

// submitOp validates and plans a request and, unless it is a dry run,
// records the operation and claims its cluster. The leader's runner picks it
// up from there.
func (s *Server) submitOp(ctx context.Context, kindName string, req *opRequest, dryRun bool) (*meta.Operation, *opPlan, error) {
	kind, ok := s.kinds[kindName]
	if !ok {
		return nil, nil, notFound("no operation %q", kindName)
	}
	if err := meta.ValidateName("cluster", req.Cluster); err != nil {
		return nil, nil, badRequest("cluster", "%v", err)
	}
	if !kind.creates {
		if _, _, err := s.store.Cluster(req.Cluster).Get(ctx); errors.Is(err, coord.ErrNotFound) {
			return nil, nil, notFound("no cluster %q", req.Cluster)
		} else if err != nil {
			return nil, nil, err
		}
	}
	if kind.movesSlots {
		if err := s.checkNoLinkReads(ctx, req.Cluster); err != nil {
			return nil, nil, err
		}
	}
	plan, err := kind.plan(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	if dryRun {
		return nil, plan, nil
	}
	detail, err := json.Marshal(plan.Detail)
	if err != nil {
		return nil, nil, fmt.Errorf("encode plan: %w", err)
	}
	params := req.Params
	if plan.Params != nil {
		params = plan.Params
	}
	sp, err := json.Marshal(storedPlan{Params: params, Detail: detail, Text: plan.Text})
	if err != nil {
		return nil, nil, err
	}
	now := time.Now().UTC()
	op := &meta.Operation{
		ID: newOpID(kindName), Type: kindName, Cluster: req.Cluster, State: meta.OpPending,
		Plan: sp, CreatedBy: req.User, CreatedAt: now, UpdatedAt: now, Throttle: req.Throttle,
	}
	for _, st := range plan.Steps {
		op.Steps = append(op.Steps, meta.Step{Name: st, State: meta.OpPending})
	}
	if kind.creates {
		if err := s.createClusterRecord(ctx, plan); err != nil {
			return nil, nil, err
		}
	}
	// The claim comes first: an operation record without its claim would
	// be picked up by the runner while another operation holds the cluster.
	if err := s.store.ClusterLock(req.Cluster).Create(ctx, &meta.ClusterLock{Op: op.ID}); errors.Is(err, coord.ErrExists) {
		holder := "another operation"
		if l, _, err := s.store.ClusterLock(req.Cluster).Get(ctx); err == nil {
			holder = "operation " + l.Op
		}
		return nil, nil, conflict("cluster %q is busy: %s is running on it; wait for it, or cancel it", req.Cluster, holder)
	} else if err != nil {
		return nil, nil, err
	}
	if err := s.store.Op(op.ID).Create(ctx, op); err != nil {
		s.releaseCluster(req.Cluster, op.ID)
		return nil, nil, err
	}
	return op, plan, nil
}

// createClusterRecord writes the record (and credentials) of a cluster an
// operation is about to create or adopt. The record must exist before the
// cluster's claim node is created below it.
func (s *Server) createClusterRecord(ctx context.Context, plan *opPlan) error {
	c := plan.Cluster
	if c == nil {
		return errors.New("operation creates a cluster but its plan names none")
	}
	c.HasPassword = plan.Password != ""
	now := time.Now().UTC()
	c.CreatedAt, c.UpdatedAt = now, now
	if err := s.store.Cluster(c.Name).Create(ctx, c); errors.Is(err, coord.ErrExists) {
		return conflict("cluster %q already exists", c.Name)
	} else if err != nil {
		return err
	}
	if plan.Password != "" {
		if err := s.store.Credentials(c.Name).Create(ctx, &meta.Credentials{Password: plan.Password}); err != nil {
			return err
		}
	}
	return nil
}

// releaseCluster removes a cluster's claim if op still holds it.
func (s *Server) releaseCluster(cluster, op string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, ver, err := s.store.ClusterLock(cluster).Get(ctx)
	if err != nil || l.Op != op {
		return
	}
	if err := s.store.ClusterLock(cluster).Delete(ctx, ver); err != nil && !errors.Is(err, coord.ErrNotFound) {
		s.log.Error("cannot release the cluster claim; remove it with care", "cluster", cluster, "op", op, "err", err)
	}
}

// runOps is the leader's operation runner: it starts every unfinished
// operation and returns, after stopping them, when ctx ends. Operations
// stopped that way keep their state and the next leader resumes them.
func (s *Server) runOps(ctx context.Context) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		running  = make(map[string]bool)
		finished = make(map[string]bool) // known final; never read again
	)
	defer wg.Wait()
	retry := time.NewTicker(5 * time.Second)
	defer retry.Stop()
	watch := s.store.Ops().Watch(ctx)
	var names []string
	for {
		select {
		case ev := <-watch:
			if ev.Err != nil {
				return
			}
			names = ev.Children
		case <-retry.C:
			// Picks up an operation whose first read failed.
		case <-ctx.Done():
			return
		}
		for _, id := range names {
			mu.Lock()
			skip := running[id] || finished[id]
			mu.Unlock()
			if skip {
				continue
			}
			op, _, err := s.store.Op(id).Get(ctx)
			if err != nil {
				continue
			}
			if op.State.Done() {
				mu.Lock()
				finished[id] = true
				mu.Unlock()
				continue
			}
			mu.Lock()
			running[id] = true
			mu.Unlock()
			wg.Go(func() {
				done := s.execute(ctx, id)
				mu.Lock()
				delete(running, id)
				if done {
					finished[id] = true
				}
				mu.Unlock()
			})
		}
	}
}

// opControl carries API control changes to a running operation.
type opControl struct {
	mu       sync.Mutex
	paused   bool
	throttle int
	resumed  chan struct{} // closed and replaced when a pause ends
	changed  chan struct{} // receives after a pause, resume or throttle change
}

// execute runs one operation to its end, or until the leader's ctx ends.
// It reports whether the operation reached a final state.
func (s *Server) execute(leaderCtx context.Context, id string) bool {
	ref := s.store.Op(id)
	op, _, err := ref.Update(leaderCtx, func(o *meta.Operation) error {
		o.Owner = s.id
		if o.State == meta.OpPending {
			o.State = meta.OpRunning
		}
		o.UpdatedAt = time.Now().UTC()
		return nil
	})
	if err != nil {
		s.log.Warn("cannot claim operation", "op", id, "err", err)
		return false
	}
	log := s.log.With("op", id, "type", op.Type, "cluster", op.Cluster)
	kind, ok := s.kinds[op.Type]
	if !ok {
		s.finishOp(id, op.Cluster, fmt.Errorf("unknown operation type %q", op.Type), false, log)
		return true
	}
	ctx, cancel := context.WithCancelCause(leaderCtx)
	defer cancel(nil)
	ctl := &opControl{throttle: op.Throttle, resumed: make(chan struct{}), changed: make(chan struct{}, 1)}
	x := &opExec{s: s, id: id, op: op, ctl: ctl, log: log}

	// Follow API control changes on the record.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel(nil)
	wg.Go(func() { x.follow(ctx, cancel) })

	log.Info("operation running")
	runErr := kind.run(ctx, x)
	cancelled := errors.Is(context.Cause(ctx), errOpCancelled)
	if leaderCtx.Err() != nil && !cancelled {
		log.Info("operation stopped with the leadership; the next leader resumes it")
		return false
	}
	if cancelled {
		runErr = errOpCancelled
	}
	s.finishOp(id, op.Cluster, runErr, kind.creates && runErr != nil, log)
	return true
}

// finishOp records the final state, runs the check, and releases the
// cluster.
func (s *Server) finishOp(id, cluster string, runErr error, skipCheck bool, log interface {
	Info(string, ...any)
	Warn(string, ...any)
}) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	state := meta.OpSucceeded
	switch {
	case errors.Is(runErr, errOpCancelled):
		state = meta.OpCancelled
	case runErr != nil:
		state = meta.OpFailed
	}
	if state == meta.OpCancelled && !skipCheck {
		// A move stopped between commands can leave a slot open; close it
		// so a cancelled operation leaves the cluster consistent.
		if eng, v, err := s.inspect(ctx, cluster); err == nil && len(v.OpenSlots()) > 0 {
			if seed := reachableMaster(v, ""); seed != "" {
				rep, err := eng.Fix(ctx, seed, clusterpkg.FixOptions{})
				log.Info("closed open slots after cancel", "report", fmt.Sprint(rep), "err", err)
			}
		}
	}
	var findings []string
	checked := false
	if !skipCheck {
		if f, err := s.settledCheck(ctx, cluster); err != nil {
			findings = []string{"check could not run: " + err.Error()}
		} else {
			findings, checked = f, true
		}
	}
	_, _, err := s.store.Op(id).Update(ctx, func(o *meta.Operation) error {
		o.State = state
		o.UpdatedAt = time.Now().UTC()
		if runErr != nil && state == meta.OpFailed {
			o.Error = runErr.Error()
		}
		o.CheckFindings = findings
		if checked {
			o.CheckedAt = time.Now().UTC()
		}
		return nil
	})
	if err != nil {
		log.Warn("cannot record the operation's end", "err", err)
	}
	s.releaseCluster(cluster, id)
	log.Info("operation ended", "state", string(state), "err", runErr, "findings", len(findings))
}

// opExec is a running operation, as its kind's run function sees it.
type opExec struct {
	s   *Server
	id  string
	op  *meta.Operation // as claimed; Steps are kept current by step
	ctl *opControl
	log interface {
		Info(string, ...any)
		Warn(string, ...any)
	}

	progressMu   sync.Mutex
	lastProgress time.Time
}

// Op returns the operation record as it was claimed.
func (x *opExec) Op() *meta.Operation { return x.op }

// params decodes the request parameters stored with the operation.
func (x *opExec) params(v any) error {
	var sp storedPlan
	if err := json.Unmarshal(x.op.Plan, &sp); err != nil {
		return fmt.Errorf("operation %s: stored plan: %w", x.id, err)
	}
	if len(sp.Params) == 0 {
		return nil
	}
	return json.Unmarshal(sp.Params, v)
}

// follow applies pause, resume, cancel and throttle changes made through
// the API until ctx ends.
func (x *opExec) follow(ctx context.Context, cancel context.CancelCauseFunc) {
	for ev := range x.s.store.Op(x.id).Watch(ctx) {
		if ev.Value == nil {
			continue
		}
		o := ev.Value
		x.ctl.mu.Lock()
		switch {
		case o.State == meta.OpCancelling:
			x.ctl.mu.Unlock()
			cancel(errOpCancelled)
			continue
		case o.State == meta.OpPaused && !x.ctl.paused:
			x.ctl.paused = true
			x.log.Info("operation paused")
		case o.State == meta.OpRunning && x.ctl.paused:
			x.ctl.paused = false
			close(x.ctl.resumed)
			x.ctl.resumed = make(chan struct{})
			x.log.Info("operation resumed")
		}
		x.ctl.throttle = o.Throttle
		x.ctl.mu.Unlock()
		select {
		case x.ctl.changed <- struct{}{}:
		default:
		}
	}
}

// gate blocks while the operation is paused. Kinds call it between units of
// work (before each step, between slot batches).
func (x *opExec) gate(ctx context.Context) error {
	for {
		x.ctl.mu.Lock()
		paused, resumed := x.ctl.paused, x.ctl.resumed
		x.ctl.mu.Unlock()
		if !paused {
			return ctx.Err()
		}
		select {
		case <-resumed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// throttle returns the current key rate cap (0 = none) and a channel that
// receives when the controls change (throttle, pause, resume).
func (x *opExec) throttle() (int, <-chan struct{}) {
	x.ctl.mu.Lock()
	defer x.ctl.mu.Unlock()
	return x.ctl.throttle, x.ctl.changed
}

// step runs fn as the named step unless an earlier run finished it, and
// records its start and end on the operation.
func (x *opExec) step(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	i := -1
	for j, st := range x.op.Steps {
		if st.Name == name {
			i = j
		}
	}
	if i < 0 {
		return fmt.Errorf("operation %s: no step %q in its plan", x.id, name)
	}
	if x.op.Steps[i].State == meta.OpSucceeded {
		return nil
	}
	if err := x.gate(ctx); err != nil {
		return err
	}
	if err := x.setStep(ctx, i, meta.OpRunning, nil); err != nil {
		return err
	}
	err := fn(ctx)
	if ctx.Err() != nil {
		// Stopped (leadership lost, or cancelled): the step stays running
		// so that a resume runs it again.
		return ctx.Err()
	}
	state := meta.OpSucceeded
	if err != nil {
		state = meta.OpFailed
	}
	if serr := x.setStep(context.WithoutCancel(ctx), i, state, err); serr != nil && err == nil {
		return serr
	}
	if err != nil {
		return fmt.Errorf("step %q: %w", name, err)
	}
	return nil
}

func (x *opExec) setStep(ctx context.Context, i int, state meta.OpState, stepErr error) error {
	now := time.Now().UTC()
	o, _, err := x.s.store.Op(x.id).Update(ctx, func(o *meta.Operation) error {
		if i >= len(o.Steps) {
			return fmt.Errorf("operation %s: step %d missing from the record", x.id, i)
		}
		st := &o.Steps[i]
		st.State = state
		if state == meta.OpRunning {
			st.StartedAt, st.FinishedAt, st.Error = now, time.Time{}, ""
		} else {
			st.FinishedAt = now
		}
		if stepErr != nil {
			st.Error = stepErr.Error()
		}
		o.UpdatedAt = now
		return nil
	})
	if err != nil {
		return fmt.Errorf("operation %s: record step: %w", x.id, err)
	}
	x.op.Steps = o.Steps
	return nil
}

// progress records progress, at most once a second unless final is set.
func (x *opExec) progress(p meta.Progress, final bool) {
	x.progressMu.Lock()
	if !final && time.Since(x.lastProgress) < time.Second {
		x.progressMu.Unlock()
		return
	}
	x.lastProgress = time.Now()
	x.progressMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := x.s.store.Op(x.id).Update(ctx, func(o *meta.Operation) error {
		o.Progress = p
		o.UpdatedAt = time.Now().UTC()
		return nil
	}); err != nil {
		x.log.Warn("cannot record progress", "err", err)
	}
}
