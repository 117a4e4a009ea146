package api

import (
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
