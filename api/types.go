package api

import (
	"encoding/json"
	"time"
)

// ErrorBody is the body of every failed request.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong.
type ErrorDetail struct {
	// Code is stable and machine-readable: bad_request, unauthorized,
	// forbidden, not_found, conflict, not_leader, unavailable, internal.
	Code string `json:"code"`
	// Message is for people: what was wrong and, where it helps, what to do.
	Message string `json:"message"`
	// Field names the request field that was wrong, when one was.
	Field string `json:"field,omitempty"`
}

// Health is GET /healthz.
type Health struct {
	Status string `json:"status"` // "ok"
	// ID is this server instance; Leader is the instance that leads.
	ID       string `json:"id"`
	IsLeader bool   `json:"is_leader"`
	Leader   string `json:"leader,omitempty"`
	// Coordinator is the coordinator URL with any password redacted.
	Coordinator string `json:"coordinator"`
	Version     string `json:"version"`
}

// Login is POST /api/v1/login.
type Login struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// Whoami is GET /api/v1/whoami, and the answer to a login.
type Whoami struct {
	User string `json:"user"`
	Role string `json:"role"`
	// CSRFToken must accompany every mutating request made with the
	// session cookie, in the X-CSRF-Token header.
	CSRFToken string `json:"csrf_token,omitempty"`
}

// User is a user as the API shows it (never with a password or hash).
type User struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// NewUser is POST /api/v1/users.
type NewUser struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Password string `json:"password"`
}

// SetPassword is PUT /api/v1/users/{name}/password.
type SetPassword struct {
	Password string `json:"password"`
}

// SetRole is PUT /api/v1/users/{name}/role.
type SetRole struct {
	Role string `json:"role"`
}

// Token describes an API token. Secret is set only in the answer to the
// request that created it; it is never shown again.
type Token struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Secret    string    `json:"secret,omitempty"`
}

// NewToken is POST /api/v1/tokens.
type NewToken struct {
	// User is whose token it is; only admins may name another user.
	User string `json:"user,omitempty"`
	// TTL is how long the token lasts, as a Go duration ("720h"); empty
	// means it does not expire.
	TTL string `json:"ttl,omitempty"`
}

// AuditEntry is one audited mutation.
type AuditEntry struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	User   string    `json:"user"`
	Action string    `json:"action"` // "POST /api/v1/clusters"
	Target string    `json:"target,omitempty"`
	Result string    `json:"result"` // "ok" or the error
	Status int       `json:"status"`
}

// ClientConfig is the configuration an app's clients follow live. It
// mirrors meta.ClientConfig; durations are Go duration strings.
type ClientConfig struct {
	PoolSize          int    `json:"pool_size,omitempty"`
	DialTimeout       string `json:"dial_timeout,omitempty"`
	ReadTimeout       string `json:"read_timeout,omitempty"`
	WriteTimeout      string `json:"write_timeout,omitempty"`
	MaxRetries        int    `json:"max_retries,omitempty"`
	ReadFromReplica   bool   `json:"read_from_replica,omitempty"`
	ClientCache       bool   `json:"client_cache,omitempty"`
	ClientCacheBytes  int64  `json:"client_cache_bytes,omitempty"`
	HeartbeatInterval string `json:"heartbeat_interval,omitempty"`
}

// App is an app as the API shows it.
type App struct {
	Name            string       `json:"name"`
	ActiveCluster   string       `json:"active_cluster"`
	StandbyClusters []string     `json:"standby_clusters,omitempty"`
	Config          ClientConfig `json:"config"`
	ConfigVersion   int64        `json:"config_version"`
	Clients         int          `json:"clients"`
	CreatedAt       time.Time    `json:"created_at"`
	UpdatedAt       time.Time    `json:"updated_at"`
}

// NewApp is POST /api/v1/apps: bind an app name to an existing cluster.
type NewApp struct {
	Name    string `json:"name"`
	Cluster string `json:"cluster"`
}

// ClientInfo is one live client registration with its flags.
type ClientInfo struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Host          string    `json:"host"`
	PID           int       `json:"pid"`
	ProcessStart  time.Time `json:"process_start"`
	CreationSite  string    `json:"creation_site"`
	CreatedAt     time.Time `json:"created_at"`
	Age           string    `json:"age"`
	ClientVersion string    `json:"client_version"`
	GoVersion     string    `json:"go_version"`
	Cluster       string    `json:"cluster"`
	TopologyEpoch int64     `json:"topology_epoch"`
	ConfigVersion int64     `json:"config_version"`
	OpenConns     int       `json:"open_conns"`
	HeartbeatAt   time.Time `json:"heartbeat_at"`
	HeartbeatAge  string    `json:"heartbeat_age"`
	Commands      int64     `json:"commands"`
	Errors        int64     `json:"errors"`
	P50           string    `json:"p50"`
	P99           string    `json:"p99"`
	// Flags are the problems this client shows (codes from Flag.Code).
	Flags []string `json:"flags,omitempty"`
}

