package monitor

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/r2m-go/r2m/meta"
)

// subject is one thing the monitor measured in a pass: a node, a cluster,
// an app or a client registration, with its values by catalog name.
type subject struct {
	scope   Scope
	key     string // unique across scopes: "node/orders-1/10.0.0.1:7000"
	cluster string
	node    string // address
	app     string
	client  string
	labels  map[string]string
	values  map[string]float64
	// detail is text for alert summaries: why a node is down, which
	// command was slow, why a registration looks like a zombie.
	detail string
}

func (s *subject) value(metric string) (float64, bool) {
	v, ok := s.values[metric]
	return v, ok
}

// snapshot is the outcome of one pass.
type snapshot struct {
	at       time.Time
	subjects []*subject
	latency  map[string][]latencyEvent // by node subject key
	clusters map[string]*meta.Cluster
	ops      map[opKey]int // nil when operations could not be read
	appsRead bool
}

func (s *snapshot) byScope(scope Scope) []*subject {
	var out []*subject
	for _, sub := range s.subjects {
		if sub.scope == scope {
			out = append(out, sub)
		}
	}
	return out
}

// nodeMemory is what the monitor remembers about a node between passes,
// to turn counters into rates.
type nodeMemory struct {
	runID     string
	at        time.Time // real time of the previous answer
	counters  map[string]float64
	slowID    int64 // newest slow log id seen; -1 before any
	slowSeen  bool
	slowTotal float64
	clients   []timedValue // connected_clients over the spike window
}

type timedValue struct {
	t time.Time
	v float64
}

// appMemory remembers an app's registered-client counts over the rising
// window.
type appMemory struct {
	counts []timedValue
}

// deriver turns raw polls into subjects. It is used by one pass at a time.
type deriver struct {
	cfg   *Config
	nodes map[string]*nodeMemory // by node subject key
	apps  map[string]*appMemory
}

func newDeriver(cfg *Config) *deriver {
	return &deriver{cfg: cfg, nodes: make(map[string]*nodeMemory), apps: make(map[string]*appMemory)}
}

func nodeKey(cluster, addr string) string { return "node/" + cluster + "/" + addr }

// counter fields of INFO turned into per-second rates.
var rateFields = []struct{ field, rate string }{
	{"total_commands_processed", mOpsPerSec},
	{"evicted_keys", mEvictedPerSec},
	{"total_net_input_bytes", mNetInPerSec},
	{"total_net_output_bytes", mNetOutPerSec},
}

