// Package etcd is the etcd v3 backend of coord, built on
// go.etcd.io/etcd/client/v3. Importing it registers the "etcd" URL scheme:
//
//	etcd://[user:password@]host:2379[,host:2379…]/root[?session_timeout=10s&dial_timeout=5s&tls=true]
//
// etcd has a flat key space; this backend maps the tree onto it. A node at
// /apps/orders under root /r2m is the key "/r2m/apps/orders"; its children
// are the keys "/r2m/apps/orders/<name>". A node's version is the key's
// version minus one (etcd counts from 1), and its revision the key's
// mod_revision. The session is a lease that a goroutine keeps alive;
// ephemeral nodes are keys attached to it. Transactions enforce ZooKeeper's
// rules: a node needs its parent, a node with children cannot be deleted, and
// an ephemeral node cannot have children.
//
// It must not import anything of R2M but coord.
package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/backoff"
	"github.com/r2m-go/r2m/internal/lifecycle"
)

func init() { coord.Register("etcd", driver{}) }

type driver struct{}

const defaultDialTimeout = 5 * time.Second

// backend is one etcd session: a client and a lease.
type backend struct {
	cli *clientv3.Client
	cfg coord.DriverConfig
	log *slog.Logger

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the keep-alive goroutine
	poke   chan struct{}  // asks the keep-alive goroutine to check now

	mu      sync.Mutex
	lease   clientv3.LeaseID // 0 while there is no session
	ttl     time.Duration
	closing bool
}

func (driver) Open(ctx context.Context, cfg coord.DriverConfig) (coord.Backend, error) {
	dial := defaultDialTimeout
	if v := cfg.Params.Get("dial_timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("etcd: URL parameter dial_timeout=%q: want a positive duration such as 5s", v)
		}
		dial = d
	}
	scheme := "http://"
	var tlsCfg *tls.Config
	if v := cfg.Params.Get("tls"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("etcd: URL parameter tls=%q: want true or false", v)
		}
		if on {
			scheme, tlsCfg = "https://", &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	for k := range cfg.Params {
		if k != "dial_timeout" && k != "tls" {
			return nil, fmt.Errorf("etcd: unknown URL parameter %q (known: session_timeout, dial_timeout, tls)", k)
		}
	}
	eps := make([]string, len(cfg.Servers))
	for i, s := range cfg.Servers {
		eps[i] = scheme + s
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: eps, DialTimeout: dial, TLS: tlsCfg,
		Username: cfg.User, Password: cfg.Password,
		Logger: zap.NewNop(),
		// Keep-alive probes find a dead connection without waiting for a
		// request to time out.
		DialKeepAliveTime: time.Second, DialKeepAliveTimeout: time.Second,
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			// gRPC's default reconnect backoff grows to two minutes; a
			// session must reconnect well within its TTL after an etcd
			// restart or it expires for nothing. Jitter spreads a fleet out.
			Backoff: grpcbackoff.Config{
				BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2,
				MaxDelay: min(max(cfg.SessionTimeout/4, 250*time.Millisecond), 5*time.Second),
			},
			MinConnectTimeout: time.Second,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: client for %v: %w", eps, mapErr(err))
	}
	b := &backend{cli: cli, cfg: cfg, log: cfg.Logger, poke: make(chan struct{}, 1)}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	if err := b.grant(ctx); err != nil {
		b.cancel()
		cli.Close()
		return nil, fmt.Errorf("%w: grant session lease on %v: %w", coord.ErrUnavailable, eps, err)
	}
	b.wg.Add(1)
	go b.keepAlive()
	return b, nil
}

func ttlSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// grant starts a new session and reports it.
func (b *backend) grant(ctx context.Context) error {
	resp, err := b.cli.Grant(ctx, ttlSeconds(b.cfg.SessionTimeout))
	if err != nil {
		return mapErr(err)
	}
	b.mu.Lock()
	b.lease, b.ttl = resp.ID, time.Duration(resp.TTL)*time.Second
	b.mu.Unlock()
	b.emit(coord.SessionConnected, resp.ID)
	return nil
}

func (b *backend) emit(state coord.SessionState, id clientv3.LeaseID) {
	b.mu.Lock()
	closing := b.closing
	b.mu.Unlock()
	if !closing {
		b.cfg.Session(coord.SessionEvent{State: state, SessionID: hexLease(id), Time: time.Now()})
	}
}

