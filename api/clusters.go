package api

import (
	"context"
	"net/http"
)

// Clusters lists clusters.
func (c *Client) Clusters(ctx context.Context) ([]Cluster, error) {
	var out []Cluster
	return out, c.do(ctx, http.MethodGet, "/api/v1/clusters", nil, nil, &out)
}

// Cluster returns a cluster with its nodes.
func (c *Client) Cluster(ctx context.Context, name string) (*ClusterDetail, error) {
	var out ClusterDetail
	return &out, c.do(ctx, http.MethodGet, "/api/v1/clusters/"+esc(name), nil, nil, &out)
}

// Check runs a check of the cluster now.
func (c *Client) Check(ctx context.Context, name string) (*CheckResult, error) {
	var out CheckResult
	return &out, c.do(ctx, http.MethodGet, "/api/v1/clusters/"+esc(name)+"/check", nil, nil, &out)
}

// Credentials returns the cluster's Redis password (admin only; audited).
func (c *Client) Credentials(ctx context.Context, name string) (*Credentials, error) {
	var out Credentials
	return &out, c.do(ctx, http.MethodGet, "/api/v1/clusters/"+esc(name)+"/credentials", nil, nil, &out)
}

// Adopt registers an existing Redis Cluster, reached through one of its
// nodes. With dryRun it only says what it found.
func (c *Client) Adopt(ctx context.Context, params AdoptParams, dryRun bool) (*Operation, *DryRun, error) {
	body, err := withDryRun(params, dryRun)
	if err != nil {
		return nil, nil, err
	}
	if dryRun {
		var d DryRun
		return nil, &d, c.do(ctx, http.MethodPost, "/api/v1/clusters/adopt", nil, body, &d)
	}
	var op Operation
	return &op, nil, c.do(ctx, http.MethodPost, "/api/v1/clusters/adopt", nil, body, &op)
}

// CreateCluster deploys a new cluster on the running agents (params as
// CreateParams, or a map). With dryRun it returns the placement plan.
func (c *Client) CreateCluster(ctx context.Context, params any, dryRun bool) (*Operation, *DryRun, error) {
	body, err := withDryRun(params, dryRun)
	if err != nil {
		return nil, nil, err
	}
	if dryRun {
		var d DryRun
		return nil, &d, c.do(ctx, http.MethodPost, "/api/v1/clusters", nil, body, &d)
	}
	var op Operation
	return &op, nil, c.do(ctx, http.MethodPost, "/api/v1/clusters", nil, body, &op)
}

// Agents lists the host agents, live or not, with their load.
func (c *Client) Agents(ctx context.Context) ([]Agent, error) {
	var out []Agent
	return out, c.do(ctx, http.MethodGet, "/api/v1/agents", nil, nil, &out)
}