// node derives a node's values from its poll. hitDelta returns the
// keyspace hits and misses since the previous poll (for the cluster's
// ratio), ok false when unknown.
func (d *deriver) node(now time.Time, cluster string, n meta.Node, p *nodePoll) (sub *subject, hits, misses float64, deltaOK bool) {
	key := nodeKey(cluster, n.Addr)
	sub = &subject{
		scope: ScopeNode, key: key, cluster: cluster, node: n.Addr,
		labels: map[string]string{"cluster": cluster, "node": n.Addr, "node_id": n.ID, "role": string(n.Role)},
		values: map[string]float64{mPollSeconds: p.duration.Seconds()},
	}
	mem := d.nodes[key]
	if mem == nil {
		mem = &nodeMemory{slowID: -1}
		d.nodes[key] = mem
	}
	if p.err != nil {
		sub.values[mUp] = 0
		sub.detail = p.err.Error()
		return sub, 0, 0, false
	}
	in := p.info
	v := sub.values
	v[mUp] = 1
	if role := in["role"]; role == "slave" {
		sub.labels["role"] = string(meta.RoleReplica)
	} else if role == "master" {
		sub.labels["role"] = string(meta.RoleMaster)
	}
	copyNum := func(field, metric string) {
		if x, ok := in.num(field); ok {
			v[metric] = x
		}
	}
	copyNum("total_commands_processed", mCommands)
	copyNum("keyspace_hits", mHits)
	copyNum("keyspace_misses", mMisses)
	copyNum("used_memory", mUsedMemory)
	copyNum("maxmemory", mMaxMemory)
	copyNum("used_memory_rss", mRSS)
	copyNum("mem_fragmentation_ratio", mFragmentation)
	copyNum("connected_clients", mClients)
	copyNum("blocked_clients", mBlocked)
	copyNum("rejected_connections", mRejected)
	copyNum("expired_keys", mExpired)
	copyNum("evicted_keys", mEvicted)
	copyNum("total_net_input_bytes", mNetIn)
	copyNum("total_net_output_bytes", mNetOut)
	copyNum("used_cpu_sys", mCPUSys)
	copyNum("used_cpu_user", mCPUUser)
	copyNum("uptime_in_seconds", mUptime)
	copyNum("connected_slaves", mReplicas)
	if mx := v[mMaxMemory]; mx > 0 {
		v[mMemoryRatio] = v[mUsedMemory] / mx
	}
	v[mKeys], v[mExpires] = in.keyspace()
	if sub.labels["role"] == string(meta.RoleReplica) {
		v[mLinkUp] = 0
		if in["master_link_status"] == "up" {
			v[mLinkUp] = 1
		}
	}

	// Rates, from the previous poll of the same server process.
	counters := map[string]float64{}
	for _, f := range []string{"total_commands_processed", "keyspace_hits", "keyspace_misses", "evicted_keys",
		"total_net_input_bytes", "total_net_output_bytes", "used_cpu_sys", "used_cpu_user"} {
		if x, ok := in.num(f); ok {
			counters[f] = x
		}
	}
	restarted := mem.runID != "" && mem.runID != in["run_id"]
	dt := p.at.Sub(mem.at).Seconds()
	havePrev := mem.counters != nil && !restarted && dt > 0
	delta := func(f string) (float64, bool) {
		if !havePrev {
			return 0, false
		}
		cur, ok1 := counters[f]
		prev, ok2 := mem.counters[f]
		if !ok1 || !ok2 || cur < prev {
			return 0, false
		}
		return cur - prev, true
	}
	for _, rf := range rateFields {
		if dv, ok := delta(rf.field); ok {
			v[rf.rate] = dv / dt
		}
	}
	if _, ok := v[mOpsPerSec]; !ok {
		copyNum("instantaneous_ops_per_sec", mOpsPerSec)
	}
	if ds, ok1 := delta("used_cpu_sys"); ok1 {
		if du, ok2 := delta("used_cpu_user"); ok2 {
			v[mCPUUsage] = (ds + du) / dt
		}
	}
	dh, ok1 := delta("keyspace_hits")
	dm, ok2 := delta("keyspace_misses")
	if ok1 && ok2 {
		hits, misses, deltaOK = dh, dm, true
		if dh+dm > 0 {
			v[mHitRatio] = dh / (dh + dm)
		}
	}

	// Slow log: only entries newer than the last one seen. Ids are
	// consecutive per server process, so the count is right even when
	// more arrived than one poll reads.
	if restarted {
		mem.slowID, mem.slowSeen = -1, false
	}
	if p.slowErr == nil {
		newest := int64(-1)
		if len(p.slowlog) > 0 {
			newest = p.slowlog[0].ID
		}
		var fresh int64
		if mem.slowSeen && newest > mem.slowID {
			fresh = newest - mem.slowID
			var slowest *slowEntry
			for i := range p.slowlog {
				e := &p.slowlog[i]
				if e.ID > mem.slowID && (slowest == nil || e.Duration > slowest.Duration) {
					slowest = e
				}
			}
			if slowest != nil {
				sub.detail = fmt.Sprintf("%d new slow log entries; slowest %s took %v", fresh, slowest.Command, slowest.Duration)
			}
		}
		if newest > mem.slowID {
			mem.slowID = newest
		}
		if newest >= 0 {
			mem.slowTotal = max(mem.slowTotal, float64(newest+1))
		}
		if mem.slowSeen && havePrev {
			v[mSlowlogPerSec] = float64(fresh) / dt
		}
		mem.slowSeen = true
		v[mSlowlogEntries] = mem.slowTotal
	}

	var worst time.Duration
	for _, e := range p.latency {
		worst = max(worst, e.Latest)
	}
	v[mLatencyMax] = worst.Seconds()

	if ci := p.cluster; ci != nil {
		v[mNodeClusterOK] = 0
		if ci["cluster_state"] == "ok" {
			v[mNodeClusterOK] = 1
		}
	}

	// Connection spike against the mean of the window before this poll.
	if cur, ok := v[mClients]; ok {
		cut := now.Add(-d.cfg.SpikeWindow)
		mem.clients = slices.DeleteFunc(mem.clients, func(tv timedValue) bool { return tv.t.Before(cut) })
		if len(mem.clients) >= 3 {
			var sum float64
			for _, tv := range mem.clients {
				sum += tv.v
			}
			base := sum / float64(len(mem.clients))
			v[mClientsSpike] = (cur - base) / max(base, 10)
		}
		mem.clients = append(mem.clients, timedValue{now, cur})
	}

	mem.runID, mem.at, mem.counters = in["run_id"], p.at, counters
	return sub, hits, misses, deltaOK
}

