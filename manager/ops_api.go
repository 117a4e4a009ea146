package manager

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

func toAPIOp(o *meta.Operation) api.Operation {
	var sp storedPlan
	_ = json.Unmarshal(o.Plan, &sp)
	out := api.Operation{
		ID: o.ID, Type: o.Type, Cluster: o.Cluster, State: string(o.State), PlanText: sp.Text, Params: sp.Params,
		Throttle: o.Throttle, Owner: o.Owner, CreatedBy: o.CreatedBy, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
		Error: o.Error, CheckFindings: o.CheckFindings, CheckDone: !o.CheckedAt.IsZero(),
		Progress: api.OpProgress{
			SlotsDone: o.Progress.SlotsDone, SlotsTotal: o.Progress.SlotsTotal, KeysMoved: o.Progress.KeysMoved,
			BytesMoved: o.Progress.BytesMoved, KeysPerSec: o.Progress.KeysPerSec,
		},
	}
	if o.Progress.ETA > 0 {
		out.Progress.ETA = time.Duration(o.Progress.ETA).Round(time.Second).String()
	}
	for _, st := range o.Steps {
		out.Steps = append(out.Steps, api.OpStep{Name: st.Name, State: string(st.State), StartedAt: st.StartedAt, FinishedAt: st.FinishedAt, Error: st.Error})
	}
	return out
}

// maxOpsList bounds one listing; the newest come first.
const maxOpsList = 200

func (s *Server) listOps(r *http.Request, _ *principal) (any, error) {
	ids, err := s.store.Ops().Names(r.Context())
	if err != nil {
		return nil, err
	}
	slices.Reverse(ids) // ids sort by creation time
	filter := r.URL.Query().Get("cluster")
	out := []api.Operation{}
	for _, id := range ids {
		if len(out) == maxOpsList {
			break
		}
		o, _, err := s.store.Op(id).Get(r.Context())
		if err != nil || (filter != "" && o.Cluster != filter) {
			continue
		}
		out = append(out, toAPIOp(o))
	}
	return out, nil
}

func (s *Server) getOp(r *http.Request, _ *principal) (any, error) {
	id := r.PathValue("id")
	o, _, err := s.store.Op(id).Get(r.Context())
	if errors.Is(err, coord.ErrNotFound) {
		return nil, notFound("no operation %q", id)
	}
	if err != nil {
		return nil, err
	}
	return toAPIOp(o), nil
}

// controlOp changes an operation's state for pause, resume and cancel; the
// running operation follows its record.
func (s *Server) controlOp(action string) apiFunc {
	return func(r *http.Request, _ *principal) (any, error) {
		id := r.PathValue("id")
		o, _, err := s.store.Op(id).Update(r.Context(), func(o *meta.Operation) error {
			if o.State.Done() {
				return conflict("operation %s has already ended (%s)", id, o.State)
			}
			switch action {
			case "pause":
				if o.State == meta.OpCancelling {
					return conflict("operation %s is being cancelled", id)
				}
				o.State = meta.OpPaused
			case "resume":
				if o.State != meta.OpPaused {
					return conflict("operation %s is %s, not paused", id, o.State)
				}
				o.State = meta.OpRunning
			case "cancel":
				o.State = meta.OpCancelling
			}
			o.UpdatedAt = time.Now().UTC()
			return nil
		})
		if errors.Is(err, coord.ErrNotFound) {
			return nil, notFound("no operation %q", id)
		}
		if err != nil {
			return nil, err
		}
		return toAPIOp(o), nil
	}
}

func (s *Server) throttleOp(r *http.Request, _ *principal) (any, error) {
	id := r.PathValue("id")
	var in api.SetThrottle
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if in.KeysPerSec < 0 {
		return nil, badRequest("keys_per_sec", "keys_per_sec %d: want 0 (no cap) or more", in.KeysPerSec)
	}
	o, _, err := s.store.Op(id).Update(r.Context(), func(o *meta.Operation) error {
		if o.State.Done() {
			return conflict("operation %s has already ended (%s)", id, o.State)
		}
		o.Throttle = in.KeysPerSec
		return nil
	})
	if errors.Is(err, coord.ErrNotFound) {
		return nil, notFound("no operation %q", id)
	}
	if err != nil {
		return nil, err
	}
	return toAPIOp(o), nil
}

// opOptions are the request fields every operation takes.
type opOptions struct {
	dryRun   bool
	throttle int
}

// opBody splits an operation request body into the common options
// (dry_run, throttle) and the kind's parameters.
func opBody(r *http.Request) (json.RawMessage, opOptions, error) {
	var (
		m   map[string]json.RawMessage
		opt opOptions
	)
	if err := decode(r, &m); err != nil {
		return nil, opt, err
	}
	if raw, ok := m["dry_run"]; ok {
		if err := json.Unmarshal(raw, &opt.dryRun); err != nil {
			return nil, opt, badRequest("dry_run", "dry_run: want true or false")
		}
		delete(m, "dry_run")
	}
	if raw, ok := m["throttle"]; ok {
		if err := json.Unmarshal(raw, &opt.throttle); err != nil || opt.throttle < 0 {
			return nil, opt, badRequest("throttle", "throttle: want keys per second, 0 for no cap")
		}
		delete(m, "throttle")
	}
	params, err := json.Marshal(m)
	return params, opt, err
}

// startOp handles POST /api/v1/clusters/{name}/{kind}.
func (s *Server) startOp(kind string) apiFunc {
	return func(r *http.Request, p *principal) (any, error) {
		params, opt, err := opBody(r)
		if err != nil {
			return nil, err
		}
		return s.submit(r.Context(), kind, r.PathValue("name"), params, opt, p)
	}
}

func (s *Server) submit(ctx context.Context, kind, clusterName string, params json.RawMessage, opt opOptions, p *principal) (any, error) {
	op, plan, err := s.submitOp(ctx, kind, &opRequest{s: s, Cluster: clusterName, Params: params, User: p.User, Throttle: opt.throttle}, opt.dryRun)
	if err != nil {
		return nil, err
	}
	if opt.dryRun {
		detail, _ := json.Marshal(plan.Detail)
		return api.DryRun{Type: kind, Cluster: clusterName, PlanText: plan.Text, Steps: plan.Steps, Detail: detail}, nil
	}
	return accepted{toAPIOp(op)}, nil
}

// adoptCluster handles POST /api/v1/clusters/adopt, whose body names the
// cluster.
func (s *Server) adoptCluster(r *http.Request, p *principal) (any, error) {
	params, opt, err := opBody(r)
	if err != nil {
		return nil, err
	}
	var name struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(params, &name)
	if err := required("name", name.Name); err != nil {
		return nil, err
	}
	return s.submit(r.Context(), "adopt", name.Name, params, opt, p)
}
