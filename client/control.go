package client

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/backoff"
)

// loopState belongs to the control goroutine.
type loopState struct {
	want spec // what the coordinator says now
	have spec // what the current inner client was built from, and applied since

	appVersion int64 // node version of the last app record applied
	appSeen    bool  // false after the app record was deleted: any version is news
	topoPath   string

	needRegister  bool   // the session was replaced: create the record again
	recovering    bool   // … and report the recovery once that is done
	needResolve   string // a cluster switch whose reads failed, to retry
	hbSoon        bool   // what the record reports changed: heartbeat early
	resetHB       bool   // the heartbeat interval changed
	rebuildReason string // for the log

	reload   *time.Timer        // armed: rebuild when it fires
	retry    *time.Timer        // armed: retry registration or resolve
	building <-chan buildResult // a rebuild in progress
	bo       backoff.Backoff    // between failed rebuilds
	retryBo  backoff.Backoff    // between failed registrations/resolves
	window   window             // heartbeat stats
}

func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

// run is the control loop: it follows the app and topology records and the
// session, rebuilds the inner client when needed, and sends heartbeats. It
// never blocks on OnEvent (events are queued) and stops when Close cancels
// k.ctx.
func (k *core) run() {
	defer k.wg.Done()
	defer close(k.loopDone)
	l := &k.loop
	l.bo = backoff.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second}
	l.retryBo = backoff.Backoff{Min: 50 * time.Millisecond, Max: 5 * time.Second}
	l.window.at = time.Now()
	hb := time.NewTimer(jitter(k.heartbeatInterval()/2, k.heartbeatInterval()))
	defer func() {
		hb.Stop()
		for _, t := range []*time.Timer{l.reload, l.retry} {
			if t != nil {
				t.Stop()
			}
		}
	}()
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-k.mb.signal:
			k.handleMailbox()
		case <-hb.C:
			k.heartbeat()
			hb.Reset(k.heartbeatInterval())
		case <-timerC(l.reload):
			l.reload = nil
			k.startRebuild()
		case r := <-l.building:
			l.building = nil
			k.finishRebuild(r)
		case <-timerC(l.retry):
			l.retry = nil
		}
		if k.ctx.Err() != nil {
			return
		}
		k.retryPending()
		k.plan()
		if l.resetHB {
			// A changed interval is reported soon too, so the record's
			// Every never promises an earlier heartbeat than the next one.
			l.hbSoon = true
		}
		if l.resetHB || l.hbSoon {
			// Report a changed epoch or config soon, spread so that 1,000
			// clients do not all write at once.
			d := k.heartbeatInterval()
			if l.hbSoon {
				d = jitter(0, min(d, 5*time.Second))
			}
			l.resetHB, l.hbSoon = false, false
			hb.Reset(d)
		}
	}
}

// jitter returns a random duration in [lo, hi].
func jitter(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + rand.N(hi-lo+1)
}

func (k *core) handleMailbox() {
	recs, sess := k.mb.take()
	for _, ev := range sess {
		k.onSession(ev)
	}
	appPath := k.sess.store.App(k.opts.App).Path()
	if ev, ok := recs[appPath]; ok {
		k.onApp(ev)
	}
	// After a cluster switch in onApp, the old topology's states are stale;
	// the new one's arrive on their own.
	if ev, ok := recs[k.loop.topoPath]; ok {
		k.onTopology(ev)
	}
}

func (k *core) onSession(ev coord.SessionEvent) {
	l := &k.loop
	a := k.appliedNow()
	base := Event{Cluster: a.cluster, Epoch: a.epoch, ConfigVersion: a.cfgVer, SessionID: ev.SessionID, Time: ev.Time}
	switch ev.State {
	case coord.SessionDisconnected:
		// The session logs this once for all its clients; here only at debug.
		k.log.Debug("client: coordinator session disconnected; serving on the last topology", "session", ev.SessionID)
		base.Type = EventSessionLost
		k.events.emit(base)
	case coord.SessionReconnected:
		k.log.Debug("client: coordinator session reconnected", "session", ev.SessionID)
		base.Type = EventSessionRecovered
		k.events.emit(base)
	case coord.SessionExpired:
		k.log.Info("client: coordinator session expired; the registration will be created again on the new session", "session", ev.SessionID)
		k.setUnregistered()
		base.Type, base.Expired = EventSessionLost, true
		k.events.emit(base)
	case coord.SessionConnected: // a new session replacing an expired one
		l.needRegister, l.recovering = true, true
	}
}

