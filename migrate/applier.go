package migrate

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// unit is what an applier applies in one piece: the commands one source
// command or one MULTI/EXEC produced for one slot.
type unit struct {
	sh      *shard
	db      int // source database, for a keyed resync
	slot    int
	cmds    [][]string
	keys    []string // keys the commands write, for a keyed resync
	tx      bool     // send as MULTI … EXEC
	ck      bool     // exactly-once: set the slot's checkpoint in the same transaction
	restart bool     // on a retry, send every command again (it begins with DEL)
	resync  bool     // keys only: copy their current values from the source
	offset  int64    // stream offset after the unit's last source command
	rdb     bool     // from the RDB phase
	done    atomic.Bool
}

// tracker follows one shard's units in dispatch order, so that the shard's
// applied offset is the offset below which everything was applied.
type tracker struct {
	mu         sync.Mutex
	q          []*unit
	dispatched int64 // offset of the last source command handed to the planner
	applied    int64
	rdbPending int // RDB units not yet applied
	idle       chan struct{}
}

func newTracker(start int64) *tracker {
	return &tracker{dispatched: start, applied: start}
}

func (t *tracker) add(u *unit) {
	t.mu.Lock()
	t.q = append(t.q, u)
	if u.rdb {
		t.rdbPending++
	}
	t.mu.Unlock()
}

// consumed records that every source command up to offset was handed to
// the planner.
func (t *tracker) consumed(offset int64) {
	t.mu.Lock()
	t.dispatched = offset
	if len(t.q) == 0 {
		t.applied = max(t.applied, offset)
	}
	t.mu.Unlock()
}

func (t *tracker) finish(u *unit) {
	u.done.Store(true)
	t.mu.Lock()
	defer t.mu.Unlock()
	if u.rdb {
		t.rdbPending--
	}
	i := 0
	for i < len(t.q) && t.q[i].done.Load() {
		t.applied = max(t.applied, t.q[i].offset)
		t.q[i] = nil
		i++
	}
	t.q = t.q[i:]
	if len(t.q) == 0 {
		t.applied = max(t.applied, t.dispatched)
		if t.idle != nil {
			close(t.idle)
			t.idle = nil
		}
	}
}

func (t *tracker) appliedOffset() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.applied
}

// waitIdle waits until every unit handed out so far was applied.
func (t *tracker) waitIdle(ctx context.Context) error {
	t.mu.Lock()
	if len(t.q) == 0 {
		t.mu.Unlock()
		return nil
	}
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	ch := t.idle
	t.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// limiter is a token bucket of commands per second; zero rate means none.
type limiter struct {
	mu     sync.Mutex
	rate   int
	tokens float64
	last   time.Time
}

func (l *limiter) set(rate int) {
	l.mu.Lock()
	l.rate, l.tokens, l.last = rate, 0, time.Now()
	l.mu.Unlock()
}

// wait takes n tokens. A batch larger than the bucket is let through and
// leaves a debt that later batches wait for, so the average holds whatever
// the batch sizes.
func (l *limiter) wait(ctx context.Context, n int) error {
	for {
		l.mu.Lock()
		if l.rate <= 0 {
			l.mu.Unlock()
			return nil
		}
		now := time.Now()
		burst := float64(max(l.rate/10, 1))
		l.tokens = min(burst, l.tokens+now.Sub(l.last).Seconds()*float64(l.rate))
		l.last = now
		if l.tokens >= 0 {
			l.tokens -= float64(n)
			l.mu.Unlock()
			return nil
		}
		need := time.Duration(-l.tokens / float64(l.rate) * float64(time.Second))
		l.mu.Unlock()
		tm := time.NewTimer(need)
		select {
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		case <-tm.C:
		}
	}
}

// applier applies the units of a fixed set of slots, in order, one
// pipeline at a time.
type applier struct {
	l  *Link
	in chan *unit // owned by the Link: closed when every shard stopped
}

// job is a unit in flight with how far it got.
type job struct {
	u    *unit
	next int    // first command not yet applied (non-transactional units)
	ask  string // node an ASK redirected to
	bad  bool   // a data error: resync after the batch
}

func (a *applier) run(ctx context.Context) {
	batch := make([]*unit, 0, a.l.opts.Window)
	for {
		var u *unit
		select {
		case u = <-a.in:
		case <-ctx.Done():
			return
		}
		if u == nil {
			return
		}
		batch = append(batch[:0], u)
		n := len(u.cmds)
	fill:
		for n < a.l.opts.Window {
			select {
			case u := <-a.in:
				if u == nil {
					break fill
				}
				batch = append(batch, u)
				n += len(u.cmds) + 1
			default:
				break fill
			}
		}
		if err := a.apply(ctx, batch); err != nil {
			return // ctx ended
		}
		for _, u := range batch {
			u.sh.tr.finish(u)
		}
	}
}

// isRedirect classifies an error reply: move (MOVED), ask (ASK) or
// retry (TRYAGAIN, CLUSTERDOWN, LOADING, transport errors).
func classify(err error) (kind string, addr string) {
	if err == nil {
		return "", ""
	}
	re, ok := rueidis.IsRedisErr(err)
	if !ok {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return "ctx", ""
		}
		return "net", ""
	}
	if a, ok := re.IsMoved(); ok {
		return "moved", a
	}
	if a, ok := re.IsAsk(); ok {
		return "ask", a
	}
	msg := re.Error()
	if re.IsTryAgain() || strings.HasPrefix(msg, "CLUSTERDOWN") || strings.HasPrefix(msg, "LOADING") ||
		strings.HasPrefix(msg, "MASTERDOWN") || strings.HasPrefix(msg, "READONLY") {
		return "retry", ""
	}
	return "data", ""
}

