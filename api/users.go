package api

import (
	"context"
	"net/http"
	"net/url"
)

// Users lists users (admin only).
func (c *Client) Users(ctx context.Context) ([]User, error) {
	var out []User
	return out, c.do(ctx, http.MethodGet, "/api/v1/users", nil, nil, &out)
}

// CreateUser creates a user (admin only).
func (c *Client) CreateUser(ctx context.Context, u NewUser) (*User, error) {
	var out User
	return &out, c.do(ctx, http.MethodPost, "/api/v1/users", nil, u, &out)
}

// DeleteUser deletes a user and its tokens (admin only).
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/users/"+esc(name), nil, nil, nil)
}

// SetPassword sets a user's password (your own, or anyone's as admin).
func (c *Client) SetPassword(ctx context.Context, name, password string) error {
	return c.do(ctx, http.MethodPut, "/api/v1/users/"+esc(name)+"/password", nil, SetPassword{Password: password}, nil)
}

// SetRole changes a user's role (admin only).
func (c *Client) SetRole(ctx context.Context, name, role string) (*User, error) {
	var out User
	return &out, c.do(ctx, http.MethodPut, "/api/v1/users/"+esc(name)+"/role", nil, SetRole{Role: role}, &out)
}

// Tokens lists the tokens of the caller, or of user for an admin.
func (c *Client) Tokens(ctx context.Context, user string) ([]Token, error) {
	var out []Token
	return out, c.do(ctx, http.MethodGet, "/api/v1/tokens", userQuery(user), nil, &out)
}

// CreateToken creates a token; the answer holds its secret, shown once.
func (c *Client) CreateToken(ctx context.Context, t NewToken) (*Token, error) {
	var out Token
	return &out, c.do(ctx, http.MethodPost, "/api/v1/tokens", nil, t, &out)
}

// DeleteToken revokes a token of the caller, or of user for an admin.
func (c *Client) DeleteToken(ctx context.Context, user, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/tokens/"+esc(id), userQuery(user), nil, nil)
}

// Audit lists the newest audit entries (admin only).
func (c *Client) Audit(ctx context.Context) ([]AuditEntry, error) {
	var out []AuditEntry
	return out, c.do(ctx, http.MethodGet, "/api/v1/audit", nil, nil, &out)
}

func userQuery(user string) url.Values {
	if user == "" {
		return nil
	}
	return url.Values{"user": {user}}
}