// retryPending registers again after a session was replaced, and retries a
// cluster switch whose reads failed. A failure arms the retry timer.
func (k *core) retryPending() {
	l := &k.loop
	if l.retry != nil || (!l.needRegister && l.needResolve == "") {
		return
	}
	failed := false
	if l.needRegister {
		if err := k.createRecord(); err != nil {
			if k.ctx.Err() != nil {
				return
			}
			k.log.Warn("client: registering again failed; will retry", "err", err)
			failed = true
		} else {
			l.needRegister = false
			a := k.appliedNow()
			sid := k.sess.co.SessionID()
			k.log.Info("client: registered again", "session", sid)
			k.events.emit(Event{Type: EventRegistered, Cluster: a.cluster, Epoch: a.epoch, ConfigVersion: a.cfgVer, SessionID: sid})
			if l.recovering {
				l.recovering = false
				k.events.emit(Event{Type: EventSessionRecovered, Expired: true, Cluster: a.cluster, Epoch: a.epoch, ConfigVersion: a.cfgVer, SessionID: sid})
			}
		}
	}
	if l.needResolve != "" {
		if !k.switchCluster(l.needResolve) {
			failed = true
		}
	}
	if failed {
		l.retry = time.NewTimer(l.retryBo.Next())
	} else {
		l.retryBo.Reset()
	}
}

func (k *core) onApp(ev hubEvent) {
	l := &k.loop
	switch {
	case !ev.exists:
		if l.appSeen {
			k.log.Warn("client: the app record was deleted; keeping the last configuration")
		}
		l.appSeen = false
		return
	case ev.invalid != nil:
		k.log.Warn("client: the app record is not valid; keeping the last configuration", "err", ev.invalid)
		return
	case l.appSeen && ev.version <= l.appVersion:
		return // not newer than what New read
	}
	l.appSeen, l.appVersion = true, ev.version
	a := ev.app
	switch {
	case a.ActiveCluster == "":
		k.log.Warn("client: the app record names no active cluster; staying on the current one", "cluster", l.want.cluster)
	case a.ActiveCluster == l.want.cluster:
		l.needResolve = "" // switched back before a pending switch could be read
	default:
		l.needResolve = a.ActiveCluster // retryPending switches, right after this
	}
	l.want.cfg, l.want.cfgVer = a.Client, a.ConfigVersion
}

// switchCluster reads the new cluster's records and follows its topology;
// the rebuild is planned from there. It reports false when the reads failed
// (they are retried).
func (k *core) switchCluster(cluster string) bool {
	l := &k.loop
	ctx, cancel := context.WithTimeout(k.ctx, 10*time.Second)
	defer cancel()
	sp, err := k.resolve(ctx, cluster)
	if err != nil {
		if k.ctx.Err() == nil {
			k.log.Warn("client: cannot switch to the app's new active cluster yet", "cluster", cluster, "err", err)
		}
		return false
	}
	path, stop, err := k.sess.follow(kindTopology, cluster, k.mb)
	if err != nil {
		return false
	}
	k.mu.Lock() // Close reads stopTopo
	prevStop := k.stopTopo
	k.stopTopo = stop
	k.mu.Unlock()
	if prevStop != nil {
		prevStop()
	}
	l.topoPath = path
	l.want.cluster, l.want.epoch, l.want.nodes, l.want.init, l.want.password = sp.cluster, sp.epoch, sp.nodes, sp.init, sp.password
	l.needResolve = ""
	k.log.Info("client: the app switched clusters", "from", l.have.cluster, "to", cluster)
	return true
}

func (k *core) onTopology(ev hubEvent) {
	l := &k.loop
	switch {
	case !ev.exists:
		k.log.Warn("client: the topology record was deleted; keeping the last topology", "cluster", l.want.cluster)
		return
	case ev.invalid != nil:
		k.log.Warn("client: the topology record is not valid; keeping the last topology", "err", ev.invalid)
		return
	case ev.topo.Epoch <= l.want.epoch:
		return
	}
	nodes, init := topologyAddrs(ev.topo)
	if len(nodes) == 0 {
		k.log.Warn("client: the topology record lists no nodes; keeping the last topology", "epoch", ev.topo.Epoch)
		return
	}
	l.want.epoch, l.want.nodes, l.want.init = ev.topo.Epoch, nodes, init
}