// apply applies a batch, retrying redirected and failed commands, and
// repairs units that got data errors with a keyed resync. It returns only
// ctx's error.
func (a *applier) apply(ctx context.Context, batch []*unit) error {
	jobs := make([]*job, 0, len(batch))
	for _, u := range batch {
		if len(u.cmds) > 0 {
			jobs = append(jobs, &job{u: u})
		}
	}
	pending := jobs
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 {
			a.l.stats.retries.Add(int64(len(pending)))
			d := min(DefaultRetryBackoff*time.Duration(attempt), time.Second)
			tm := time.NewTimer(d)
			select {
			case <-ctx.Done():
				tm.Stop()
				return ctx.Err()
			case <-tm.C:
			}
		}
		var err error
		pending, err = a.round(ctx, pending)
		if err != nil {
			return err
		}
	}
	for _, j := range jobs {
		if j.bad && !j.u.resync {
			a.l.stats.dataErrors.Add(1)
			if err := a.resync(ctx, j.u); err != nil {
				return err
			}
		}
	}
	for _, u := range batch {
		if u.resync && len(u.cmds) == 0 { // a cross-slot command: copy its keys
			if err := a.resync(ctx, u); err != nil {
				return err
			}
		}
	}
	return nil
}

// round sends every pending job once, grouped by node, and returns the jobs
// to retry, in their original order.
func (a *applier) round(ctx context.Context, pending []*job) ([]*job, error) {
	t := a.l.target
	groups := map[string][]*job{}
	var order []string
	for _, j := range pending {
		addr := j.ask
		if addr == "" {
			addr = t.ownerOf(j.u.slot)
		}
		if _, ok := groups[addr]; !ok {
			order = append(order, addr)
		}
		groups[addr] = append(groups[addr], j)
	}
	retry := map[*job]bool{}
	moved := false
	for _, addr := range order {
		js := groups[addr]
		c, err := t.client(addr)
		if err != nil {
			if errors.Is(err, ErrClosed) {
				return nil, ctx.Err()
			}
			for _, j := range js {
				retry[j] = true
			}
			moved = true
			continue
		}
		var cmds rueidis.Commands
		spans := make([][2]int, len(js))
		for i, j := range js {
			spans[i][0] = len(cmds)
			cmds = a.build(c, cmds, j)
			spans[i][1] = len(cmds)
		}
		n := len(cmds)
		if n == 0 {
			continue
		}
		if err := a.l.limiter.wait(ctx, n); err != nil {
			return nil, err
		}
		res := c.DoMulti(ctx, cmds...)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		a.l.stats.commands.Add(int64(n))
		for i, j := range js {
			kind := a.interpret(j, res[spans[i][0]:spans[i][1]])
			switch kind {
			case "":
			case "net":
				t.drop(addr)
				retry[j], moved = true, true
			case "moved":
				retry[j], moved = true, true
				j.ask = ""
			default:
				retry[j] = true
			}
		}
	}
	if moved {
		if err := t.refresh(ctx, false); err != nil && ctx.Err() == nil {
			a.l.log.Warn("refreshing the target slot map", "err", err)
		}
	}
	var out []*job
	for _, j := range pending {
		if retry[j] {
			out = append(out, j)
		}
	}
	return out, nil
}

// build appends the commands of job j.
func (a *applier) build(c rueidis.Client, cmds rueidis.Commands, j *job) rueidis.Commands {
	u := j.u
	arb := func(args []string) rueidis.Completed { return c.B().Arbitrary(args...).Build() }
	if j.ask != "" {
		cmds = append(cmds, arb([]string{"ASKING"}))
	}
	if u.tx || u.ck {
		cmds = append(cmds, arb([]string{"MULTI"}))
		for _, args := range u.cmds {
			cmds = append(cmds, arb(args))
		}
		if u.ck {
			cmds = append(cmds, arb([]string{"SET", a.l.ckKey(u.sh, u.slot), strconv.FormatInt(u.offset, 10)}))
		}
		return append(cmds, arb([]string{"EXEC"}))
	}
	for i := j.next; i < len(u.cmds); i++ {
		if j.ask != "" && i > j.next {
			cmds = append(cmds, arb([]string{"ASKING"}))
		}
		cmds = append(cmds, arb(u.cmds[i]))
	}
	return cmds
}

