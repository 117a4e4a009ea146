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
