package api

import (
	"context"
	"net/http"
	"time"
)

// MigrateParams are the parameters of a migrate operation (POST
// /api/v1/clusters/{target}/migrate). Exactly one of From and FromCluster
// is set.
type MigrateParams struct {
	// From is a Redis outside R2M: redis://[user@]host:port. A password is
	// never sent here: PUT it first with SetSyncCredentials.
	From string `json:"from,omitempty"`
	// FromCluster is a registered cluster.
	FromCluster string `json:"from_cluster,omitempty"`
	// Link names the link; empty means one derived from the operation.
	Link string `json:"link,omitempty"`
	// Mode is "at-least-once" (default) or "exactly-once".
	Mode string `json:"mode,omitempty"`
	// DBMap maps source databases (as strings) to 0.
	DBMap map[string]int `json:"db_map,omitempty"`
	// BigValueBytes is the value size above which keys are written in
	// pieces; 0 means 8 MiB.
	BigValueBytes int `json:"big_value_bytes,omitempty"`
	// TTLGrace is a Go duration ("10m"); empty means 10 minutes.
	TTLGrace string `json:"rdb_ttl_grace,omitempty"`
	// Until is "caught-up" (default: the operation succeeds once the
	// target has caught up) or "cancel" (it streams until cancelled).
	Until string `json:"until,omitempty"`
}

// SyncShard is the state of one source shard of a link.
type SyncShard struct {
	Shard     string    `json:"shard"`
	Addr      string    `json:"addr"`
	Phase     string    `json:"phase"`
	ReplID    string    `json:"replid"`
	Applied   int64     `json:"applied"`
	RDBDone   bool      `json:"rdb_done"`
	RDBKeys   int64     `json:"rdb_keys"`
	LagBytes  int64     `json:"lag_bytes"`
	LagMs     int64     `json:"lag_ms"`
	FullSyncs int       `json:"full_syncs"`
	Resumes   int       `json:"resumes"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SyncLink is a migration or DR link and its shards.
type SyncLink struct {
	ID          string      `json:"id"`
	SourceKind  string      `json:"source_kind"`
	Source      string      `json:"source"`
	Target      string      `json:"target"`
	Op          string      `json:"op,omitempty"`
	State       string      `json:"state"`
	ExactlyOnce bool        `json:"exactly_once"`
	Error       string      `json:"error,omitempty"`
	Shards      []SyncShard `json:"shards"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

// Syncs lists the links.
func (c *Client) Syncs(ctx context.Context) ([]SyncLink, error) {
	var out []SyncLink
	return out, c.do(ctx, http.MethodGet, "/api/v1/syncs", nil, nil, &out)
}

// Sync returns one link with its shards.
func (c *Client) Sync(ctx context.Context, link string) (*SyncLink, error) {
	var out SyncLink
	return &out, c.do(ctx, http.MethodGet, "/api/v1/syncs/"+esc(link), nil, nil, &out)
}

// SetSyncCredentials stores the source password of a link before the
// migrate operation that uses it starts.
func (c *Client) SetSyncCredentials(ctx context.Context, link, password string) error {
	return c.do(ctx, http.MethodPut, "/api/v1/syncs/"+esc(link)+"/credentials", nil, map[string]string{"password": password}, nil)
}

// SyncDeleted is what deleting a link removed.
type SyncDeleted struct {
	Link string `json:"link"`
	// CheckpointKeysRemoved counts the exactly-once checkpoint keys deleted
	// from the target.
	CheckpointKeysRemoved int `json:"checkpoint_keys_removed,omitempty"`
}

// DeleteSync retires a link that no longer runs: its positions, stored
// password, spool and checkpoint keys go, and no migrate operation can
// resume it afterwards. A running link is refused (409).
func (c *Client) DeleteSync(ctx context.Context, link string) (*SyncDeleted, error) {
	var out SyncDeleted
	return &out, c.do(ctx, http.MethodDelete, "/api/v1/syncs/"+esc(link), nil, nil, &out)
}
