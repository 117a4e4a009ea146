package meta

import "time"

// Migration link records: one per sync link (a migration from a standalone
// Redis or another cluster into an R2M cluster, or a DR link), and one per
// source shard of the link holding where its replication stands, so that
// any worker can resume it with PSYNC.
//
//	/syncs/{link}                 SyncLink: source, target, mode, state
//	/syncs/{link}/shards/{shard}  SyncShard: replication ID, applied offset,
//	                              phase and lag, written about once a second

// Schema versions of the link records.
const (
	SyncLinkSchema  = 1
	SyncShardSchema = 1
)

// SyncsDir holds one child per link.
const SyncsDir = "/syncs"

// SyncLinkPath is /syncs/{link}.
func SyncLinkPath(link string) (string, error) { return join("link", SyncsDir, link) }

// SyncShardsDir is /syncs/{link}/shards.
func SyncShardsDir(link string) (string, error) { return join("link", SyncsDir, link, "shards") }

// SyncShardPath is /syncs/{link}/shards/{shard}. A shard ID is
// "standalone" or a source master's first slot range ("0-5460").
func SyncShardPath(link, shard string) (string, error) {
	dir, err := SyncShardsDir(link)
	if err != nil {
		return "", err
	}
	if err := ValidateName("shard", shard); err != nil {
		return "", err
	}
	return dir + "/" + shard, nil
}

// Link states.
const (
	SyncFullSync  = "full-sync"
	SyncStreaming = "streaming"
	SyncPaused    = "paused"
	SyncBlocked   = "blocked" // stopped by an error an operator must resolve
	SyncStopped   = "stopped"
)

// SyncSource is where a link reads from: a registered cluster, or the
// address of a Redis outside R2M. The password of an outside source is kept
// in the operation's parameters, never here.
type SyncSource struct {
	// Kind is "cluster" or "standalone" (any Redis given by address,
	// which may itself be a cluster node).
	Kind    string `json:"kind"`
	Cluster string `json:"cluster,omitempty"`
	Addr    string `json:"addr,omitempty"`
	// User names the ACL user the link authenticates as, if any.
	User string `json:"user,omitempty"`
	// DBMap maps source databases to 0, the only one a cluster has.
	DBMap map[string]int `json:"db_map,omitempty"`
}

// SyncLink is /syncs/{link}.
type SyncLink struct {
	Header
	ID     string     `json:"id"`
	Source SyncSource `json:"source"`
	// Target is the R2M cluster written to.
	Target string `json:"target"`
	// Purpose is "migrate" or "dr".
	Purpose string `json:"purpose"`
	// Op is the operation that runs the link.
	Op    string `json:"op,omitempty"`
	State string `json:"state"`
	// ExactlyOnce keeps per-slot checkpoints on the target.
	ExactlyOnce bool `json:"exactly_once,omitempty"`
	// Throttle caps commands per second sent to the target; zero means none.
	Throttle      int       `json:"throttle,omitempty"`
	BigValueBytes int       `json:"big_value_bytes,omitempty"`
	TTLGrace      Duration  `json:"rdb_ttl_grace,omitempty"`
	Error         string    `json:"error,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// SyncShard is /syncs/{link}/shards/{shard}: where one source shard's
// replication stands. A worker resumes with PSYNC ReplID Applied+1 when
// RDBDone is set, and starts with a full synchronization otherwise.
type SyncShard struct {
	Header
	Shard  string `json:"shard"`
	Addr   string `json:"addr"`
	ReplID string `json:"replid"`
	// Applied is the offset below which everything is on the target.
	Applied int64 `json:"applied"`
	// DB is the source database selected at Applied.
	DB      int    `json:"db,omitempty"`
	RDBDone bool   `json:"rdb_done"`
	Phase   string `json:"phase,omitempty"`
	RDBKeys int64  `json:"rdb_keys,omitempty"`
	// MasterOffset is the source's master_repl_offset when last seen;
	// LagBytes and LagMs are the lag at that moment.
	MasterOffset int64     `json:"master_offset_seen,omitempty"`
	LagBytes     int64     `json:"lag_bytes"`
	LagMs        int64     `json:"lag_ms"`
	FullSyncs    int       `json:"full_syncs"`
	Resumes      int       `json:"resumes"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Syncs is /syncs.
func (s *Store) Syncs() Dir { return s.dir(SyncsDir, nil) }

// SyncLink is /syncs/{link}.
func (s *Store) SyncLink(link string) Ref[SyncLink] {
	p, err := SyncLinkPath(link)
	return newRef[SyncLink](s.c, SyncLinkSchema, p, err)
}

// SyncShards is /syncs/{link}/shards.
func (s *Store) SyncShards(link string) Dir { return s.dir(SyncShardsDir(link)) }

// SyncShard is /syncs/{link}/shards/{shard}.
func (s *Store) SyncShard(link, shard string) Ref[SyncShard] {
	p, err := SyncShardPath(link, shard)
	return newRef[SyncShard](s.c, SyncShardSchema, p, err)
}

// SyncCredentialsPath is /syncs/{link}/credentials: the source password of
// a link whose source is not a registered cluster, kept apart from the link
// and its operation so that reading them never shows it.
func SyncCredentialsPath(link string) (string, error) {
	return join("link", SyncsDir, link, "credentials")
}

// SyncCredentials is /syncs/{link}/credentials.
func (s *Store) SyncCredentials(link string) Ref[Credentials] {
	p, err := SyncCredentialsPath(link)
	return newRef[Credentials](s.c, CredentialsSchema, p, err)
}
