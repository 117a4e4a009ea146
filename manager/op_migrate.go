package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
	"github.com/r2m-go/r2m/migrate"
)

// The migrate operation copies a source (a Redis outside R2M, or a
// registered cluster) into the operation's cluster with a sync link
// (package migrate) run by the leading server, and keeps it streaming:
// until the target has caught up (the default) or until cancelled. It is
// persisted like every operation: the link's per-shard replication state
// lives in /syncs/{link}/shards, so a new leader, or a resume after a pause,
// continues with PSYNC instead of copying again. The throttle caps the
// commands per second sent to the target.

// migrateParams are the stored parameters; api.MigrateParams is the
// request.
type migrateParams = api.MigrateParams

// migrateDetail is the stored detail of the plan.
type migrateDetail struct {
	Link        string   `json:"link"`
	SourceKind  string   `json:"source_kind"`
	SourceAddrs []string `json:"source_addrs"`
	Warnings    []string `json:"warnings,omitempty"`
}

// sourceURL parses redis://[user[:pass]@]host:port.
func sourceURL(s string) (addr, user, pass string, hasPass bool, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "redis" || u.Host == "" {
		return "", "", "", false, badRequest("from", "from %q: want redis://[user@]host:port", s)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return "", "", "", false, badRequest("from", "from %q: want host:port", s)
	}
	if u.User != nil {
		user = u.User.Username()
		pass, hasPass = u.User.Password()
	}
	return u.Host, user, pass, hasPass, nil
}

// migrateEndpoints resolves the source and the target of a migration.
func (s *Server) migrateEndpoints(ctx context.Context, target, link string, p *migrateParams) (src, dst migrate.Endpoint, kind string, err error) {
	switch {
	case p.From != "" && p.FromCluster != "":
		return src, dst, "", badRequest("from", "give from or from_cluster, not both")
	case p.From != "":
		addr, user, _, hasPass, err := sourceURL(p.From)
		if err != nil {
			return src, dst, "", err
		}
		if hasPass {
			return src, dst, "", badRequest("from", "from carries a password: store it with PUT /api/v1/syncs/{link}/credentials and leave it out of the URL")
		}
		src = migrate.Endpoint{Addrs: []string{addr}, Username: user}
		if cred, _, err := s.store.SyncCredentials(link).Get(ctx); err == nil {
			src.Password = cred.Password
		} else if !errors.Is(err, coord.ErrNotFound) {
			return src, dst, "", err
		}
		kind = "standalone"
	case p.FromCluster != "":
		if p.FromCluster == target {
			return src, dst, "", badRequest("from_cluster", "the source and the target are the same cluster")
		}
		if err := s.checkSourceSteady(ctx, p.FromCluster); err != nil {
			return src, dst, "", err
		}
		seeds, err := s.seeds(ctx, p.FromCluster)
		if err != nil {
			return src, dst, "", badRequest("from_cluster", "%v", err)
		}
		pw, err := s.password(ctx, p.FromCluster)
		if err != nil {
			return src, dst, "", badRequest("from_cluster", "%v", err)
		}
		src = migrate.Endpoint{Addrs: seeds, Password: pw}
		kind = "cluster"
	default:
		return src, dst, "", badRequest("from", "give from (redis://host:port) or from_cluster")
	}
	source := meta.SyncSource{Kind: kind, Cluster: p.FromCluster}
	if kind == "standalone" {
		source.Addr = src.Addrs[0]
	}
	if err := s.checkLinkReuse(ctx, link, target, source); err != nil {
		return src, dst, "", err
	}
	seeds, err := s.seeds(ctx, target)
	if err != nil {
		return src, dst, "", unavailable("cannot reach the target", err)
	}
	pw, err := s.password(ctx, target)
	if err != nil {
		return src, dst, "", err
	}
	return src, migrate.Endpoint{Addrs: seeds, Password: pw}, kind, nil
}

func checkMigrateParams(p *migrateParams) error {
	switch p.Mode {
	case "", string(migrate.AtLeastOnce), string(migrate.ExactlyOnce):
	default:
		return badRequest("mode", "mode %q: want at-least-once or exactly-once", p.Mode)
	}
	switch p.Until {
	case "", "caught-up", "cancel":
	default:
		return badRequest("until", "until %q: want caught-up or cancel", p.Until)
	}
	if p.TTLGrace != "" {
		if _, err := time.ParseDuration(p.TTLGrace); err != nil {
			return badRequest("rdb_ttl_grace", "rdb_ttl_grace %q: %v", p.TTLGrace, err)
		}
	}
	for k, v := range p.DBMap {
		if n, err := strconv.Atoi(k); err != nil || n < 0 || v != 0 {
			return badRequest("db_map", "db_map %s->%d: map source databases to 0, the only one a cluster has", k, v)
		}
	}
	if p.Link != "" {
		if err := meta.ValidateName("link", p.Link); err != nil {
			return badRequest("link", "%v", err)
		}
	}
	return nil
}

