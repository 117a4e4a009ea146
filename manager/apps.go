package manager

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

func toAPIConfig(c meta.ClientConfig) api.ClientConfig {
	d := func(v meta.Duration) string {
		if v == 0 {
			return ""
		}
		return time.Duration(v).String()
	}
	return api.ClientConfig{
		PoolSize: c.PoolSize, DialTimeout: d(c.DialTimeout), ReadTimeout: d(c.ReadTimeout), WriteTimeout: d(c.WriteTimeout),
		MaxRetries: c.MaxRetries, ReadFromReplica: c.ReadFromReplica, ClientCache: c.ClientCache,
		ClientCacheBytes: c.ClientCacheBytes, HeartbeatInterval: d(c.HeartbeatInterval),
	}
}

// fromAPIConfig validates a client config from a request.
func fromAPIConfig(c api.ClientConfig) (meta.ClientConfig, error) {
	var errs []error
	dur := func(field, v string, min, max time.Duration) meta.Duration {
		if v == "" {
			return 0
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < min || d > max {
			errs = append(errs, badRequest(field, "%s %q: want a duration between %v and %v, such as 2s", field, v, min, max))
		}
		return meta.Duration(d)
	}
	out := meta.ClientConfig{
		PoolSize: c.PoolSize, MaxRetries: c.MaxRetries, ReadFromReplica: c.ReadFromReplica,
		ClientCache: c.ClientCache, ClientCacheBytes: c.ClientCacheBytes,
		DialTimeout:       dur("dial_timeout", c.DialTimeout, 10*time.Millisecond, time.Minute),
		ReadTimeout:       dur("read_timeout", c.ReadTimeout, 10*time.Millisecond, time.Minute),
		WriteTimeout:      dur("write_timeout", c.WriteTimeout, 10*time.Millisecond, time.Minute),
		HeartbeatInterval: dur("heartbeat_interval", c.HeartbeatInterval, time.Second, time.Hour),
	}
	if c.PoolSize < 0 || c.PoolSize > 10000 {
		errs = append(errs, badRequest("pool_size", "pool_size %d: want 0 (default) to 10000", c.PoolSize))
	}
	if c.MaxRetries < -1 || c.MaxRetries > 100 {
		errs = append(errs, badRequest("max_retries", "max_retries %d: want -1 (no retries), 0 (default) or up to 100", c.MaxRetries))
	}
	if c.ClientCacheBytes < 0 || c.ClientCacheBytes > 64<<30 {
		errs = append(errs, badRequest("client_cache_bytes", "client_cache_bytes %d: want 0 (default) to 64 GiB", c.ClientCacheBytes))
	}
	if len(errs) > 0 {
		return out, errs[0] // the first problem, with its field
	}
	return out, nil
}

func (s *Server) toAPIApp(ctx context.Context, a *meta.App) (api.App, error) {
	ids, err := s.store.Clients(a.Name).Names(ctx)
	if err != nil {
		return api.App{}, err
	}
	return api.App{
		Name: a.Name, ActiveCluster: a.ActiveCluster, StandbyClusters: a.StandbyClusters,
		Config: toAPIConfig(a.Client), ConfigVersion: a.ConfigVersion, Clients: len(ids),
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
	}, nil
}

func (s *Server) listApps(r *http.Request, _ *principal) (any, error) {
	names, err := s.store.Apps().Names(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]api.App, 0, len(names))
	for _, n := range names {
		a, _, err := s.store.App(n).Get(r.Context())
		if errors.Is(err, coord.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		v, err := s.toAPIApp(r.Context(), a)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Server) getApp(r *http.Request, _ *principal) (any, error) {
	name := r.PathValue("app")
	a, _, err := s.store.App(name).Get(r.Context())
	if errors.Is(err, coord.ErrNotFound) {
		return nil, notFound("no app %q", name)
	}
	if err != nil {
		return nil, err
	}
	return s.toAPIApp(r.Context(), a)
}

func (s *Server) createApp(r *http.Request, _ *principal) (any, error) {
	var in api.NewApp
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := errors.Join(required("name", in.Name), required("cluster", in.Cluster)); err != nil {
		return nil, err
	}
	if err := meta.ValidateName("app", in.Name); err != nil {
		return nil, badRequest("name", "%v", err)
	}
	if _, _, err := s.store.Cluster(in.Cluster).Get(r.Context()); errors.Is(err, coord.ErrNotFound) || errors.Is(err, meta.ErrInvalidName) {
		return nil, badRequest("cluster", "no cluster %q", in.Cluster)
	} else if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	a := &meta.App{Name: in.Name, ActiveCluster: in.Cluster, ConfigVersion: 1, CreatedAt: now, UpdatedAt: now}
	if err := s.store.App(in.Name).Create(r.Context(), a); errors.Is(err, coord.ErrExists) {
		return nil, conflict("app %q already exists", in.Name)
	} else if err != nil {
		return nil, err
	}
	v, err := s.toAPIApp(r.Context(), a)
	return created{v}, err
}

// setAppConfig replaces an app's client config and raises its version;
// every client of the app applies it through its watch.
func (s *Server) setAppConfig(r *http.Request, _ *principal) (any, error) {
	name := r.PathValue("app")
	var in api.ClientConfig
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	cfg, err := fromAPIConfig(in)
	if err != nil {
		return nil, err
	}
	a, _, err := s.store.App(name).Update(r.Context(), func(a *meta.App) error {
		a.Client = cfg
		a.ConfigVersion++
		a.UpdatedAt = time.Now().UTC()
		return nil
	})
	if errors.Is(err, coord.ErrNotFound) {
		return nil, notFound("no app %q", name)
	}
	if err != nil {
		return nil, err
	}
	return s.toAPIApp(r.Context(), a)
}

func (s *Server) appClients(r *http.Request, _ *principal) (any, error) {
	ctx := r.Context()
	name := r.PathValue("app")
	if _, _, err := s.store.App(name).Get(ctx); errors.Is(err, coord.ErrNotFound) {
		return nil, notFound("no app %q", name)
	} else if err != nil {
		return nil, err
	}
	records, err := s.readClients(ctx, name)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	history := s.history.get(name)
	flags, per := detectClientProblems(name, records, history, now, s.cfg.Leaks)
	out := api.AppClients{App: name, Count: len(records), Clients: make([]api.ClientInfo, 0, len(records)), Flags: flags, History: history}
	for _, c := range records {
		hb := c.Heartbeat.At
		if hb.IsZero() {
			hb = c.CreatedAt
		}
		out.Clients = append(out.Clients, api.ClientInfo{
			ID: c.ID, Name: c.Name, Host: c.Host, PID: c.PID, ProcessStart: c.ProcessStart,
			CreationSite: c.CreationSite, CreatedAt: c.CreatedAt, Age: now.Sub(c.CreatedAt).Round(time.Second).String(),
			ClientVersion: c.ClientVersion, GoVersion: c.GoVersion, Cluster: c.Cluster,
			TopologyEpoch: c.TopologyEpoch, ConfigVersion: c.ConfigVersion, OpenConns: c.OpenConns,
			HeartbeatAt: c.Heartbeat.At, HeartbeatAge: now.Sub(hb).Round(time.Second).String(),
			Commands: c.Heartbeat.Commands, Errors: c.Heartbeat.Errors,
			P50: time.Duration(c.Heartbeat.P50).String(), P99: time.Duration(c.Heartbeat.P99).String(),
			Flags: per[c.ID],
		})
	}
	return out, nil
}

// readClients reads every registration of an app, skipping records that
// vanish between the listing and the read (a client closing).
func (s *Server) readClients(ctx context.Context, app string) ([]*meta.Client, error) {
	ids, err := s.store.Clients(app).Names(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*meta.Client, 0, len(ids))
	for _, id := range ids {
		c, _, err := s.store.Client(app, id).Get(ctx)
		if errors.Is(err, coord.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// countHistory keeps recent samples of each app's client count, for the
// console's chart and the "only rising" flag. It lives in memory: a server
// that just started has no history yet.
type countHistory struct {
	mu      sync.Mutex
	samples map[string][]api.CountSample
}

// maxSamples bounds the history per app (two hours at the default 30s).
const maxSamples = 240

func (h *countHistory) add(app string, smp api.CountSample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.samples == nil {
		h.samples = make(map[string][]api.CountSample)
	}
	s := append(h.samples[app], smp)
	if len(s) > maxSamples {
		s = s[len(s)-maxSamples:]
	}
	h.samples[app] = s
}

func (h *countHistory) get(app string) []api.CountSample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]api.CountSample(nil), h.samples[app]...)
}

// sampleClients records every app's client count each interval until ctx
// ends.
func (s *Server) sampleClients(ctx context.Context) error {
	t := time.NewTicker(s.cfg.ClientSampleInterval)
	defer t.Stop()
	for {
		apps, err := s.store.Apps().Names(ctx)
		if err == nil {
			now := time.Now().UTC()
			for _, a := range apps {
				if ids, err := s.store.Clients(a).Names(ctx); err == nil {
					s.history.add(a, api.CountSample{Time: now, Count: len(ids)})
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// bindApp creates an app pointing at a cluster, or leaves an existing app
// that already points there alone.
func (s *Server) bindApp(ctx context.Context, app, clusterName string) error {
	now := time.Now().UTC()
	err := s.store.App(app).Create(ctx, &meta.App{Name: app, ActiveCluster: clusterName, ConfigVersion: 1, CreatedAt: now, UpdatedAt: now})
	if errors.Is(err, coord.ErrExists) {
		a, _, gerr := s.store.App(app).Get(ctx)
		if gerr != nil {
			return gerr
		}
		if a.ActiveCluster != clusterName {
			return fmt.Errorf("app %q already exists and points at cluster %q", app, a.ActiveCluster)
		}
		return nil
	}
	return err
}
