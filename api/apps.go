package api

import (
	"context"
	"net/http"
)

// Apps lists apps.
func (c *Client) Apps(ctx context.Context) ([]App, error) {
	var out []App
	return out, c.do(ctx, http.MethodGet, "/api/v1/apps", nil, nil, &out)
}

// App returns one app.
func (c *Client) App(ctx context.Context, name string) (*App, error) {
	var out App
	return &out, c.do(ctx, http.MethodGet, "/api/v1/apps/"+esc(name), nil, nil, &out)
}

// CreateApp binds a new app name to an existing cluster.
func (c *Client) CreateApp(ctx context.Context, a NewApp) (*App, error) {
	var out App
	return &out, c.do(ctx, http.MethodPost, "/api/v1/apps", nil, a, &out)
}

// SetAppConfig replaces an app's client config; clients apply it live.
func (c *Client) SetAppConfig(ctx context.Context, name string, cfg ClientConfig) (*App, error) {
	var out App
	return &out, c.do(ctx, http.MethodPut, "/api/v1/apps/"+esc(name)+"/config", nil, cfg, &out)
}

// AppClients lists an app's live clients with leak and zombie flags.
func (c *Client) AppClients(ctx context.Context, name string) (*AppClients, error) {
	var out AppClients
	return &out, c.do(ctx, http.MethodGet, "/api/v1/apps/"+esc(name)+"/clients", nil, nil, &out)
}

// Command runs one Redis command against an app's cluster, routed by key.
func (c *Client) Command(ctx context.Context, app, command string, confirm bool) (*CommandResult, error) {
	var out CommandResult
	return &out, c.do(ctx, http.MethodPost, "/api/v1/apps/"+esc(app)+"/command", nil, CommandRequest{Command: command, Confirm: confirm}, &out)
}
