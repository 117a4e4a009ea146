package meta

import (
	"fmt"
	"time"
)

// Schema versions of the record types. Raise one when a type changes in a
// way an older reader would misread, and teach the reader the old one.
const (
	AppSchema          = 1
	ClientSchema       = 1
	ClusterSchema      = 1
	TopologySchema     = 1
	CredentialsSchema  = 1
	AgentSchema        = 1
	AgentLiveSchema    = 1
	DesiredStateSchema = 1
	ActualStateSchema  = 1
	OperationSchema    = 1
	LeaderSchema       = 1
	UserSchema         = 1
	TokenSchema        = 1
	AuditSchema        = 1
	ClusterLockSchema  = 1
	SlotMoveSchema     = 1
	SecretSchema       = 1
)

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("1.5s"), which is what an operator types and reads.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("meta: duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// App is /apps/{app}: the name applications use, the cluster it points at,
// and the configuration its clients follow live.
type App struct {
	Header
	Name string `json:"name"`
	// ActiveCluster is the cluster clients send commands to. A datacenter
	// switch is a CAS that changes it.
	ActiveCluster string `json:"active_cluster"`
	// StandbyClusters are replicas in other datacenters, in preference order.
	StandbyClusters []string `json:"standby_clusters,omitempty"`
	// Client is the configuration every client of the app applies.
	Client ClientConfig `json:"client"`
	// ConfigVersion rises by one with every change to Client; clients report
	// the version they run.
	ConfigVersion int64     `json:"config_version"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// ClientConfig is what operators tune for an app's clients. Zero values
// mean the client library's defaults.
type ClientConfig struct {
	// PoolSize is the number of connections per Redis node for blocking
	// commands (pipelined commands share one connection per node).
	PoolSize int `json:"pool_size,omitempty"`
	// DialTimeout, ReadTimeout and WriteTimeout bound network operations.
	DialTimeout  Duration `json:"dial_timeout,omitempty"`
	ReadTimeout  Duration `json:"read_timeout,omitempty"`
	WriteTimeout Duration `json:"write_timeout,omitempty"`
	// MaxRetries is how often a failed read-only command is retried; -1
	// disables retries.
	MaxRetries int `json:"max_retries,omitempty"`
	// ReadFromReplica sends read-only commands to replicas.
	ReadFromReplica bool `json:"read_from_replica,omitempty"`
	// ClientCache turns on server-assisted client-side caching.
	ClientCache bool `json:"client_cache,omitempty"`
	// ClientCacheBytes is the cache size per connection.
	ClientCacheBytes int64 `json:"client_cache_bytes,omitempty"`
	// HeartbeatInterval is how often clients refresh their registration's
	// stats.
	HeartbeatInterval Duration `json:"heartbeat_interval,omitempty"`
}

// Client is /apps/{app}/clients/{id}: one live client, an ephemeral record
// owned by the client's coordinator session.
type Client struct {
	Header
	ID   string `json:"id"`
	App  string `json:"app"`
	Name string `json:"name"`
	Host string `json:"host"`
	PID  int    `json:"pid"`
	// ProcessStart tells a restarted process (same pid, new start) apart.
	ProcessStart  time.Time `json:"process_start"`
	ClientVersion string    `json:"client_version"`
	GoVersion     string    `json:"go_version"`
	CreatedAt     time.Time `json:"created_at"`
	// CreationSite is the file:line of the client.New call.
	CreationSite  string `json:"creation_site"`
	Cluster       string `json:"cluster"`
	TopologyEpoch int64  `json:"topology_epoch"`
	ConfigVersion int64  `json:"config_version"`
	// OpenConns is the number of Redis connections the client holds.
	OpenConns int       `json:"open_conns"`
	Heartbeat Heartbeat `json:"heartbeat"`
}

// Heartbeat is a client's latest stats window.
type Heartbeat struct {
	At time.Time `json:"at"`
	// Interval is the length of the window the stats cover: the time since
	// the previous heartbeat, which can be short after a change that the
	// client reports early.
	Interval Duration `json:"interval"`
	// Every is the interval the client heartbeats at now: the next
	// heartbeat is due by At + Every. Zero in records of older clients.
	Every    Duration `json:"every,omitempty"`
	Commands int64    `json:"commands"`
	Errors   int64    `json:"errors"`
	P50      Duration `json:"p50"`
	P99      Duration `json:"p99"`
}

// Expected returns how often the client promises to heartbeat: Every, or
// for records of older clients the length of the last window, or def when
// the record names neither. Zombie detection allows a few of these.
func (h Heartbeat) Expected(def time.Duration) time.Duration {
	if d := time.Duration(h.Every); d > 0 {
		return d
	}
	if d := time.Duration(h.Interval); d > 0 {
		return d
	}
	return def
}

// ClusterState is the life-cycle state of a cluster record.
type ClusterState string

// Cluster states.
const (
	ClusterCreating ClusterState = "creating"
	ClusterActive   ClusterState = "active"
	ClusterAdopting ClusterState = "adopting"
	ClusterDeleting ClusterState = "deleting"
	ClusterFailed   ClusterState = "failed"
)

// Cluster is /clusters/{cluster}.
type Cluster struct {
	Header
	Name       string       `json:"name"`
	Datacenter string       `json:"datacenter,omitempty"`
	State      ClusterState `json:"state"`
	// Adopted is true for a cluster R2M registered but did not deploy; its
	// processes are not supervised by R2M agents.
	Adopted bool `json:"adopted,omitempty"`
	// Masters and ReplicasPerMaster are the desired shape.
	Masters           int   `json:"masters"`
	ReplicasPerMaster int   `json:"replicas_per_master"`
	MaxMemoryBytes    int64 `json:"maxmemory_bytes,omitempty"`
	// HasPassword says whether CredentialsPath holds a password.
	HasPassword bool      `json:"has_password"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Credentials is /clusters/{cluster}/credentials.
type Credentials struct {
	Header
	Password string `json:"password"`
}

// Role is a Redis node's role.
type Role string

// Roles.
const (
	RoleMaster  Role = "master"
	RoleReplica Role = "replica"
)

// Health is a node's health as the topology observer last saw it.
type Health string

// Health values.
const (
	HealthOK      Health = "ok"
	HealthPFail   Health = "pfail"
	HealthFail    Health = "fail"
	HealthUnknown Health = "unknown"
)

// SlotRange is an inclusive range of hash slots.
type SlotRange struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// Node is one Redis node in a topology.
type Node struct {
	ID       string      `json:"id"`
	Addr     string      `json:"addr"`
	Host     string      `json:"host,omitempty"`
	Role     Role        `json:"role"`
	MasterID string      `json:"master_id,omitempty"`
	Slots    []SlotRange `json:"slots,omitempty"`
	DC       string      `json:"dc,omitempty"`
	Health   Health      `json:"health"`
}

// Topology is /clusters/{cluster}/topology: the cluster's nodes as the
// observer last read them from Redis. Epoch rises by one with every change,
// so clients can tell new from old.
type Topology struct {
	Header
	Cluster   string    `json:"cluster"`
	Epoch     int64     `json:"epoch"`
	Nodes     []Node    `json:"nodes"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Agent is /agents/{host}: a host that runs, or ran, an R2M agent.
type Agent struct {
	Header
	Host string `json:"host"`
	// Addr is the address the agent's Redis instances bind to.
	Addr string `json:"addr"`
	// MemoryBytes and MaxInstances describe the host's capacity.
	MemoryBytes  int64     `json:"memory_bytes,omitempty"`
	MaxInstances int       `json:"max_instances,omitempty"`
	Datacenter   string    `json:"datacenter,omitempty"`
	RegisteredAt time.Time `json:"registered_at"`
}

// AgentLive is /agents/{host}/live, ephemeral while the agent runs.
type AgentLive struct {
	Header
	PID       int       `json:"pid"`
	Version   string    `json:"version"`
	StartedAt time.Time `json:"started_at"`
}

// Instance is one redis-server an agent must run. The agent always runs it
// in cluster mode, bound to its host's address (Agent.Addr).
type Instance struct {
	Port           int    `json:"port"`
	Cluster        string `json:"cluster"`
	MaxMemoryBytes int64  `json:"maxmemory_bytes,omitempty"`
	// Persistence is "none", "rdb" or "aof".
	Persistence string `json:"persistence,omitempty"`
	// PasswordFrom names the cluster whose credentials (requirepass and
	// masterauth) the instance uses; empty means no password.
	PasswordFrom string `json:"password_from,omitempty"`
	// NodeTimeout is cluster-node-timeout; zero means 15s.
	NodeTimeout Duration `json:"node_timeout,omitempty"`
}

// DesiredState is /agents/{host}/desired, written by the manager.
// Generation rises with every change.
type DesiredState struct {
	Header
	Generation int64      `json:"generation"`
	Instances  []Instance `json:"instances"`
}

// Instance states an agent reports.
const (
	InstanceStarting = "starting" // started (or adopted), not answering PING yet
	InstanceRunning  = "running"  // alive and answering PING
	InstanceCrashed  = "crashed"  // ended or could not start; a restart is scheduled
	InstanceStopped  = "stopped"  // not running on purpose
)

// InstanceStatus is what an agent reports for one instance.
type InstanceStatus struct {
	Port     int       `json:"port"`
	Cluster  string    `json:"cluster"`
	PID      int       `json:"pid"`
	State    string    `json:"state"` // "running", "starting", "crashed", "stopped"
	Restarts int       `json:"restarts"`
	Error    string    `json:"error,omitempty"`
	Since    time.Time `json:"since"`
}

// ActualState is /agents/{host}/actual, written by the agent.
type ActualState struct {
	Header
	// ObservedGeneration is the desired generation the agent last applied.
	ObservedGeneration int64            `json:"observed_generation"`
	Instances          []InstanceStatus `json:"instances"`
	UpdatedAt          time.Time        `json:"updated_at"`
}

// OpState is an operation's state.
type OpState string

// Operation states.
const (
	OpPending    OpState = "pending"
	OpRunning    OpState = "running"
	OpPaused     OpState = "paused"
	OpCancelling OpState = "cancelling"
	OpSucceeded  OpState = "succeeded"
	OpFailed     OpState = "failed"
	OpCancelled  OpState = "cancelled"
)

// Done reports whether the state is final.
func (s OpState) Done() bool { return s == OpSucceeded || s == OpFailed || s == OpCancelled }

// Step is one step of an operation's plan and its outcome.
type Step struct {
	Name       string    `json:"name"`
	State      OpState   `json:"state"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Error      string    `json:"error,omitempty"`
}

// Progress is an operation's live progress.
type Progress struct {
	SlotsDone  int     `json:"slots_done"`
	SlotsTotal int     `json:"slots_total"`
	KeysMoved  int64   `json:"keys_moved"`
	BytesMoved int64   `json:"bytes_moved"`
	KeysPerSec float64 `json:"keys_per_sec"`
	// ETA is the estimated time left; zero when unknown.
	ETA Duration `json:"eta,omitempty"`
}

// Operation is /ops/{id}: a long-running mutation, persisted so that a new
// leader resumes it.
type Operation struct {
	Header
	ID      string  `json:"id"`
	Type    string  `json:"type"`
	Cluster string  `json:"cluster"`
	State   OpState `json:"state"`
	// Plan is the operation's input and plan as the engine wrote it.
	Plan     []byte   `json:"plan,omitempty"`
	Steps    []Step   `json:"steps,omitempty"`
	Progress Progress `json:"progress"`
	// Throttle caps the keys moved per second; zero means no cap.
	Throttle int `json:"throttle,omitempty"`
	// Owner is the manager instance running it.
	Owner     string    `json:"owner,omitempty"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Error     string    `json:"error,omitempty"`
	// CheckFindings is what the post-operation check reported; with
	// CheckedAt set and no findings, the cluster was clean.
	CheckFindings []string  `json:"check_findings,omitempty"`
	CheckedAt     time.Time `json:"checked_at,omitzero"`
}

// Leader is /manager/leader, ephemeral, held by the leading r2m server.
type Leader struct {
	Header
	ID        string    `json:"id"`
	Addr      string    `json:"addr"`
	StartedAt time.Time `json:"started_at"`
}

// UserRole is a user's permission level.
type UserRole string

// Roles, from least to most privileged.
const (
	Viewer   UserRole = "viewer"
	Operator UserRole = "operator"
	Admin    UserRole = "admin"
)

// User is /users/{name}. It holds a password hash, never a password.
type User struct {
	Header
	Name         string    `json:"name"`
	Role         UserRole  `json:"role"`
	PasswordHash string    `json:"password_hash"`
	CreatedAt    time.Time `json:"created_at"`
}

// Token is /users/{name}/tokens/{id}: an API token, stored as a hash.
type Token struct {
	Header
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// AuditEntry is /audit/{id}: one mutation made through the API. IDs sort
// by time.
type AuditEntry struct {
	Header
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	User   string    `json:"user"`
	Action string    `json:"action"`
	Target string    `json:"target,omitempty"`
	Result string    `json:"result"`
	Status int       `json:"status"`
}

// Secret is /manager/secret: the key that signs console session cookies.
type Secret struct {
	Header
	Key       []byte    `json:"key"`
	CreatedAt time.Time `json:"created_at"`
}

// ClusterLock is /clusters/{cluster}/op: the operation that holds the
// cluster. It is created when the operation is accepted and deleted when it
// ends, so two operations never run on one cluster.
type ClusterLock struct {
	Header
	Op string `json:"op"`
}

// SlotMove is /ops/{id}/slots/{slot}: how far one slot's move has come.
// Phase is "planned", "migrating", "assigned" or "done"; From and To are
// node IDs.
type SlotMove struct {
	Header
	Slot    int       `json:"slot"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Phase   string    `json:"phase"`
	Keys    int64     `json:"keys"`
	Bytes   int64     `json:"bytes"`
	Updated time.Time `json:"updated"`
}