// Flag is a suspected problem, explained.
type Flag struct {
	// Code is "leak" (one process holds too many clients), "rising" (the
	// app's client count only rises), "zombie-heartbeat" (heartbeat overdue
	// while the session lives) or "zombie-conns" (no open connections).
	Code string `json:"code"`
	// Message explains it in one sentence, naming the process, host and
	// creation site where they apply.
	Message string `json:"message"`
	// Clients are the IDs of the clients it concerns.
	Clients []string `json:"clients,omitempty"`
	Host    string   `json:"host,omitempty"`
	PID     int      `json:"pid,omitempty"`
	Site    string   `json:"site,omitempty"`
}

// AppClients is GET /api/v1/apps/{app}/clients.
type AppClients struct {
	App     string       `json:"app"`
	Count   int          `json:"count"`
	Clients []ClientInfo `json:"clients"`
	Flags   []Flag       `json:"flags"`
	// History is the client count over the recent past, oldest first, as
	// this server sampled it.
	History []CountSample `json:"history,omitempty"`
}

// CountSample is one sample of an app's client count.
type CountSample struct {
	Time  time.Time `json:"time"`
	Count int       `json:"count"`
}

// Operation is a long-running mutation of a cluster.
type Operation struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Cluster string `json:"cluster"`
	// State is pending, running, paused, cancelling, succeeded, failed or
	// cancelled.
	State string `json:"state"`
	// Plan is what the operation does, as text, and its parameters.
	PlanText string          `json:"plan_text,omitempty"`
	Params   json.RawMessage `json:"params,omitempty"`
	Steps    []OpStep        `json:"steps"`
	Progress OpProgress      `json:"progress"`
	// Throttle caps keys moved per second; 0 means no cap.
	Throttle  int       `json:"throttle"`
	Owner     string    `json:"owner,omitempty"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Error     string    `json:"error,omitempty"`
	// CheckFindings is what the check after the operation found; empty
	// means the cluster was clean.
	CheckFindings []string `json:"check_findings,omitempty"`
	// CheckDone is true once that check has run.
	CheckDone bool `json:"check_done"`
}

// Done reports whether the operation has ended.
func (o *Operation) Done() bool {
	return o.State == "succeeded" || o.State == "failed" || o.State == "cancelled"
}

// OpStep is one step of an operation.
type OpStep struct {
	Name       string    `json:"name"`
	State      string    `json:"state"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Error      string    `json:"error,omitempty"`
}

// OpProgress is an operation's progress.
type OpProgress struct {
	SlotsDone  int     `json:"slots_done"`
	SlotsTotal int     `json:"slots_total"`
	KeysMoved  int64   `json:"keys_moved"`
	BytesMoved int64   `json:"bytes_moved"`
	KeysPerSec float64 `json:"keys_per_sec"`
	ETA        string  `json:"eta,omitempty"`
}

// DryRun is the answer to an operation request with "dry_run": true: what
// would be done, without doing it.
type DryRun struct {
	Type     string          `json:"type"`
	Cluster  string          `json:"cluster"`
	PlanText string          `json:"plan_text"`
	Steps    []string        `json:"steps"`
	Detail   json.RawMessage `json:"detail,omitempty"`
}

// SetThrottle is PUT /api/v1/ops/{id}/throttle.
type SetThrottle struct {
	KeysPerSec int `json:"keys_per_sec"`
}

// Cluster is a cluster as the API lists it.
type Cluster struct {
	Name       string `json:"name"`
	Datacenter string `json:"datacenter,omitempty"`
	State      string `json:"state"`
	Adopted    bool   `json:"adopted,omitempty"`
	// Health is "ok", "degraded" (a node failing or unreachable, slots
	// still served) or "fail" (slots not served), from the topology record.
	Health   string    `json:"health"`
	Masters  int       `json:"masters"`
	Replicas int       `json:"replicas"`
	Epoch    int64     `json:"epoch"`
	Op       string    `json:"op,omitempty"` // the operation running on it
	Created  time.Time `json:"created_at"`
}

// ClusterDetail is GET /api/v1/clusters/{name}.
type ClusterDetail struct {
	Cluster
	MaxMemoryBytes int64         `json:"maxmemory_bytes,omitempty"`
	Nodes          []ClusterNode `json:"nodes"`
	Apps           []string      `json:"apps,omitempty"`
}