func hexLease(id clientv3.LeaseID) string {
	if id == 0 {
		return ""
	}
	return strconv.FormatInt(int64(id), 16)
}

func (b *backend) current() (clientv3.LeaseID, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lease, b.ttl
}

func (b *backend) SessionID() string {
	id, _ := b.current()
	return hexLease(id)
}

func (b *backend) SessionTimeout() time.Duration {
	_, ttl := b.current()
	if ttl == 0 {
		return b.cfg.SessionTimeout
	}
	return ttl
}

// checkSoon asks the keep-alive loop to refresh the lease now, after an
// operation saw the connection fail or the lease missing.
func (b *backend) checkSoon() {
	select {
	case b.poke <- struct{}{}:
	default:
	}
}

// keepAlive refreshes the lease every third of its TTL. Unlike
// clientv3.Lease.KeepAlive, which ends its channel silently, it tells a lost
// connection (Disconnected, then Reconnected) from a lease the server has
// dropped (Expired, then a new lease and Connected).
func (b *backend) keepAlive() {
	defer b.wg.Done()
	var (
		bo           backoff.Backoff
		disconnected bool
	)
	for {
		lease, ttl := b.current()
		interval := max(ttl/3, 100*time.Millisecond)
		if lease == 0 {
			interval = bo.Next()
		}
		t := time.NewTimer(interval)
		select {
		case <-b.ctx.Done():
			t.Stop()
			return
		case <-b.poke:
		case <-t.C:
		}
		t.Stop()
		if lease == 0 {
			gctx, cancel := context.WithTimeout(b.ctx, max(ttl, time.Second))
			err := b.grant(gctx)
			cancel()
			if err == nil {
				bo.Reset()
				disconnected = false
			}
			continue
		}
		kctx, cancel := context.WithTimeout(b.ctx, interval)
		_, err := b.cli.KeepAliveOnce(kctx, lease)
		cancel()
		switch {
		case err == nil:
			if disconnected {
				disconnected = false
				b.emit(coord.SessionReconnected, lease)
			}
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			b.mu.Lock()
			b.lease = 0
			b.mu.Unlock()
			disconnected = false
			b.emit(coord.SessionExpired, lease)
			b.checkSoon()
		case b.ctx.Err() != nil:
			return
		default:
			if !disconnected {
				disconnected = true
				b.log.Debug("etcd lease keep-alive failed", "lease", hexLease(lease), "err", err)
				b.emit(coord.SessionDisconnected, lease)
			}
		}
	}
}

// mapErr translates client errors into coord's sentinels.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return coord.ErrSessionExpired
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable, codes.DeadlineExceeded:
			return fmt.Errorf("%w: %v", coord.ErrUnavailable, err)
		case codes.Canceled:
			return fmt.Errorf("%w: %v", coord.ErrClosed, err)
		}
	}
	if errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrLeaderChanged) {
		return fmt.Errorf("%w: %v", coord.ErrUnavailable, err)
	}
	return err
}

// opErr maps err and, when it means the connection or the lease is in
// doubt, has the keep-alive loop check at once.
func (b *backend) opErr(err error) error {
	err = mapErr(err)
	if errors.Is(err, coord.ErrUnavailable) || errors.Is(err, coord.ErrSessionExpired) {
		b.checkSoon()
	}
	return err
}

func toNode(kv *mvccpb.KeyValue) *coord.Node {
	return &coord.Node{
		Data: kv.Value, Version: kv.Version - 1, Revision: kv.ModRevision,
		Ephemeral: kv.Lease != 0, Owner: hexLease(clientv3.LeaseID(kv.Lease)),
	}
}

func (b *backend) Get(ctx context.Context, key string) (*coord.Node, error) {
	resp, err := b.cli.Get(ctx, key)
	if err != nil {
		return nil, b.opErr(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, coord.ErrNotFound
	}
	return toNode(resp.Kvs[0]), nil
}

// exists and noChildren are the comparisons the transactions build on.
func exists(key string) clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(key), ">", 0)
}

func noChildren(key string) clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(key+"/"), "=", 0).WithPrefix()
}

const maxParentRetries = 10