// replication fills in replicas' lag from their masters' view, which
// needs every node of the cluster polled first.
func replication(nodes []*subject, polls map[string]*nodePoll) {
	byAddr := make(map[string]*nodePoll, len(polls))
	for _, p := range polls {
		byAddr[p.addr] = p
	}
	for _, sub := range nodes {
		p := polls[sub.key]
		if p == nil || p.err != nil || sub.labels["role"] != string(meta.RoleReplica) {
			continue
		}
		in := p.info
		linkUp := in["master_link_status"] == "up"
		if !linkUp {
			if s, ok := in.num("master_link_down_since_seconds"); ok && s >= 0 {
				sub.values[mLagSeconds] = s
			}
		}
		masterAddr := net.JoinHostPort(in["master_host"], in["master_port"])
		mp := byAddr[masterAddr]
		if mp == nil || mp.err != nil {
			if linkUp {
				if s, ok := in.num("master_last_io_seconds_ago"); ok {
					sub.values[mLagSeconds] = s
				}
			}
			continue
		}
		masterOffset, ok := mp.info.num("master_repl_offset")
		if !ok {
			continue
		}
		link, known := mp.info.replicas()[sub.node]
		offset := link.offset
		if !known {
			offset, _ = in.num("slave_repl_offset")
		}
		sub.values[mLagBytes] = max(0, masterOffset-offset)
		if linkUp {
			if known {
				sub.values[mLagSeconds] = link.lag
			} else if s, ok := in.num("master_last_io_seconds_ago"); ok {
				sub.values[mLagSeconds] = s
			}
		}
	}
}

// clusterSubject aggregates a cluster's nodes.
func clusterSubject(t *clusterTarget, nodes []*subject, polls map[string]*nodePoll, hits, misses float64, hitsOK bool) *subject {
	sub := &subject{
		scope: ScopeCluster, key: "cluster/" + t.name, cluster: t.name,
		labels: map[string]string{"cluster": t.name},
		values: map[string]float64{mClusterNodes: float64(len(t.nodes))},
	}
	v := sub.values
	var up, stateOK, stateFail int
	slotsOK := -1.0
	var down []string
	for _, n := range nodes {
		if n.values[mUp] == 0 {
			down = append(down, n.node)
			continue
		}
		up++
		v[mClusterOps] += n.values[mOpsPerSec]
		v[mClusterMemory] += n.values[mUsedMemory]
		v[mClusterMaxMemory] += n.values[mMaxMemory]
		v[mClusterClients] += n.values[mClients]
		if n.labels["role"] == string(meta.RoleMaster) {
			v[mClusterKeys] += n.values[mKeys]
		}
		if p := polls[n.key]; p != nil && p.cluster != nil {
			if p.cluster["cluster_state"] == "ok" {
				stateOK++
			} else {
				stateFail++
			}
			if s, ok := p.cluster.num("cluster_slots_ok"); ok {
				slotsOK = max(slotsOK, s)
			}
		}
	}
	v[mClusterNodesUp] = float64(up)
	if stateOK+stateFail > 0 {
		v[mClusterStateOK] = 0
		if stateOK > stateFail {
			v[mClusterStateOK] = 1
		}
	}
	if slotsOK >= 0 {
		v[mClusterSlotsOK] = slotsOK
		v[mClusterUncovered] = 16384 - slotsOK
	}
	if hitsOK && hits+misses > 0 {
		v[mClusterHitRatio] = hits / (hits + misses)
	}
	if len(down) > 0 {
		sub.detail = fmt.Sprintf("%d of %d nodes do not answer: %s", len(down), len(nodes), strings.Join(down, ", "))
	}
	return sub
}

