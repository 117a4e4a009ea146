package monitor

import "slices"

// Scope is what a metric describes.
type Scope string

// Scopes.
const (
	ScopeNode    Scope = "node"    // one Redis node, by cluster and address
	ScopeCluster Scope = "cluster" // a cluster as a whole
	ScopeApp     Scope = "app"     // an app and its registered clients
	ScopeClient  Scope = "client"  // one client registration
)

// MetricInfo describes one metric the monitor derives. Rules test these
// names; Series reads the stored ones.
type MetricInfo struct {
	Name  string `json:"name"`
	Scope Scope  `json:"scope"`
	Unit  string `json:"unit,omitempty"`
	Help  string `json:"help"`
	// Stored metrics are kept in the history and can be charted.
	Stored bool `json:"stored"`
	// Prometheus is the exported series, if any.
	Prometheus string `json:"prometheus,omitempty"`
	counter    bool
}

// Metric names used in code (the catalog has them all).
const (
	mUp                  = "up"
	mOpsPerSec           = "ops_per_sec"
	mCommands            = "commands_processed"
	mHitRatio            = "hit_ratio"
	mHits                = "keyspace_hits"
	mMisses              = "keyspace_misses"
	mUsedMemory          = "used_memory_bytes"
	mMaxMemory           = "maxmemory_bytes"
	mMemoryRatio         = "memory_used_ratio"
	mRSS                 = "used_memory_rss_bytes"
	mFragmentation       = "mem_fragmentation_ratio"
	mClients             = "connected_clients"
	mBlocked             = "blocked_clients"
	mClientsSpike        = "connected_clients_spike"
	mRejected            = "rejected_connections"
	mKeys                = "keys"
	mExpires             = "keys_expiring"
	mExpired             = "expired_keys"
	mEvicted             = "evicted_keys"
	mEvictedPerSec       = "evicted_keys_per_sec"
	mNetIn               = "net_input_bytes"
	mNetOut              = "net_output_bytes"
	mNetInPerSec         = "net_input_bytes_per_sec"
	mNetOutPerSec        = "net_output_bytes_per_sec"
	mCPUSys              = "cpu_sys_seconds"
	mCPUUser             = "cpu_user_seconds"
	mCPUUsage            = "cpu_usage"
	mUptime              = "uptime_seconds"
	mReplicas            = "connected_replicas"
	mLinkUp              = "replication_link_up"
	mLagBytes            = "replication_lag_bytes"
	mLagSeconds          = "replication_lag_seconds"
	mSlowlogEntries      = "slowlog_entries"
	mSlowlogPerSec       = "slowlog_per_sec"
	mLatencyMax          = "latency_max_seconds"
	mNodeClusterOK       = "node_cluster_state_ok"
	mPollSeconds         = "poll_duration_seconds"
	mClusterNodes        = "cluster_nodes"
	mClusterNodesUp      = "cluster_nodes_up"
	mClusterStateOK      = "cluster_state_ok"
	mClusterSlotsOK      = "cluster_slots_ok"
	mClusterUncovered    = "cluster_slots_uncovered"
	mClusterOps          = "cluster_ops_per_sec"
	mClusterMemory       = "cluster_used_memory_bytes"
	mClusterMaxMemory    = "cluster_maxmemory_bytes"
	mClusterKeys         = "cluster_keys"
	mClusterClients      = "cluster_connected_clients"
	mClusterHitRatio     = "cluster_hit_ratio"
	mRegistered          = "registered_clients"
	mRegisteredRise      = "registered_clients_rise"
	mZombies             = "zombie_clients"
	mClientZombie        = "client_zombie"
	mClientHeartbeatAge  = "client_heartbeat_age_seconds"
	mClientOpenConns     = "client_open_conns"
	latencyLatestPromMet = "r2m_node_latency_latest_seconds"
)