func (b *backend) Create(ctx context.Context, key string, data []byte, ephemeral bool) error {
	for range maxParentRetries {
		var putOpts []clientv3.OpOption
		if ephemeral {
			lease, _ := b.current()
			if lease == 0 {
				return coord.ErrSessionExpired
			}
			putOpts = append(putOpts, clientv3.WithLease(lease))
		}
		parent := coord.Parent(key)
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
		if parent != "/" { // "/" is not a key; everything hangs below the root key
			cmps = append(cmps, exists(parent), clientv3.Compare(clientv3.LeaseValue(parent), "=", clientv3.NoLease))
		}
		resp, err := b.cli.Txn(ctx).If(cmps...).
			Then(clientv3.OpPut(key, string(data), putOpts...)).
			Else(clientv3.OpGet(key, clientv3.WithKeysOnly()), clientv3.OpGet(parent)).
			Commit()
		if err != nil {
			return b.opErr(err)
		}
		if resp.Succeeded {
			return nil
		}
		if len(resp.Responses[0].GetResponseRange().Kvs) > 0 {
			return coord.ErrExists
		}
		pk := resp.Responses[1].GetResponseRange().Kvs
		if len(pk) > 0 && pk[0].Lease != 0 {
			return coord.ErrEphemeralParent
		}
		if err := b.Create(ctx, parent, nil, false); err != nil && !errors.Is(err, coord.ErrExists) {
			return err
		}
	}
	return fmt.Errorf("etcd: create %s: its parent kept disappearing", key)
}

func (b *backend) Set(ctx context.Context, key string, data []byte, version int64) (int64, error) {
	cmps := []clientv3.Cmp{exists(key)}
	if version != coord.AnyVersion {
		cmps = append(cmps, clientv3.Compare(clientv3.Version(key), "=", version+1))
	}
	resp, err := b.cli.Txn(ctx).If(cmps...).
		// WithIgnoreLease keeps an ephemeral node attached to its session.
		Then(clientv3.OpPut(key, string(data), clientv3.WithIgnoreLease()), clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return 0, b.opErr(err)
	}
	if !resp.Succeeded {
		if len(resp.Responses[0].GetResponseRange().Kvs) == 0 {
			return 0, coord.ErrNotFound
		}
		return 0, coord.ErrVersionConflict
	}
	kvs := resp.Responses[1].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return 0, fmt.Errorf("etcd: set %s: key missing right after the put", key)
	}
	return kvs[0].Version - 1, nil
}

func (b *backend) Delete(ctx context.Context, key string, version int64) error {
	cmps := []clientv3.Cmp{exists(key), noChildren(key)}
	if version != coord.AnyVersion {
		cmps = append(cmps, clientv3.Compare(clientv3.Version(key), "=", version+1))
	}
	resp, err := b.cli.Txn(ctx).If(cmps...).
		Then(clientv3.OpDelete(key)).
		Else(clientv3.OpGet(key, clientv3.WithKeysOnly()), clientv3.OpGet(key+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return b.opErr(err)
	}
	if resp.Succeeded {
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	switch {
	case len(kvs) == 0:
		return coord.ErrNotFound
	case version != coord.AnyVersion && kvs[0].Version != version+1:
		return coord.ErrVersionConflict
	}
	return coord.ErrNotEmpty
}

// childName returns the name of the direct child of prefix that key is,
// or "" when key is deeper (or not below prefix at all).
func childName(prefix, key string) string {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok || rest == "" || strings.Contains(rest, "/") {
		return ""
	}
	return rest
}

func (b *backend) Children(ctx context.Context, key string) ([]string, error) {
	// The node itself and every key below it, in one read at one revision.
	resp, err := b.cli.Get(ctx, key, clientv3.WithRange(clientv3.GetPrefixRangeEnd(key+"/")), clientv3.WithKeysOnly())
	if err != nil {
		return nil, b.opErr(err)
	}
	found, names := listChildren(key, resp.Kvs)
	if !found {
		return nil, coord.ErrNotFound
	}
	return names, nil
}

// listChildren reads a range that starts at key itself and covers the keys
// below it. (It also covers keys that sort between key and key+"/", such as
// key+"-x"; they are skipped.)
func listChildren(key string, kvs []*mvccpb.KeyValue) (exists bool, names []string) {
	names = []string{}
	for _, kv := range kvs {
		k := string(kv.Key)
		if k == key {
			exists = true
		} else if n := childName(key+"/", k); n != "" {
			names = append(names, n)
		}
	}
	return exists, names
}

// WatchNode reads the key, then watches it from the next revision, so no
// change between the read and the watch is missed. When the watch breaks
// (compaction, lost leader, closed stream) it reads again and starts over.
func (b *backend) WatchNode(ctx context.Context, key string, emit func(*coord.Node)) error {
	var bo backoff.Backoff
	for {
		resp, err := b.cli.Get(ctx, key)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.opErr(err)
			if werr := bo.Wait(ctx); werr != nil {
				return werr
			}
			continue
		}
		if len(resp.Kvs) == 0 {
			emit(nil)
		} else {
			emit(toNode(resp.Kvs[0]))
		}
		err = b.follow(ctx, key, resp.Header.Revision+1, nil, func(evs []*clientv3.Event) {
			for _, ev := range evs {
				if ev.Type == clientv3.EventTypeDelete {
					emit(nil)
				} else {
					emit(toNode(ev.Kv))
				}
			}
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		bo.Reset()
		b.log.Debug("etcd watch restarting", "key", key, "err", err)
		if werr := bo.Wait(ctx); werr != nil {
			return werr
		}
	}
}

// follow runs one etcd watch from rev until it breaks or ctx ends.
func (b *backend) follow(ctx context.Context, key string, rev int64, opts []clientv3.OpOption, apply func([]*clientv3.Event)) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel() // releases the watcher; clientv3 requires it
	wch := b.cli.Watch(wctx, key, append(opts, clientv3.WithRev(rev))...)
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return err
		}
		if len(wr.Events) > 0 {
			apply(wr.Events)
		}
	}
	return errors.New("etcd: watch channel closed")
}

