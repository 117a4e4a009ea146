package manager

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// A migration link reads each source master's replication stream on its
// own. When a key moves between two source masters (MIGRATE), its delete
// shows in one stream and its re-creation in another, and nothing orders
// the two on the target: the key could end up deleted. So slots of a
// cluster must not move while a link reads from it, and a link must not
// start while slots move (docs/migration.md "Limits").

// movesSlots reports whether operations of kind move slots between a
// cluster's masters.
func (s *Server) movesSlots(kind string) bool {
	k := s.kinds[kind]
	return k != nil && k.movesSlots
}

// linkReads reports whether a link in this state reads its source now or
// will when its operation goes on: a paused link is resumed by its
// operation. A stopped or blocked link reads nothing until a new migrate
// operation resumes it, which checkLinkReuse refuses after slots moved.
func linkReads(state string) bool {
	switch state {
	case meta.SyncFullSync, meta.SyncStreaming, meta.SyncPaused:
		return true
	}
	return false
}

// checkNoLinkReads refuses to move slots of cluster while a migration link
// reads from it.
func (s *Server) checkNoLinkReads(ctx context.Context, cluster string) error {
	names, err := s.store.Syncs().Names(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		l, _, err := s.store.SyncLink(n).Get(ctx)
		if errors.Is(err, coord.ErrNotFound) {
			continue // credentials only, or deleted meanwhile
		}
		if err != nil {
			return err
		}
		if l.Source.Kind != "cluster" || l.Source.Cluster != cluster || !linkReads(l.State) {
			continue
		}
		return conflict("cluster %q is the source of migration link %s (%s, operation %s): moving its slots while the link reads them can lose keys on the target (a key's delete and its re-creation arrive through different shards); let it catch up, or cancel it",
			cluster, l.ID, l.State, l.Op)
	}
	return nil
}

// checkSourceSteady refuses to start a link from cluster while an
// operation that moves its slots holds it.
func (s *Server) checkSourceSteady(ctx context.Context, cluster string) error {
	lock, _, err := s.store.ClusterLock(cluster).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	op, _, err := s.store.Op(lock.Op).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return nil // a claim left behind by an operation that is gone
	}
	if err != nil {
		return fmt.Errorf("operation %s on the source: %w", lock.Op, err)
	}
	if s.movesSlots(op.Type) {
		return conflict("the source cluster %q is busy: operation %s (%s) moves its slots, and a link must not read a cluster whose slots move; wait for it, or cancel it", cluster, op.ID, op.Type)
	}
	return nil
}

// checkLinkReuse refuses to run link against a source or target other
// than the ones it was created for (its stored positions belong to them),
// and to
// resume a link from a cluster whose slots an operation moved after the
// link was created: the link was stopped then, so the guard above did not
// hold, and replaying those moves through separate shards is what it
// prevents. Either way a new link name starts a fresh full copy.
func (s *Server) checkLinkReuse(ctx context.Context, link, target string, src meta.SyncSource) error {
	l, _, err := s.store.SyncLink(link).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.Source.Kind != src.Kind || l.Source.Cluster != src.Cluster || (src.Addr != "" && l.Source.Addr != src.Addr) {
		was := l.Source.Cluster
		if l.Source.Kind != "cluster" {
			was = l.Source.Addr
		}
		return conflict("link %s already exists and reads %s %s; give the new migration another link name", link, l.Source.Kind, was)
	}
	if l.Target != target {
		return conflict("link %s already exists and writes to cluster %s; give the new migration another link name", link, l.Target)
	}
	if src.Kind != "cluster" {
		return nil
	}
	names, err := s.store.Ops().Names(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, id := range names {
		if !s.idMovesSlots(id) {
			continue
		}
		op, _, err := s.store.Op(id).Get(ctx)
		if errors.Is(err, coord.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if op.Cluster == src.Cluster && s.movesSlots(op.Type) && op.CreatedAt.After(l.CreatedAt) {
			return conflict("link %s cannot resume: operation %s (%s) moved slots of its source %s after the link started, and replaying those moves through separate shards could lose keys; retire it (r2m migrate delete %s) or give the migration another link name, for a fresh full copy",
				link, op.ID, op.Type, src.Cluster, link)
		}
	}
	return nil
}

// idMovesSlots tells from an operation ID (newOpID: time-kind-random)
// whether its kind moves slots, so that only those records are read.
func (s *Server) idMovesSlots(id string) bool {
	for name, k := range s.kinds {
		if k.movesSlots && strings.Contains(id, "-"+name+"-") {
			return true
		}
	}
	return false
}