// ClusterNode is one node of a cluster's topology.
type ClusterNode struct {
	ID       string   `json:"id"`
	Addr     string   `json:"addr"`
	Host     string   `json:"host,omitempty"`
	Role     string   `json:"role"`
	MasterID string   `json:"master_id,omitempty"`
	Slots    []string `json:"slots,omitempty"` // ranges such as "0-5460"
	Health   string   `json:"health"`
}

// CheckResult is GET /api/v1/clusters/{name}/check.
type CheckResult struct {
	Cluster string `json:"cluster"`
	// Clean is true when nothing of warning severity or worse was found.
	Clean    bool      `json:"clean"`
	Findings []Finding `json:"findings"`
}

// Finding is one result of a check.
type Finding struct {
	Kind     string   `json:"kind"`
	Severity string   `json:"severity"`
	Node     string   `json:"node,omitempty"`
	Slots    []string `json:"slots,omitempty"`
	Detail   string   `json:"detail"`
}

// Credentials is GET /api/v1/clusters/{name}/credentials (admin only,
// audited).
type Credentials struct {
	Cluster  string `json:"cluster"`
	Password string `json:"password"`
}

// AdoptParams is POST /api/v1/clusters/adopt.
type AdoptParams struct {
	Name       string `json:"name"`
	Seed       string `json:"seed"`
	Password   string `json:"password,omitempty"`
	Datacenter string `json:"datacenter,omitempty"`
	// App to bind to the cluster: empty means the cluster's name, "-" none.
	App string `json:"app,omitempty"`
}

// ReshardParams is POST /api/v1/clusters/{name}/reshard.
type ReshardParams struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Slots int    `json:"slots"`
}

// RebalanceParams is POST /api/v1/clusters/{name}/rebalance.
type RebalanceParams struct {
	Weights      map[string]float64 `json:"weights,omitempty"`
	ThresholdPct float64            `json:"threshold_pct,omitempty"`
	ExcludeEmpty bool               `json:"exclude_empty,omitempty"`
}

// FailoverParams is POST /api/v1/clusters/{name}/failover.
type FailoverParams struct {
	Replica string `json:"replica,omitempty"`
	Master  string `json:"master,omitempty"`
	Mode    string `json:"mode,omitempty"`
	Timeout string `json:"timeout,omitempty"`
}

// AddNodeParams is POST /api/v1/clusters/{name}/add-node.
type AddNodeParams struct {
	Addr      string `json:"addr,omitempty"`
	Host      string `json:"host,omitempty"`
	ReplicaOf string `json:"replica_of,omitempty"`
}

// RemoveNodeParams is POST /api/v1/clusters/{name}/remove-node.
type RemoveNodeParams struct {
	Node        string `json:"node"`
	KeepRunning bool   `json:"keep_running,omitempty"`
}

// FixParams is POST /api/v1/clusters/{name}/fix.
type FixParams struct {
	Force bool `json:"force,omitempty"`
}

// CreateParams is POST /api/v1/clusters.
type CreateParams struct {
	Name     string `json:"name"`
	Masters  int    `json:"masters"`
	Replicas int    `json:"replicas"`
	// MaxMemory per instance: bytes, or "256mb", "2gb".
	MaxMemory   string `json:"maxmemory,omitempty"`
	Datacenter  string `json:"datacenter,omitempty"`
	Persistence string `json:"persistence,omitempty"`
	NodeTimeout string `json:"node_timeout,omitempty"`
	App         string `json:"app,omitempty"`
}

// CommandRequest is POST /api/v1/apps/{app}/command: one Redis command,
// as typed in redis-cli.
type CommandRequest struct {
	Command string `json:"command"`
	// Confirm must be true for commands that can destroy data or stall a
	// node; only admins may run those.
	Confirm bool `json:"confirm,omitempty"`
}

// CommandResult is the reply, rendered as redis-cli would print it.
type CommandResult struct {
	Node   string `json:"node"`
	Output string `json:"output"`
	// Truncated is set when the reply was cut to the output bound.
	Truncated bool `json:"truncated,omitempty"`
}

// Agent is a host agent as GET /api/v1/agents lists it.
type Agent struct {
	Host         string `json:"host"`
	Addr         string `json:"addr"`
	Datacenter   string `json:"datacenter,omitempty"`
	Live         bool   `json:"live"`
	Instances    int    `json:"instances"`
	Running      int    `json:"running"`
	MaxInstances int    `json:"max_instances,omitempty"`
	MemoryBytes  int64  `json:"memory_bytes,omitempty"`
	Version      string `json:"version,omitempty"`
}
