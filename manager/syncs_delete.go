package manager

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
	"github.com/r2m-go/r2m/migrate"
)

// deleteSync handles DELETE /api/v1/syncs/{link}: it retires a link for
// good. A link that is not running any more is otherwise kept, because a
// new migrate operation with its name resumes it from its positions; once
// retired nothing can resume it, so its positions, stored password, spool
// and — for an exactly-once link — its checkpoint keys on the target go.
func (s *Server) deleteSync(r *http.Request, _ *principal) (any, error) {
	ctx := r.Context()
	link := r.PathValue("link")
	if err := meta.ValidateName("link", link); err != nil {
		return nil, badRequest("link", "%v", err)
	}
	l, ver, err := s.store.SyncLink(link).Get(ctx)
	switch {
	case errors.Is(err, coord.ErrNotFound):
		// Perhaps only a password stored ahead of a migration.
		if _, _, err := s.store.SyncCredentials(link).Get(ctx); errors.Is(err, coord.ErrNotFound) {
			return nil, notFound("no link %q", link)
		} else if err != nil {
			return nil, err
		}
		if err := s.forgetSyncNodes(ctx, link); err != nil {
			return nil, err
		}
		if p, err := meta.SyncLinkPath(link); err == nil {
			if err := s.cfg.Coordinator.Delete(ctx, p, coord.AnyVersion); err != nil && !errors.Is(err, coord.ErrNotFound) {
				return nil, err
			}
		}
		return api.SyncDeleted{Link: link}, nil
	case err != nil:
		return nil, err
	}
	if err := s.checkLinkIdle(ctx, l); err != nil {
		return nil, err
	}
	out := api.SyncDeleted{Link: link}
	if l.ExactlyOnce {
		if out.CheckpointKeysRemoved, err = s.removeCheckpoints(ctx, l); err != nil {
			return nil, err
		}
	}
	if err := s.forgetSyncNodes(ctx, link); err != nil {
		return nil, err
	}
	if err := s.store.SyncLink(link).Delete(ctx, ver); err != nil {
		if errors.Is(err, coord.ErrVersionConflict) {
			return nil, conflict("link %s changed while it was being deleted; try again", link)
		}
		return nil, err
	}
	if err := os.RemoveAll(filepath.Join(s.cfg.DataDir, "spool", link)); err != nil {
		return nil, fmt.Errorf("link %s is deleted, but not its spool: %w", link, err)
	}
	return out, nil
}

// checkLinkIdle refuses to retire a link that runs or may still run.
func (s *Server) checkLinkIdle(ctx context.Context, l *meta.SyncLink) error {
	if l.State != meta.SyncStopped && l.State != meta.SyncBlocked {
		return conflict("link %s is %s: cancel operation %s first", l.ID, l.State, l.Op)
	}
	if l.Op == "" {
		return nil
	}
	op, _, err := s.store.Op(l.Op).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !op.State.Done() {
		return conflict("link %s belongs to operation %s, which is %s: cancel it first", l.ID, op.ID, op.State)
	}
	return nil
}

// removeCheckpoints deletes an exactly-once link's checkpoint keys on its
// target.
func (s *Server) removeCheckpoints(ctx context.Context, l *meta.SyncLink) (int, error) {
	seeds, err := s.seeds(ctx, l.Target)
	if err != nil {
		return 0, unavailable(fmt.Sprintf("cannot reach the target %s to remove link %s's checkpoint keys", l.Target, l.ID), err)
	}
	pw, err := s.password(ctx, l.Target)
	if err != nil {
		return 0, err
	}
	n, err := migrate.RemoveCheckpoints(ctx, migrate.Endpoint{Addrs: seeds, Password: pw}, l.ID)
	if err != nil {
		return n, unavailable(fmt.Sprintf("removing link %s's checkpoint keys from %s (%d removed; deleting the link again finishes)", l.ID, l.Target, n), err)
	}
	return n, nil
}

// forgetSyncNodes deletes a link's shard records and stored password, and
// the placeholder nodes above them.
func (s *Server) forgetSyncNodes(ctx context.Context, link string) error {
	shards, err := s.store.SyncShards(link).Names(ctx)
	if err != nil && !errors.Is(err, coord.ErrNotFound) {
		return err
	}
	for _, sh := range shards {
		if err := s.store.SyncShard(link, sh).Delete(ctx, coord.AnyVersion); err != nil && !errors.Is(err, coord.ErrNotFound) {
			return err
		}
	}
	if dir := s.store.SyncShards(link).Path(); dir != "" {
		if err := s.cfg.Coordinator.Delete(ctx, dir, coord.AnyVersion); err != nil && !errors.Is(err, coord.ErrNotFound) {
			return err
		}
	}
	if err := s.store.SyncCredentials(link).Delete(ctx, coord.AnyVersion); err != nil && !errors.Is(err, coord.ErrNotFound) {
		return err
	}
	return nil
}