var catalog = []MetricInfo{
	// Nodes.
	{Name: mUp, Scope: ScopeNode, Unit: "bool", Stored: true, Prometheus: "r2m_node_up",
		Help: "1 when the node answered the last poll within its timeout, 0 when it did not."},
	{Name: mOpsPerSec, Scope: ScopeNode, Unit: "ops/s", Stored: true, Prometheus: "r2m_node_ops_per_second",
		Help: "Commands per second: the change of total_commands_processed since the previous poll, or instantaneous_ops_per_sec on the first."},
	{Name: mCommands, Scope: ScopeNode, Unit: "count", Prometheus: "r2m_node_commands_processed_total", counter: true,
		Help: "Commands processed since the node started (INFO total_commands_processed)."},
	{Name: mHitRatio, Scope: ScopeNode, Unit: "ratio", Stored: true, Prometheus: "r2m_node_keyspace_hit_ratio",
		Help: "Keyspace hits / (hits + misses) since the previous poll; absent when there were no lookups."},
	{Name: mHits, Scope: ScopeNode, Unit: "count", Prometheus: "r2m_node_keyspace_hits_total", counter: true,
		Help: "Successful key lookups since the node started."},
	{Name: mMisses, Scope: ScopeNode, Unit: "count", Prometheus: "r2m_node_keyspace_misses_total", counter: true,
		Help: "Failed key lookups since the node started."},
	{Name: mUsedMemory, Scope: ScopeNode, Unit: "bytes", Stored: true, Prometheus: "r2m_node_memory_used_bytes",
		Help: "Memory allocated by Redis (INFO used_memory)."},
	{Name: mMaxMemory, Scope: ScopeNode, Unit: "bytes", Stored: true, Prometheus: "r2m_node_memory_max_bytes",
		Help: "The maxmemory limit; 0 means none."},
	{Name: mMemoryRatio, Scope: ScopeNode, Unit: "ratio", Stored: true, Prometheus: "r2m_node_memory_used_ratio",
		Help: "used_memory / maxmemory; absent when the node has no maxmemory."},
	{Name: mRSS, Scope: ScopeNode, Unit: "bytes", Prometheus: "r2m_node_memory_rss_bytes",
		Help: "Resident set size of the redis-server process."},
	{Name: mFragmentation, Scope: ScopeNode, Unit: "ratio", Stored: true, Prometheus: "r2m_node_memory_fragmentation_ratio",
		Help: "INFO mem_fragmentation_ratio."},
	{Name: mClients, Scope: ScopeNode, Unit: "count", Stored: true, Prometheus: "r2m_node_connected_clients",
		Help: "Client connections, replicas excluded."},
	{Name: mBlocked, Scope: ScopeNode, Unit: "count", Prometheus: "r2m_node_blocked_clients",
		Help: "Clients blocked in BLPOP and the like."},
	{Name: mClientsSpike, Scope: ScopeNode, Unit: "ratio", Prometheus: "r2m_node_connected_clients_spike_ratio",
		Help: "(connected_clients - baseline) / max(baseline, 10), the baseline being the mean over the spike window; 1 means the connections doubled."},
	{Name: mRejected, Scope: ScopeNode, Unit: "count", Prometheus: "r2m_node_rejected_connections_total", counter: true,
		Help: "Connections refused because of maxclients."},
	{Name: mKeys, Scope: ScopeNode, Unit: "count", Stored: true, Prometheus: "r2m_node_keys",
		Help: "Keys in all databases."},
	{Name: mExpires, Scope: ScopeNode, Unit: "count", Prometheus: "r2m_node_keys_expiring",
		Help: "Keys with a time to live."},
	{Name: mExpired, Scope: ScopeNode, Unit: "count", Prometheus: "r2m_node_expired_keys_total", counter: true,
		Help: "Keys expired since the node started."},
	{Name: mEvicted, Scope: ScopeNode, Unit: "count", Prometheus: "r2m_node_evicted_keys_total", counter: true,
		Help: "Keys evicted because of maxmemory since the node started."},
	{Name: mEvictedPerSec, Scope: ScopeNode, Unit: "keys/s", Stored: true,
		Help: "Evictions per second since the previous poll."},
	{Name: mNetIn, Scope: ScopeNode, Unit: "bytes", Prometheus: "r2m_node_net_input_bytes_total", counter: true,
		Help: "Bytes read from the network since the node started."},
	{Name: mNetOut, Scope: ScopeNode, Unit: "bytes", Prometheus: "r2m_node_net_output_bytes_total", counter: true,
		Help: "Bytes written to the network since the node started."},
	{Name: mNetInPerSec, Scope: ScopeNode, Unit: "bytes/s", Stored: true,
		Help: "Network input per second since the previous poll."},
	{Name: mNetOutPerSec, Scope: ScopeNode, Unit: "bytes/s", Stored: true,
		Help: "Network output per second since the previous poll."},
	{Name: mCPUSys, Scope: ScopeNode, Unit: "seconds", Prometheus: "r2m_node_cpu_sys_seconds_total", counter: true,
		Help: "System CPU time of the redis-server process."},
	{Name: mCPUUser, Scope: ScopeNode, Unit: "seconds", Prometheus: "r2m_node_cpu_user_seconds_total", counter: true,
		Help: "User CPU time of the redis-server process."},
	{Name: mCPUUsage, Scope: ScopeNode, Unit: "ratio", Stored: true,
		Help: "CPU seconds (user + system) used per second since the previous poll; 1 is one core."},
	{Name: mUptime, Scope: ScopeNode, Unit: "seconds", Prometheus: "r2m_node_uptime_seconds",
		Help: "Seconds since the node started."},
	{Name: mReplicas, Scope: ScopeNode, Unit: "count", Stored: true, Prometheus: "r2m_node_connected_replicas",
		Help: "Replicas connected to this node."},
	{Name: mLinkUp, Scope: ScopeNode, Unit: "bool", Stored: true, Prometheus: "r2m_node_replication_link_up",
		Help: "On replicas: 1 when the link to the master is up (master_link_status:up)."},
	{Name: mLagBytes, Scope: ScopeNode, Unit: "bytes", Stored: true, Prometheus: "r2m_node_replication_lag_bytes",
		Help: "On replicas: the master's master_repl_offset minus the replica's offset."},
	{Name: mLagSeconds, Scope: ScopeNode, Unit: "seconds", Stored: true, Prometheus: "r2m_node_replication_lag_seconds",
		Help: "On replicas: seconds since the master last heard from the replica (its lag field), or since the link went down."},
	{Name: mSlowlogEntries, Scope: ScopeNode, Unit: "count", Prometheus: "r2m_node_slowlog_entries_total", counter: true,
		Help: "Slow log entries since the node started (the newest entry's id + 1)."},
	{Name: mSlowlogPerSec, Scope: ScopeNode, Unit: "entries/s", Stored: true,
		Help: "New slow log entries per second since the previous poll."},
	{Name: mLatencyMax, Scope: ScopeNode, Unit: "seconds", Stored: true,
		Help: "The highest latest latency over LATENCY LATEST's events; 0 when none is recorded."},
	{Name: mNodeClusterOK, Scope: ScopeNode, Unit: "bool", Prometheus: "r2m_node_cluster_state_ok",
		Help: "1 when the node reports cluster_state:ok."},
	{Name: mPollSeconds, Scope: ScopeNode, Unit: "seconds", Prometheus: "r2m_node_poll_duration_seconds",
		Help: "How long the last poll of the node took."},

	// Clusters.
	{Name: mClusterNodes, Scope: ScopeCluster, Unit: "count", Stored: true, Prometheus: "r2m_cluster_nodes",
		Help: "Nodes in the cluster's topology record."},
	{Name: mClusterNodesUp, Scope: ScopeCluster, Unit: "count", Stored: true, Prometheus: "r2m_cluster_nodes_up",
		Help: "Nodes that answered the last poll."},
	{Name: mClusterStateOK, Scope: ScopeCluster, Unit: "bool", Stored: true, Prometheus: "r2m_cluster_state_ok",
		Help: "1 when most reachable nodes report cluster_state:ok; absent when no node answered."},
	{Name: mClusterSlotsOK, Scope: ScopeCluster, Unit: "count", Stored: true, Prometheus: "r2m_cluster_slots_ok",
		Help: "Slots served by a healthy master, as the best-informed reachable node sees it."},
	{Name: mClusterUncovered, Scope: ScopeCluster, Unit: "count", Stored: true, Prometheus: "r2m_cluster_slots_uncovered",
		Help: "16384 - cluster_slots_ok: slots that are unassigned or whose master failed."},
	{Name: mClusterOps, Scope: ScopeCluster, Unit: "ops/s", Stored: true, Prometheus: "r2m_cluster_ops_per_second",
		Help: "Sum of ops_per_sec over reachable nodes."},
	{Name: mClusterMemory, Scope: ScopeCluster, Unit: "bytes", Stored: true, Prometheus: "r2m_cluster_memory_used_bytes",
		Help: "Sum of used_memory over reachable nodes."},
	{Name: mClusterMaxMemory, Scope: ScopeCluster, Unit: "bytes", Stored: true, Prometheus: "r2m_cluster_memory_max_bytes",
		Help: "Sum of maxmemory over reachable nodes."},
	{Name: mClusterKeys, Scope: ScopeCluster, Unit: "count", Stored: true, Prometheus: "r2m_cluster_keys",
		Help: "Keys on reachable masters."},
	{Name: mClusterClients, Scope: ScopeCluster, Unit: "count", Stored: true, Prometheus: "r2m_cluster_connected_clients",
		Help: "Client connections over reachable nodes."},
	{Name: mClusterHitRatio, Scope: ScopeCluster, Unit: "ratio", Stored: true, Prometheus: "r2m_cluster_keyspace_hit_ratio",
		Help: "Keyspace hit ratio over reachable nodes since the previous poll."},

	// Apps and client registrations.
	{Name: mRegistered, Scope: ScopeApp, Unit: "count", Stored: true, Prometheus: "r2m_app_registered_clients",
		Help: "Live client registrations of the app (/apps/{app}/clients)."},
	{Name: mRegisteredRise, Scope: ScopeApp, Unit: "count", Stored: true, Prometheus: "r2m_app_registered_clients_rise",
		Help: "How much the registered-client count rose over the rising window without ever falling; 0 when it fell or the window is not yet full. A steady rise is the signature of clients that are created and never closed."},
	{Name: mZombies, Scope: ScopeApp, Unit: "count", Stored: true, Prometheus: "r2m_app_zombie_clients",
		Help: "Registrations of the app whose heartbeat is overdue or that hold no connections."},
	{Name: mClientZombie, Scope: ScopeClient, Unit: "bool",
		Help: "1 when the registration's heartbeat is overdue while its record lives, or it holds no Redis connections."},
	{Name: mClientHeartbeatAge, Scope: ScopeClient, Unit: "seconds",
		Help: "Seconds since the registration's last heartbeat."},
	{Name: mClientOpenConns, Scope: ScopeClient, Unit: "count",
		Help: "Redis connections the client reports holding."},
}

var catalogByName = func() map[string]*MetricInfo {
	m := make(map[string]*MetricInfo, len(catalog))
	for i := range catalog {
		m[catalog[i].Name] = &catalog[i]
	}
	return m
}()

// Metrics lists every metric the monitor derives, for rule editors and
// chart pickers.
func Metrics() []MetricInfo { return slices.Clone(catalog) }

func metricNames(scope Scope) []string {
	var out []string
	for _, m := range catalog {
		if scope == "" || m.Scope == scope {
			out = append(out, m.Name)
		}
	}
	return out
}
