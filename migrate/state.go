package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ShardState is what a link saves about one source shard so that a new
// worker resumes it with PSYNC instead of a full synchronization.
type ShardState struct {
	// Shard is the shard's ID: "standalone", or the first slot range of a
	// cluster master ("0-5460").
	Shard string `json:"shard"`
	// Addr is the source node last read from.
	Addr string `json:"addr"`
	// ReplID and Offset are the replication ID and the applied offset: the
	// link resumes with PSYNC ReplID Offset+1.
	ReplID string `json:"repl_id"`
	Offset int64  `json:"offset"`
	// RDBDone says the shard's RDB was applied in full. Without it a resume
	// starts over with a full synchronization.
	RDBDone bool `json:"rdb_done"`
	// DB is the source database selected at Offset: a resumed stream only
	// repeats SELECT when the database changes.
	DB int `json:"db,omitempty"`
	// FullSyncs counts the full synchronizations this shard needed.
	FullSyncs int `json:"full_syncs"`
	// Resumes counts the partial resynchronizations.
	Resumes int       `json:"resumes"`
	Updated time.Time `json:"updated"`
}

// StateStore persists ShardStates. Implementations must be safe for
// concurrent use; Save overwrites the shard's previous state.
type StateStore interface {
	// Load returns the saved state of shard, or ok=false when none exists.
	Load(ctx context.Context, shard string) (st ShardState, ok bool, err error)
	// Save stores st under st.Shard.
	Save(ctx context.Context, st ShardState) error
}

// MemoryState is a StateStore that keeps states in memory.
type MemoryState struct {
	mu sync.Mutex
	m  map[string]ShardState
}

// NewMemoryState returns an empty MemoryState.
func NewMemoryState() *MemoryState { return &MemoryState{m: map[string]ShardState{}} }

// Load implements StateStore.
func (s *MemoryState) Load(_ context.Context, shard string) (ShardState, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[shard]
	return st, ok, nil
}

// Save implements StateStore.
func (s *MemoryState) Save(_ context.Context, st ShardState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[st.Shard] = st
	return nil
}

// FileState is a StateStore that keeps one JSON file per shard in a
// directory, replaced atomically (write, fsync, rename) on every Save. A
// worker process uses it next to its spool.
type FileState struct {
	dir string
	mu  sync.Mutex
}

// NewFileState returns a FileState in dir, creating dir.
func NewFileState(dir string) (*FileState, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("migrate: state: %w", err)
	}
	return &FileState{dir: dir}, nil
}

func (s *FileState) path(shard string) string {
	return filepath.Join(s.dir, "shard-"+shard+".json")
}

// Load implements StateStore.
func (s *FileState) Load(_ context.Context, shard string) (ShardState, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := os.ReadFile(s.path(shard))
	if errors.Is(err, os.ErrNotExist) {
		return ShardState{}, false, nil
	}
	if err != nil {
		return ShardState{}, false, fmt.Errorf("migrate: state: %w", err)
	}
	var st ShardState
	if err := json.Unmarshal(b, &st); err != nil {
		return ShardState{}, false, fmt.Errorf("migrate: state %s: %w", s.path(shard), err)
	}
	return st, true, nil
}

// Save implements StateStore.
func (s *FileState) Save(_ context.Context, st ShardState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("migrate: state: %w", err)
	}
	p := s.path(st.Shard)
	tmp := p + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("migrate: state: %w", err)
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("migrate: state: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("migrate: state: %w", err)
	}
	return nil
}