// plan compares what the coordinator says with what the client runs. What
// the current rueidis client can follow by itself is applied at once: a new
// epoch whose nodes it can still reach (it learns slot moves and failovers
// from Redis, through MOVED/ASK and its own refreshes), and config that
// rueidis does not hold. Anything else (another cluster, nodes it cannot
// reach, rueidis settings) needs a new inner client, built after a random
// wait so that many clients do not rebuild at once.
func (k *core) plan() {
	l := &k.loop
	cur := k.cur.Load()
	if cur == nil {
		return
	}
	w, h := &l.want, &l.have
	topoRebuild := w.cluster != h.cluster || w.password != h.password
	if !topoRebuild && !slices.Equal(w.nodes, h.nodes) && !overlaps(w.nodes, cur.known()) {
		topoRebuild = true // every node it knows has been replaced
	}
	cfgRebuild := rueidisConfig(w.cfg) != rueidisConfig(h.cfg)
	if !topoRebuild && (w.epoch != h.epoch || !slices.Equal(w.nodes, h.nodes)) {
		h.epoch, h.nodes = w.epoch, w.nodes
		k.setApplied(*h)
		l.hbSoon = true
		k.events.emit(Event{Type: EventTopologyChanged, Cluster: h.cluster, Epoch: h.epoch, Nodes: slices.Clone(h.nodes), ConfigVersion: h.cfgVer})
	}
	if !cfgRebuild && (w.cfgVer != h.cfgVer || w.cfg != h.cfg) {
		l.resetHB = w.cfg.HeartbeatInterval != h.cfg.HeartbeatInterval
		h.cfg, h.cfgVer = w.cfg, w.cfgVer
		k.setApplied(*h)
		l.hbSoon = true
		k.events.emit(Event{Type: EventConfigChanged, Cluster: h.cluster, Epoch: h.epoch, ConfigVersion: h.cfgVer})
	}
	if (topoRebuild || cfgRebuild) && l.building == nil && l.reload == nil && l.needResolve == "" {
		switch {
		case topoRebuild && w.cluster != h.cluster:
			l.rebuildReason = "active cluster switched"
		case topoRebuild:
			l.rebuildReason = "no known node left in the topology"
		default:
			l.rebuildReason = "client config changed"
		}
		l.reload = time.NewTimer(jitter(0, k.opts.ReloadJitter))
	}
}

func overlaps(nodes []string, known map[string]bool) bool {
	for _, n := range nodes {
		if known[n] {
			return true
		}
	}
	return false
}

func (k *core) startRebuild() {
	l := &k.loop
	sp := l.want
	sp.nodes, sp.init = slices.Clone(sp.nodes), slices.Clone(sp.init)
	k.log.Info("client: building a new inner client", "reason", l.rebuildReason, "spec", sp)
	_, l.building = k.startBuild(sp)
}

// finishRebuild swaps a freshly built inner client in and drains the old
// one. Commands running on the old one finish there; new ones go to the new
// one from the swap on.
func (k *core) finishRebuild(r buildResult) {
	l := &k.loop
	if r.err != nil {
		k.untrack(r.in)
		if k.ctx.Err() != nil {
			return
		}
		d := l.bo.Next()
		k.log.Warn("client: building a new inner client failed; still serving on the old one", "retry_in", d, "err", r.err)
		l.reload = time.NewTimer(d)
		return
	}
	old := k.cur.Load()
	if old == nil || !k.cur.CompareAndSwap(old, r.in) {
		return // Close began; it closes r.in with every other inner
	}
	l.bo.Reset()
	prev := l.have
	l.have = r.in.spec
	h := &l.have
	k.stats.rebuilds.Add(1)
	k.setApplied(*h)
	l.hbSoon = true
	l.resetHB = prev.cfg.HeartbeatInterval != h.cfg.HeartbeatInterval
	if prev.cluster != h.cluster || prev.epoch != h.epoch || !slices.Equal(prev.nodes, h.nodes) || prev.password != h.password {
		k.events.emit(Event{Type: EventTopologyChanged, Cluster: h.cluster, Epoch: h.epoch, Nodes: slices.Clone(h.nodes), ConfigVersion: h.cfgVer, Rebuilt: true})
	}
	if prev.cfgVer != h.cfgVer || prev.cfg != h.cfg {
		k.events.emit(Event{Type: EventConfigChanged, Cluster: h.cluster, Epoch: h.epoch, ConfigVersion: h.cfgVer, Rebuilt: true})
	}
	k.log.Info("client: switched to a new inner client", "spec", *h)
	k.wg.Add(1) // the loop is itself counted, so Close cannot be waiting on zero
	go func() {
		defer k.wg.Done()
		k.drain(old)
	}()
}