func planMigrate(ctx context.Context, req *opRequest) (*opPlan, error) {
	var p migrateParams
	if err := decodeParams(req.Params, &p); err != nil {
		return nil, err
	}
	if err := checkMigrateParams(&p); err != nil {
		return nil, err
	}
	if p.Link == "" {
		p.Link = "mig-" + req.Cluster + "-" + strings.ToLower(randomString(6))
		if meta.ValidateName("link", p.Link) != nil {
			p.Link = "mig-" + strings.ToLower(randomString(8))
		}
	}
	src, dst, kind, err := req.s.migrateEndpoints(ctx, req.Cluster, p.Link, &p)
	if err != nil {
		return nil, err
	}
	rep, err := migrate.CheckSource(ctx, src, 0)
	if err != nil {
		return nil, badRequest("from", "cannot use the source: %v", err)
	}
	if len(dst.Addrs) == 0 {
		return nil, unavailable("the target has no known node", nil)
	}
	params, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	detail := migrateDetail{Link: p.Link, SourceKind: kind, SourceAddrs: src.Addrs, Warnings: rep.Warnings}
	var b strings.Builder
	fmt.Fprintf(&b, "migrate %s %s into cluster %s as link %s (%s, until %s)\n", kind, strings.Join(rep.Masters, ", "), req.Cluster, p.Link,
		orDefault(p.Mode, string(migrate.AtLeastOnce)), orDefault(p.Until, "caught-up"))
	for _, w := range rep.Warnings {
		fmt.Fprintf(&b, "WARNING: %s\n", w)
	}
	return &opPlan{Steps: []string{"precheck", "sync"}, Detail: detail, Text: b.String(), Params: params}, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func runMigrate(ctx context.Context, x *opExec) error {
	var p migrateParams
	if err := x.params(&p); err != nil {
		return err
	}
	store := x.s.store
	var src, dst migrate.Endpoint
	var kind string
	resolve := func(ctx context.Context) error {
		var err error
		src, dst, kind, err = x.s.migrateEndpoints(ctx, x.op.Cluster, p.Link, &p)
		return err
	}
	err := x.step(ctx, "precheck", func(ctx context.Context) error {
		if err := resolve(ctx); err != nil {
			return err
		}
		rep, err := migrate.CheckSource(ctx, src, 0)
		if err != nil {
			return err
		}
		for _, w := range rep.Warnings {
			x.log.Warn("source check", "warning", w)
		}
		now := time.Now().UTC()
		_, _, err = store.SyncLink(p.Link).Upsert(ctx, func(l *meta.SyncLink) error {
			source := meta.SyncSource{Kind: kind, Cluster: p.FromCluster, User: src.Username, DBMap: p.DBMap}
			if kind == "standalone" {
				source.Addr = src.Addrs[0]
			}
			*l = meta.SyncLink{ID: p.Link, Source: source, Target: x.op.Cluster, Purpose: "migrate", Op: x.id,
				State: meta.SyncFullSync, ExactlyOnce: p.Mode == string(migrate.ExactlyOnce),
				BigValueBytes: p.BigValueBytes, CreatedAt: orNow(l.CreatedAt, now), UpdatedAt: now}
			return nil
		})
		return err
	})
	if err != nil {
		return err
	}
	return x.step(ctx, "sync", func(ctx context.Context) error {
		if src.Addrs == nil {
			if err := resolve(ctx); err != nil {
				return err
			}
		}
		return x.runLink(ctx, &p, src, dst)
	})
}

func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t
}

