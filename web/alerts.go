package web

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/r2m-go/r2m/api"
)

// alertHistoryLimit bounds the history the alerts page shows: the newest
// events, as many as one screen can usefully hold. The API's own default
// is 100 and its ceiling 1000.
const alertHistoryLimit = 50

// alertsView is what templates/alerts.html shows.
type alertsView struct {
	// Monitoring is false when the server runs without a monitor (the
	// API answers 404); the page then says so and shows nothing else.
	Monitoring bool
	Firing     []api.Alert
	History    []api.AlertEvent
	// HistoryLimit is how many history events were asked for; Full says
	// the answer reached it, so older events exist beyond the page.
	HistoryLimit int
	HistoryFull  bool
	Rules        []alertRuleRow
	Channels     []channelForm
	// ChannelsErr is the API's refusal to list channels (a viewer's 403):
	// channel URLs are credentials even redacted, so only operators and
	// admins see them.
	ChannelsErr *apiError
}

// alertRuleRow is one rule with its per-cluster overrides in name order.
type alertRuleRow struct {
	api.AlertRule
	Overrides []alertOverride
}

type alertOverride struct {
	Cluster string
	api.RuleOverride
}

// State says what the override does to the rule's switch: "disabled",
// "enabled", or "" when it keeps the rule's.
func (o alertOverride) State() string {
	switch {
	case o.Disabled == nil:
		return ""
	case *o.Disabled:
		return "disabled"
	}
	return "enabled"
}

// alertsPage shows alerts firing now, the alert history, the rules and the
// notification channels. Every list comes from the API as the visitor; the
// page marks its forms data-mutating, and the API refuses what the
// visitor's role may not do anyway.
func (c *console) alertsPage(w http.ResponseWriter, r *http.Request, me *visitor) {
	v := alertsView{Monitoring: true, HistoryLimit: alertHistoryLimit}
	if err := c.get(r, "/api/v1/monitor/alerts", &v.Firing); err != nil {
		if statusOf(err) != http.StatusNotFound {
			c.fail(w, r, me, err)
			return
		}
		v.Monitoring = false
		c.render(w, r, http.StatusOK, "alerts", "", &pageData{Title: "Alerts", Nav: "alerts", Me: me, Data: v})
		return
	}
	slices.SortFunc(v.Firing, func(a, b api.Alert) int {
		return cmp.Or(severityRank(b.Severity)-severityRank(a.Severity), a.StartsAt.Compare(b.StartsAt), cmp.Compare(a.Key, b.Key))
	})
	if err := c.get(r, "/api/v1/monitor/alerts/history?limit="+strconv.Itoa(alertHistoryLimit), &v.History); err != nil {
		c.fail(w, r, me, err)
		return
	}
	v.HistoryFull = len(v.History) >= alertHistoryLimit
	slices.SortStableFunc(v.History, func(a, b api.AlertEvent) int { return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.ID, a.ID)) })
	var rules []api.AlertRule
	if err := c.get(r, "/api/v1/monitor/rules", &rules); err != nil {
		c.fail(w, r, me, err)
		return
	}
	for _, rule := range rules {
		row := alertRuleRow{AlertRule: rule}
		for cl, o := range rule.Clusters {
			row.Overrides = append(row.Overrides, alertOverride{Cluster: cl, RuleOverride: o})
		}
		slices.SortFunc(row.Overrides, func(a, b alertOverride) int { return cmp.Compare(a.Cluster, b.Cluster) })
		v.Rules = append(v.Rules, row)
	}
	slices.SortFunc(v.Rules, func(a, b alertRuleRow) int { return cmp.Compare(a.Name, b.Name) })
	var channels []api.AlertChannel
	switch err := c.get(r, "/api/v1/monitor/channels", &channels); {
	case err == nil:
		slices.SortFunc(channels, func(a, b api.AlertChannel) int { return cmp.Compare(a.Name, b.Name) })
		for _, ch := range channels {
			v.Channels = append(v.Channels, channelForm{ch})
		}
	case errors.As(err, &v.ChannelsErr) && v.ChannelsErr.Status == http.StatusForbidden:
	default:
		c.fail(w, r, me, err)
		return
	}
	c.render(w, r, http.StatusOK, "alerts", "", &pageData{Title: "Alerts", Nav: "alerts", Me: me, Data: v})
}

// severityRank orders severities, most urgent highest; unknown ones last.
func severityRank(s string) int {
	switch s {
	case "critical":
		return 3
	case "warning":
		return 2
	case "info":
		return 1
	}
	return 0
}

// SeverityClass is the badge class for a severity.
func (alertsView) SeverityClass(s string) string {
	switch s {
	case "critical":
		return "bad"
	case "warning":
		return "warn"
	}
	return ""
}

// KindClass is the badge class for a history event's kind.
func (alertsView) KindClass(kind string) string {
	switch kind {
	case "firing", "repeat":
		return "bad"
	case "resolved":
		return "good"
	}
	return ""
}

// severities are the rule and channel severities, least urgent first.
var severities = []string{"info", "warning", "critical"}

// Severities lists the severities for the rule forms.
func (alertsView) Severities() []string { return severities }

// NewChannel is what the form that creates a channel starts from.
func (alertsView) NewChannel() channelForm { return channelForm{api.AlertChannel{Type: "webhook"}} }

// channelForm is a channel as its row and its edit form show it. Its JSON
// is the channel as the API returned it (URL and secret redacted), which
// the form's script sends back with the changed fields: the API keeps the
// stored value of anything still redacted.
type channelForm struct {
	api.AlertChannel
}

// Kinds lists the channel kinds the API accepts.
func (channelForm) Kinds() []string { return []string{"webhook", "dingtalk", "wecom", "slack"} }

// KindName is how the page names a channel kind.
func (channelForm) KindName(kind string) string {
	switch kind {
	case "webhook":
		return "generic webhook"
	case "dingtalk":
		return "DingTalk"
	case "wecom":
		return "WeCom"
	case "slack":
		return "Slack"
	}
	return kind
}

// Severities lists the severities for the minimum-severity choice.
func (channelForm) Severities() []string { return severities }