// interpret reads a job's replies and returns "" when it is done (data
// errors are marked for resync), or why it must be sent again.
func (a *applier) interpret(j *job, res []rueidis.RedisResult) string {
	u := j.u
	if j.ask != "" { // drop the ASKING replies
		var rest []rueidis.RedisResult
		for i, r := range res {
			if i == 0 || (!u.tx && !u.ck && i%2 == 0) {
				continue
			}
			rest = append(rest, r)
		}
		res = rest
	}
	if u.tx || u.ck {
		// MULTI, QUEUED…, EXEC
		if len(res) == 0 {
			return "net"
		}
		if k, addr := classify(res[0].Error()); k != "" && k != "data" {
			return a.redirect(j, k, addr)
		}
		exec := res[len(res)-1]
		if err := exec.Error(); err != nil {
			for _, r := range res[1 : len(res)-1] {
				if k, addr := classify(r.Error()); k != "" {
					if k == "data" {
						j.bad = true
						return ""
					}
					return a.redirect(j, k, addr)
				}
			}
			k, addr := classify(err)
			if k == "data" {
				j.bad = true
				return ""
			}
			return a.redirect(j, k, addr)
		}
		vals, err := exec.ToArray()
		if err != nil { // EXEC returned nil: cannot happen without WATCH
			j.bad = true
			return ""
		}
		for _, v := range vals {
			if v.Error() != nil {
				j.bad = true
			}
		}
		return ""
	}
	for i, r := range res {
		k, addr := classify(r.Error())
		switch k {
		case "":
			j.next++
		case "data":
			j.bad = true
			j.next++
		default:
			_ = i
			if u.restart {
				j.next = 0
			}
			return a.redirect(j, k, addr)
		}
	}
	return ""
}

func (a *applier) redirect(j *job, kind, addr string) string {
	switch kind {
	case "ask":
		j.ask = addr
		a.l.stats.asks.Add(1)
	case "moved":
		j.ask = ""
		a.l.stats.moves.Add(1)
	default:
		j.ask = ""
	}
	return kind
}

// resync copies the current value of each of u's keys from the source
// shard to the target: RESTORE … REPLACE ABSTTL, or DEL when the source no
// longer has the key.
func (a *applier) resync(ctx context.Context, u *unit) error {
	if len(u.keys) == 0 {
		a.l.stats.resyncFailed.Add(1)
		a.l.log.Warn("data error on a command without keys; skipped", "shard", u.sh.id, "cmds", summarize(u.cmds))
		return nil
	}
	a.l.stats.resyncs.Add(int64(len(u.keys)))
	bySlot := map[int]*unit{}
	var order []int
	for _, key := range u.keys {
		cmds, err := u.sh.sourceValue(ctx, u.db, key)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			a.l.stats.resyncFailed.Add(1)
			a.l.log.Warn("keyed resync: reading the source failed", "shard", u.sh.id, "key", key, "err", err)
			continue
		}
		s := keySlot(key)
		r := bySlot[s]
		if r == nil {
			r = &unit{sh: u.sh, db: u.db, slot: s, resync: true, offset: u.offset}
			bySlot[s] = r
			order = append(order, s)
		}
		r.cmds = append(r.cmds, cmds...)
		r.keys = append(r.keys, key)
	}
	var batch []*unit
	for _, s := range order {
		batch = append(batch, bySlot[s])
	}
	if len(batch) == 0 {
		return nil
	}
	jobs := make([]*job, len(batch))
	for i, r := range batch {
		jobs[i] = &job{u: r}
	}
	pending := jobs
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 {
			tm := time.NewTimer(min(DefaultRetryBackoff*time.Duration(attempt), time.Second))
			select {
			case <-ctx.Done():
				tm.Stop()
				return ctx.Err()
			case <-tm.C:
			}
		}
		var err error
		if pending, err = a.round(ctx, pending); err != nil {
			return err
		}
	}
	for _, j := range jobs {
		if j.bad {
			a.l.stats.resyncFailed.Add(1)
			a.l.log.Warn("keyed resync failed on the target", "shard", u.sh.id, "keys", j.u.keys)
		}
	}
	return nil
}

func summarize(cmds [][]string) string {
	var b strings.Builder
	for i, c := range cmds {
		if i > 0 {
			b.WriteString("; ")
		}
		if len(c) > 0 {
			b.WriteString(c[0])
		}
		if i == 4 {
			b.WriteString("; …")
			break
		}
	}
	return b.String()
}
