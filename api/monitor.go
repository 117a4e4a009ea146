package api

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// AlertRule is an alert rule (GET/PUT /api/v1/monitor/rules/{name}).
// Durations are Go duration strings.
type AlertRule struct {
	Name        string                  `json:"name"`
	Metric      string                  `json:"metric"`
	Op          string                  `json:"op"`
	Threshold   float64                 `json:"threshold"`
	For         string                  `json:"for,omitempty"`
	Severity    string                  `json:"severity"`
	Repeat      string                  `json:"repeat,omitempty"`
	Channels    []string                `json:"channels,omitempty"`
	Disabled    bool                    `json:"disabled,omitempty"`
	Description string                  `json:"description,omitempty"`
	Clusters    map[string]RuleOverride `json:"clusters,omitempty"`
	BuiltIn     bool                    `json:"builtin,omitempty"`
	Customized  bool                    `json:"customized,omitempty"`
}

// RuleOverride changes a rule for one cluster.
type RuleOverride struct {
	Threshold *float64 `json:"threshold,omitempty"`
	For       *string  `json:"for,omitempty"`
	Severity  string   `json:"severity,omitempty"`
	Disabled  *bool    `json:"disabled,omitempty"`
}

// AlertChannel is a notification channel. Reads redact the URL's tokens
// and the secret; sending "***" back keeps the stored value.
type AlertChannel struct {
	Name         string            `json:"name"`
	Type         string            `json:"type"` // webhook, dingtalk, wecom, slack
	URL          string            `json:"url"`
	Secret       string            `json:"secret,omitempty"`
	Headers      map[string]string `json:"headers,omitempty"`
	MinSeverity  string            `json:"min_severity,omitempty"`
	SkipResolved bool              `json:"skip_resolved,omitempty"`
	Disabled     bool              `json:"disabled,omitempty"`
}

// Delivery is the outcome of one notification to one channel.
type Delivery struct {
	Channel  string    `json:"channel"`
	Type     string    `json:"type"`
	OK       bool      `json:"ok"`
	Error    string    `json:"error,omitempty"`
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
}

// Alert is an alert pending or firing.
type Alert struct {
	Key       string    `json:"key"`
	Rule      string    `json:"rule"`
	Severity  string    `json:"severity"`
	State     string    `json:"state"`
	Cluster   string    `json:"cluster,omitempty"`
	Node      string    `json:"node,omitempty"`
	App       string    `json:"app,omitempty"`
	Metric    string    `json:"metric"`
	Value     float64   `json:"value"`
	Summary   string    `json:"summary"`
	StartsAt  time.Time `json:"starts_at"`
	FiringAt  time.Time `json:"firing_at,omitzero"`
	Notified  int       `json:"notifications"`
	Threshold float64   `json:"threshold"`
}

// AlertEvent is one entry of the alert history.
type AlertEvent struct {
	Alert
	ID         int64      `json:"id"`
	Time       time.Time  `json:"time"`
	Kind       string     `json:"kind"` // firing, repeat, resolved, test
	Deliveries []Delivery `json:"deliveries"`
}

// AlertRules lists the alert rules.
func (c *Client) AlertRules(ctx context.Context) ([]AlertRule, error) {
	var out []AlertRule
	return out, c.do(ctx, http.MethodGet, "/api/v1/monitor/rules", nil, nil, &out)
}

// SetAlertRule creates or replaces a rule (operator).
func (c *Client) SetAlertRule(ctx context.Context, r AlertRule) (*AlertRule, error) {
	var out AlertRule
	return &out, c.do(ctx, http.MethodPut, "/api/v1/monitor/rules/"+esc(r.Name), nil, r, &out)
}

// DeleteAlertRule deletes a custom rule or restores a built-in one.
func (c *Client) DeleteAlertRule(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/monitor/rules/"+esc(name), nil, nil, nil)
}

// AlertChannels lists the notification channels (operator).
func (c *Client) AlertChannels(ctx context.Context) ([]AlertChannel, error) {
	var out []AlertChannel
	return out, c.do(ctx, http.MethodGet, "/api/v1/monitor/channels", nil, nil, &out)
}

// SetAlertChannel creates or replaces a channel (admin).
func (c *Client) SetAlertChannel(ctx context.Context, ch AlertChannel) (*AlertChannel, error) {
	var out AlertChannel
	return &out, c.do(ctx, http.MethodPut, "/api/v1/monitor/channels/"+esc(ch.Name), nil, ch, &out)
}

// DeleteAlertChannel deletes a channel (admin).
func (c *Client) DeleteAlertChannel(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/monitor/channels/"+esc(name), nil, nil, nil)
}

// TestAlertChannel sends a test notification and says whether it arrived.
func (c *Client) TestAlertChannel(ctx context.Context, name string) (*Delivery, error) {
	var out Delivery
	return &out, c.do(ctx, http.MethodPost, "/api/v1/monitor/channels/"+esc(name)+"/test", nil, struct{}{}, &out)
}

// Alerts lists the alerts firing now.
func (c *Client) Alerts(ctx context.Context) ([]Alert, error) {
	var out []Alert
	return out, c.do(ctx, http.MethodGet, "/api/v1/monitor/alerts", nil, nil, &out)
}

// AlertHistory lists notifications since from (a duration ago, such as
// "24h", or an RFC 3339 time).
func (c *Client) AlertHistory(ctx context.Context, from string) ([]AlertEvent, error) {
	var out []AlertEvent
	var q url.Values
	if from != "" {
		q = url.Values{"from": {from}}
	}
	return out, c.do(ctx, http.MethodGet, "/api/v1/monitor/alerts/history", q, nil, &out)
}