// runLink runs the link until it has caught up (or until ctx ends with
// until=cancel), stopping it while the operation is paused and following
// throttle changes.
func (x *opExec) runLink(ctx context.Context, p *migrateParams, src, dst migrate.Endpoint) error {
	grace := time.Duration(0)
	if p.TTLGrace != "" {
		grace, _ = time.ParseDuration(p.TTLGrace)
	}
	dbMap := map[int]int{}
	for k, v := range p.DBMap {
		n, _ := strconv.Atoi(k)
		dbMap[n] = v
	}
	if len(dbMap) == 0 {
		dbMap = nil
	}
	for {
		if err := x.gate(ctx); err != nil {
			return err
		}
		throttle, changed := x.throttle()
		l, err := migrate.New(migrate.Options{
			ID: p.Link, Source: src, Target: dst, SpoolDir: filepath.Join(x.s.cfg.DataDir, "spool", p.Link),
			State: syncState{store: x.s.store, link: p.Link}, Mode: migrate.Mode(p.Mode), DBMap: dbMap,
			BigValueBytes: p.BigValueBytes, TTLGrace: grace, RateLimit: throttle,
			Progress: func(st migrate.Stats) { x.linkProgress(p.Link, st) },
			Logger:   x.s.log.With("op", x.id, "link", p.Link),
		})
		if err != nil {
			return err
		}
		lctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- l.Run(lctx) }()
		caught := make(chan error, 1)
		if p.Until != "cancel" {
			go func() { caught <- l.WaitCaughtUp(lctx) }()
		}
		paused := false
	wait:
		for {
			select {
			case err := <-done:
				stop()
				if p.Until != "cancel" {
					<-caught
				}
				switch {
				case errors.Is(context.Cause(ctx), errOpCancelled):
					// An operator's cancel ends the link cleanly.
					x.linkProgress(p.Link, l.Stats())
					x.setLinkState(p.Link, meta.SyncStopped, nil)
				case ctx.Err() != nil:
					// Leadership lost: the next leader resumes the link,
					// so its state stays what it was.
				default:
					x.setLinkState(p.Link, meta.SyncBlocked, err)
				}
				if err == nil {
					err = ctx.Err()
				}
				return err
			case err := <-caught:
				if err == nil {
					stop()
					rerr := <-done
					x.linkProgress(p.Link, l.Stats())
					x.setLinkState(p.Link, meta.SyncStopped, rerr)
					x.log.Info("migration caught up", "link", p.Link)
					return rerr
				}
			case <-changed:
				throttle, changed = x.throttle()
				l.SetRateLimit(throttle)
				x.ctl.mu.Lock()
				paused = x.ctl.paused
				x.ctl.mu.Unlock()
				if paused {
					break wait
				}
			}
		}
		stop()
		err = <-done
		if p.Until != "cancel" {
			<-caught
		}
		x.setLinkState(p.Link, meta.SyncPaused, nil)
		if err != nil {
			return err
		}
	}
}

// linkProgress records the link's progress on the operation and its shard
// records.
func (x *opExec) linkProgress(link string, st migrate.Stats) {
	prog := meta.Progress{SlotsTotal: len(st.Shards), KeysMoved: st.RDBKeys}
	state := meta.SyncStreaming
	for _, sh := range st.Shards {
		prog.BytesMoved += sh.RDBBytes
		if sh.Phase == migrate.PhaseStream && sh.LagBytes == 0 {
			prog.SlotsDone++
		}
		if sh.Phase != migrate.PhaseStream {
			state = meta.SyncFullSync
		}
	}
	x.progress(prog, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, sh := range st.Shards {
		_, _, err := x.s.store.SyncShard(link, sh.Shard).Upsert(ctx, func(r *meta.SyncShard) error {
			r.Shard, r.Addr, r.Phase, r.RDBKeys = sh.Shard, sh.Addr, sh.Phase, sh.RDBKeys
			r.MasterOffset, r.LagBytes, r.LagMs = sh.SourceOffset, sh.LagBytes, sh.LagMs
			r.UpdatedAt = time.Now().UTC()
			return nil
		})
		if err != nil {
			x.log.Warn("recording link progress", "shard", sh.Shard, "err", err)
		}
	}
	x.setLinkState(link, state, nil)
}

func (x *opExec) setLinkState(link, state string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, uerr := x.s.store.SyncLink(link).Update(ctx, func(l *meta.SyncLink) error {
		if l.State == state && err == nil && l.Error == "" {
			return errLinkUnchanged
		}
		l.State, l.Error, l.UpdatedAt = state, "", time.Now().UTC()
		if err != nil {
			l.Error = err.Error()
		}
		return nil
	})
	if uerr != nil && !errors.Is(uerr, errLinkUnchanged) {
		x.log.Warn("recording link state", "link", link, "err", uerr)
	}
}

var errLinkUnchanged = errors.New("unchanged")

// syncState keeps a link's per-shard replication state in
// /syncs/{link}/shards/{shard}.
type syncState struct {
	store *meta.Store
	link  string
}

// Load implements migrate.StateStore.
func (s syncState) Load(ctx context.Context, shard string) (migrate.ShardState, bool, error) {
	r, _, err := s.store.SyncShard(s.link, shard).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return migrate.ShardState{}, false, nil
	}
	if err != nil {
		return migrate.ShardState{}, false, err
	}
	return migrate.ShardState{Shard: shard, Addr: r.Addr, ReplID: r.ReplID, Offset: r.Applied, RDBDone: r.RDBDone,
		DB: r.DB, FullSyncs: r.FullSyncs, Resumes: r.Resumes, Updated: r.UpdatedAt}, r.ReplID != "", nil
}

