package client

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/buildinfo"
	"github.com/r2m-go/r2m/meta"
)

// regTimeout bounds one attempt to create the registration record.
func (k *core) regTimeout() time.Duration { return max(k.opts.CloseTimeout/3, time.Second) }

// record builds the registration record as of now.
func (k *core) record(hb meta.Heartbeat) *meta.Client {
	p := procInfo()
	a := k.appliedNow()
	return &meta.Client{
		ID: k.id, App: k.opts.App, Name: k.opts.Name,
		Host: p.host, PID: p.pid, ProcessStart: p.start,
		ClientVersion: buildinfo.Version, GoVersion: runtime.Version(),
		CreatedAt: k.created, CreationSite: k.site,
		Cluster: a.cluster, TopologyEpoch: a.epoch, ConfigVersion: a.cfgVer,
		OpenConns: int(k.stats.openConns.Load()),
		Heartbeat: hb,
	}
}

// createRecord creates the registration record. The attempt is bounded but
// deliberately not cancelled by Close or by New's context: a create that was
// abandoned half-way could still land on the server after the delete that
// follows it. Instead Close waits for it (under regLock) and then deletes.
func (k *core) createRecord() error {
	select {
	case k.regLock <- struct{}{}:
	case <-k.ctx.Done():
		return ErrClosed
	}
	defer func() { <-k.regLock }()
	if k.ctx.Err() != nil {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(k.ctx), k.regTimeout())
	defer cancel()
	ref := k.sess.store.Client(k.opts.App, k.id)
	rec := k.record(meta.Heartbeat{At: time.Now().UTC(), Interval: meta.Duration(k.heartbeatInterval()), Every: meta.Duration(k.heartbeatInterval())})
	// From here on a record of ours may exist, even if this attempt fails:
	// a create that timed out or lost its connection may have been applied.
	// So teardown deletes (a missing record counts as deleted).
	k.registered = true
	err := ref.CreateEphemeral(ctx, rec)
	if k.opts.testSlowCreate != nil && k.opts.testSlowCreate(err) {
		// As on a slow or cut connection: the attempt's deadline passes
		// before its reply arrives; a create that was applied is then
		// reported as timed out.
		<-ctx.Done()
		if err == nil {
			err = fmt.Errorf("create ephemeral %s: reply lost (test): %w", ref.Path(), ctx.Err())
		}
	}
	if errors.Is(err, coord.ErrExists) {
		err = k.checkOwnRecord(ref.Path(), err)
	}
	if err != nil {
		return fmt.Errorf("create registration record: %w", err)
	}
	return nil
}

// checkOwnRecord decides, when creating the record found it there, whether
// it is this session's: an earlier attempt that timed out may have been
// applied all the same (a write that fails with ErrUnavailable or a deadline
// has an unknown outcome). The check gets a time bound of its own; the
// attempt's may be spent. It returns nil if the record is ours, else an
// error wrapping exists (and, if the owner could not be read, why).
func (k *core) checkOwnRecord(path string, exists error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(k.ctx), k.regTimeout())
	defer cancel()
	n, err := k.sess.co.Get(ctx, path)
	switch {
	case err != nil:
		return fmt.Errorf("%w; whose it is could not be read: %w", exists, err)
	case n.Ephemeral && n.Owner == k.sess.co.SessionID():
		return nil
	}
	// Another session's: an expired session of ours whose records the
	// server has not deleted yet. They go with it; registerUntil retries.
	return fmt.Errorf("%w, owned by session %s, not by this one (%s)", exists, n.Owner, k.sess.co.SessionID())
}

// deleteRecord deletes the registration record and confirms it, within
// ctx. When the coordinator cannot confirm, the error wraps
// coord.ErrCloseUnconfirmed and the session is told to delete the record
// when it reconnects; failing that, it vanishes when the session ends.
func (k *core) deleteRecord(ctx context.Context) error {
	path, err := meta.ClientPath(k.opts.App, k.id)
	if err != nil {
		return err
	}
	select {
	case k.regLock <- struct{}{}:
	case <-ctx.Done():
		k.sess.addOrphan(path)
		return fmt.Errorf("client: registration %s not deleted: its creation is still under way: %w", path, coord.ErrCloseUnconfirmed)
	}
	defer func() { <-k.regLock }()
	if !k.registered {
		return nil // never attempted, or the server deleted it with an expired session
	}
	if st := k.sess.sessionState(); st != coord.SessionConnected && st != coord.SessionReconnected {
		k.sess.addOrphan(path)
		return fmt.Errorf("client: registration %s not deleted: the coordinator session is %v: %w", path, st, coord.ErrCloseUnconfirmed)
	}
	err = k.sess.co.Delete(ctx, path, coord.AnyVersion)
	if err != nil && !errors.Is(err, coord.ErrNotFound) {
		k.sess.addOrphan(path)
		return fmt.Errorf("client: registration %s not deleted (%w): %w", path, err, coord.ErrCloseUnconfirmed)
	}
	k.registered = false
	return nil
}

// setUnregistered notes that the server deleted the record with the
// session.
func (k *core) setUnregistered() {
	select {
	case k.regLock <- struct{}{}:
	case <-k.ctx.Done():
		return
	}
	k.registered = false
	<-k.regLock
}

func (k *core) isRegistered() bool {
	select {
	case k.regLock <- struct{}{}:
	case <-k.ctx.Done():
		return false
	}
	defer func() { <-k.regLock }()
	return k.registered
}

// heartbeatInterval is the app config's interval if it sets one, else the
// Options'.
func (k *core) heartbeatInterval() time.Duration {
	if d := time.Duration(k.loop.have.cfg.HeartbeatInterval); d > 0 {
		return d
	}
	return k.opts.HeartbeatInterval
}

// heartbeat writes the stats of the window since the last heartbeat into the
// registration record. A record that has gone (an operator deleted it, or
// its session expired unnoticed) is created again: the client is alive.
func (k *core) heartbeat() {
	hb := k.loop.window.next(&k.stats, time.Now())
	hb.Every = meta.Duration(k.heartbeatInterval())
	if !k.isRegistered() {
		return
	}
	ctx, cancel := context.WithTimeout(k.ctx, min(k.heartbeatInterval(), 10*time.Second))
	defer cancel()
	_, err := k.sess.store.Client(k.opts.App, k.id).Set(ctx, k.record(hb), coord.AnyVersion)
	switch {
	case err == nil:
	case errors.Is(err, coord.ErrNotFound):
		k.log.Warn("client: registration record vanished; registering again")
		k.setUnregistered()
		k.loop.needRegister = true
	case k.ctx.Err() == nil:
		k.log.Debug("client: heartbeat failed", "err", err)
	}
}