// WatchChildren lists the children, then watches the node and everything
// below it from the next revision, keeping the set of direct children.
func (b *backend) WatchChildren(ctx context.Context, key string, emit func(bool, []string)) error {
	var bo backoff.Backoff
	end := clientv3.GetPrefixRangeEnd(key + "/")
	for {
		resp, err := b.cli.Get(ctx, key, clientv3.WithRange(end), clientv3.WithKeysOnly())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.opErr(err)
			if werr := bo.Wait(ctx); werr != nil {
				return werr
			}
			continue
		}
		exists, names := listChildren(key, resp.Kvs)
		set := make(map[string]struct{}, len(names))
		for _, n := range names {
			set[n] = struct{}{}
		}
		emitSet := func() {
			out := make([]string, 0, len(set))
			for n := range set {
				out = append(out, n)
			}
			emit(exists, out)
		}
		emitSet()
		err = b.follow(ctx, key, resp.Header.Revision+1, []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithKeysOnly()}, func(evs []*clientv3.Event) {
			for _, ev := range evs {
				k := string(ev.Kv.Key)
				del := ev.Type == clientv3.EventTypeDelete
				if k == key {
					exists = !del
				} else if n := childName(key+"/", k); n != "" {
					if del {
						delete(set, n)
					} else {
						set[n] = struct{}{}
					}
				}
			}
			emitSet()
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		bo.Reset()
		b.log.Debug("etcd children watch restarting", "key", key, "err", err)
		if werr := bo.Wait(ctx); werr != nil {
			return werr
		}
	}
}

// Close stops the keep-alive loop, revokes the lease (which deletes every
// ephemeral key at once and confirms it) and closes the client, all within
// ctx.
func (b *backend) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closing = true
	lease := b.lease
	b.mu.Unlock()
	b.cancel()
	var errs []error
	if lease != 0 {
		// Leave a third of the budget for the goroutine and the client.
		rctx := ctx
		if dl, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			rctx, cancel = context.WithTimeout(ctx, time.Until(dl)*2/3)
			defer cancel()
		}
		_, err := b.cli.Revoke(rctx, lease)
		if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			errs = append(errs, fmt.Errorf("%w (revoke lease %s: %v)", coord.ErrCloseUnconfirmed, hexLease(lease), mapErr(err)))
		}
	}
	if err := lifecycle.Wait(ctx, &b.wg); err != nil {
		errs = append(errs, fmt.Errorf("etcd: close: keep-alive goroutine still running: %w", err))
	}
	if err := b.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, fmt.Errorf("etcd: close client: %w", err))
	}
	return errors.Join(errs...)
}