// Save implements migrate.StateStore.
func (s syncState) Save(ctx context.Context, st migrate.ShardState) error {
	_, _, err := s.store.SyncShard(s.link, st.Shard).Upsert(ctx, func(r *meta.SyncShard) error {
		r.Shard, r.Addr, r.ReplID, r.Applied, r.RDBDone, r.DB = st.Shard, st.Addr, st.ReplID, st.Offset, st.RDBDone, st.DB
		r.FullSyncs, r.Resumes, r.UpdatedAt = st.FullSyncs, st.Resumes, st.Updated.UTC()
		return nil
	})
	return err
}

// ---- /api/v1/syncs ----

func toAPISync(l *meta.SyncLink, shards []*meta.SyncShard) api.SyncLink {
	src := l.Source.Cluster
	if l.Source.Kind != "cluster" {
		src = l.Source.Addr
	}
	out := api.SyncLink{ID: l.ID, SourceKind: l.Source.Kind, Source: src, Target: l.Target, Op: l.Op, State: l.State,
		ExactlyOnce: l.ExactlyOnce, Error: l.Error, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt, Shards: []api.SyncShard{}}
	for _, sh := range shards {
		out.Shards = append(out.Shards, api.SyncShard{Shard: sh.Shard, Addr: sh.Addr, Phase: sh.Phase, ReplID: sh.ReplID,
			Applied: sh.Applied, RDBDone: sh.RDBDone, RDBKeys: sh.RDBKeys, LagBytes: sh.LagBytes, LagMs: sh.LagMs,
			FullSyncs: sh.FullSyncs, Resumes: sh.Resumes, UpdatedAt: sh.UpdatedAt})
	}
	return out
}

func (s *Server) readSync(ctx context.Context, link string) (*api.SyncLink, error) {
	l, _, err := s.store.SyncLink(link).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) || errors.Is(err, meta.ErrInvalidName) {
		return nil, notFound("no link %q", link)
	}
	if err != nil {
		return nil, err
	}
	names, err := s.store.SyncShards(link).Names(ctx)
	if err != nil && !errors.Is(err, coord.ErrNotFound) {
		return nil, err
	}
	sort.Strings(names)
	var shards []*meta.SyncShard
	for _, n := range names {
		if sh, _, err := s.store.SyncShard(link, n).Get(ctx); err == nil {
			shards = append(shards, sh)
		}
	}
	out := toAPISync(l, shards)
	return &out, nil
}

// listSyncs handles GET /api/v1/syncs.
func (s *Server) listSyncs(r *http.Request, _ *principal) (any, error) {
	names, err := s.store.Syncs().Names(r.Context())
	if err != nil && !errors.Is(err, coord.ErrNotFound) {
		return nil, err
	}
	sort.Strings(names)
	out := []api.SyncLink{}
	for _, n := range names {
		l, err := s.readSync(r.Context(), n)
		if err != nil {
			continue // a credentials-only link, or one deleted meanwhile
		}
		out = append(out, *l)
	}
	return out, nil
}

// getSync handles GET /api/v1/syncs/{link}.
func (s *Server) getSync(r *http.Request, _ *principal) (any, error) {
	return s.readSync(r.Context(), r.PathValue("link"))
}

// setSyncCredentials handles PUT /api/v1/syncs/{link}/credentials.
func (s *Server) setSyncCredentials(r *http.Request, _ *principal) (any, error) {
	link := r.PathValue("link")
	if err := meta.ValidateName("link", link); err != nil {
		return nil, badRequest("link", "%v", err)
	}
	var in struct {
		Password string `json:"password"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	_, _, err := s.store.SyncCredentials(link).Upsert(r.Context(), func(c *meta.Credentials) error {
		c.Password = in.Password
		return nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"link": link}, nil
}

// syncRoutes registers the link endpoints.
func (s *Server) syncRoutes() {
	s.handle("GET /api/v1/syncs", route{role: meta.Viewer, h: s.listSyncs})
	s.handle("GET /api/v1/syncs/{link}", route{role: meta.Viewer, h: s.getSync})
	s.handle("PUT /api/v1/syncs/{link}/credentials", route{role: meta.Operator, mutating: true, audited: true,
		target: func(r *http.Request) string { return r.PathValue("link") }, h: s.setSyncCredentials})
	s.handle("DELETE /api/v1/syncs/{link}", route{role: meta.Operator, mutating: true,
		target: func(r *http.Request) string { return r.PathValue("link") }, h: s.deleteSync})
}