// app derives an app's values and its registrations' zombie flags.
func (d *deriver) app(now time.Time, a *appTarget) (*subject, []*subject) {
	sub := &subject{
		scope: ScopeApp, key: "app/" + a.name, app: a.name, cluster: a.cluster,
		labels: map[string]string{"app": a.name, "cluster": a.cluster},
		values: map[string]float64{mRegistered: float64(a.count)},
	}
	mem := d.apps[a.name]
	if mem == nil {
		mem = &appMemory{}
		d.apps[a.name] = mem
	}
	mem.counts = append(mem.counts, timedValue{now, float64(a.count)})
	cut := now.Add(-d.cfg.RisingWindow)
	boundary := -1
	for i, tv := range mem.counts {
		if !tv.t.After(cut) {
			boundary = i
		}
	}
	rise := 0.0
	if boundary >= 0 {
		mem.counts = mem.counts[boundary:]
		rising := true
		for i := 1; i < len(mem.counts); i++ {
			if mem.counts[i].v < mem.counts[i-1].v {
				rising = false
				break
			}
		}
		if rising {
			rise = mem.counts[len(mem.counts)-1].v - mem.counts[0].v
		}
		if rise > 0 {
			sub.detail = fmt.Sprintf("registered clients rose from %d to %d over %v without ever falling",
				int(mem.counts[0].v), int(mem.counts[len(mem.counts)-1].v), now.Sub(mem.counts[0].t).Round(time.Second))
		}
	}
	sub.values[mRegisteredRise] = rise

	// Where the newest clients come from: the creation site most of the
	// clients created within the window share.
	sites := map[string]int{}
	var clients []*subject
	zombies := 0
	for _, c := range a.clients {
		if !c.CreatedAt.Before(cut) {
			sites[c.CreationSite]++
		}
		cs := d.client(now, a, c)
		if cs.values[mClientZombie] == 1 {
			zombies++
		}
		clients = append(clients, cs)
	}
	if site, n := topSite(sites); n > 0 {
		sub.labels["site"] = site
		sub.labels["site_clients"] = strconv.Itoa(n)
		if sub.detail != "" {
			sub.detail += fmt.Sprintf("; %d of the clients created in that time were created at %s", n, site)
		}
	}
	if a.clients != nil {
		sub.values[mZombies] = float64(zombies)
	}
	return sub, clients
}

func topSite(sites map[string]int) (string, int) {
	best, n := "", 0
	for s, k := range sites {
		if k > n || k == n && s < best {
			best, n = s, k
		}
	}
	return best, n
}

// client flags a registration as a zombie: its heartbeat is overdue while
// the record lives (its session is alive), or it holds no connections.
func (d *deriver) client(now time.Time, a *appTarget, c *meta.Client) *subject {
	interval := c.Heartbeat.Expected(d.cfg.DefaultHeartbeat)
	last := c.Heartbeat.At
	if last.IsZero() {
		last = c.CreatedAt
	}
	age := max(0, now.Sub(last))
	sub := &subject{
		scope: ScopeClient, key: "client/" + a.name + "/" + c.ID, app: a.name, cluster: cmp.Or(c.Cluster, a.cluster), client: c.ID,
		labels: map[string]string{
			"app": a.name, "cluster": cmp.Or(c.Cluster, a.cluster), "client": c.ID, "name": c.Name,
			"host": c.Host, "pid": strconv.Itoa(c.PID), "site": c.CreationSite,
		},
		values: map[string]float64{mClientHeartbeatAge: age.Seconds(), mClientOpenConns: float64(c.OpenConns), mClientZombie: 0},
	}
	var why []string
	if limit := time.Duration(d.cfg.ZombieGrace * float64(interval)); age > limit {
		why = append(why, fmt.Sprintf("last heartbeat %v ago, expected every %v", age.Round(time.Second), interval))
	}
	if c.OpenConns == 0 && now.Sub(c.CreatedAt) > interval {
		why = append(why, "holds no Redis connections")
	}
	if len(why) > 0 {
		sub.values[mClientZombie] = 1
		sub.detail = fmt.Sprintf("client %s (%q, pid %d on %s, created at %s): %s, yet its registration lives",
			c.ID, c.Name, c.PID, c.Host, c.CreationSite, strings.Join(why, "; "))
	}
	return sub
}

// forget drops the memory of nodes, and of apps when the apps were read,
// that are no longer present.
func (d *deriver) forget(subjects []*subject, appsRead bool) {
	live := make(map[string]bool, len(subjects))
	for _, s := range subjects {
		switch s.scope {
		case ScopeNode:
			live[s.key] = true
		case ScopeApp:
			live["app/"+s.app] = true
		}
	}
	for k := range d.nodes {
		if !live[k] {
			delete(d.nodes, k)
		}
	}
	if appsRead {
		for k := range d.apps {
			if !live["app/"+k] {
				delete(d.apps, k)
			}
		}
	}
}
