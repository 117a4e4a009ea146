package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Ops lists operations, newest first, optionally of one cluster.
func (c *Client) Ops(ctx context.Context, cluster string) ([]Operation, error) {
	var q url.Values
	if cluster != "" {
		q = url.Values{"cluster": {cluster}}
	}
	var out []Operation
	return out, c.do(ctx, http.MethodGet, "/api/v1/ops", q, nil, &out)
}

// Op returns one operation.
func (c *Client) Op(ctx context.Context, id string) (*Operation, error) {
	var out Operation
	return &out, c.do(ctx, http.MethodGet, "/api/v1/ops/"+esc(id), nil, nil, &out)
}

// PauseOp pauses an operation at its next safe point.
func (c *Client) PauseOp(ctx context.Context, id string) (*Operation, error) {
	return c.opControl(ctx, id, "pause")
}

// ResumeOp resumes a paused operation.
func (c *Client) ResumeOp(ctx context.Context, id string) (*Operation, error) {
	return c.opControl(ctx, id, "resume")
}

// CancelOp cancels an operation; it stops at its next safe point and
// leaves the cluster consistent.
func (c *Client) CancelOp(ctx context.Context, id string) (*Operation, error) {
	return c.opControl(ctx, id, "cancel")
}

func (c *Client) opControl(ctx context.Context, id, action string) (*Operation, error) {
	var out Operation
	return &out, c.do(ctx, http.MethodPost, "/api/v1/ops/"+esc(id)+"/"+action, nil, struct{}{}, &out)
}

// ThrottleOp sets an operation's key rate cap (0 removes it).
func (c *Client) ThrottleOp(ctx context.Context, id string, keysPerSec int) (*Operation, error) {
	var out Operation
	return &out, c.do(ctx, http.MethodPut, "/api/v1/ops/"+esc(id)+"/throttle", nil, SetThrottle{KeysPerSec: keysPerSec}, &out)
}

// StartOp asks for an operation on a cluster: POST
// /api/v1/clusters/{cluster}/{kind} with params. With dryRun it returns the
// plan and starts nothing; otherwise it returns the accepted operation.
func (c *Client) StartOp(ctx context.Context, cluster, kind string, params any, dryRun bool) (*Operation, *DryRun, error) {
	body, err := withDryRun(params, dryRun)
	if err != nil {
		return nil, nil, err
	}
	path := "/api/v1/clusters/" + esc(cluster) + "/" + esc(kind)
	if dryRun {
		var d DryRun
		return nil, &d, c.do(ctx, http.MethodPost, path, nil, body, &d)
	}
	var op Operation
	return &op, nil, c.do(ctx, http.MethodPost, path, nil, body, &op)
}

// withDryRun merges "dry_run" into the params object.
func withDryRun(params any, dryRun bool) (map[string]any, error) {
	m := map[string]any{}
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
	}
	if dryRun {
		m["dry_run"] = true
	}
	return m, nil
}

// WaitOp polls an operation until it ends or ctx ends, calling progress
// (if not nil) with each state it reads.
func (c *Client) WaitOp(ctx context.Context, id string, every time.Duration, progress func(*Operation)) (*Operation, error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		op, err := c.Op(ctx, id)
		if err != nil {
			return nil, err
		}
		if progress != nil {
			progress(op)
		}
		if op.Done() {
			return op, nil
		}
		select {
		case <-ctx.Done():
			return op, ctx.Err()
		case <-t.C:
		}
	}
}
