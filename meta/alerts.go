package meta

import "time"

// Alerting records: the rules operators change, the notification channels
// alerts go to, and the alerts that are firing now. They live under /alerts
// so that deleting a cluster never has to know about them, and so that a
// new leading server inherits what its predecessor already notified.
//
//	/alerts/rules/{rule}       AlertRule: a rule that replaces a built-in
//	                           default of the same name, or adds one
//	/alerts/channels/{name}    AlertChannel: a webhook and its message format
//	/alerts/state              AlertState: the alerts firing now, written by
//	                           the leading server when they change

// Schema versions of the alerting records.
const (
	AlertRuleSchema    = 1
	AlertChannelSchema = 1
	AlertStateSchema   = 1
)

// Alerting paths.
const (
	AlertsDir        = "/alerts"
	AlertRulesDir    = "/alerts/rules"
	AlertChannelsDir = "/alerts/channels"
	// AlertStatePath holds the alerts that are firing, so a new leader
	// neither repeats notifications its predecessor sent nor forgets to send
	// the resolved ones.
	AlertStatePath = "/alerts/state"
)

// AlertRulePath is /alerts/rules/{rule}.
func AlertRulePath(rule string) (string, error) { return join("alert rule", AlertRulesDir, rule) }

// AlertChannelPath is /alerts/channels/{name}.
func AlertChannelPath(name string) (string, error) {
	return join("alert channel", AlertChannelsDir, name)
}

// AlertRule is /alerts/rules/{rule}: a rule as an operator set it. A rule
// with the name of a built-in default replaces that default everywhere;
// Clusters adjusts it for single clusters.
type AlertRule struct {
	Header
	Name string `json:"name"`
	// Metric is the value the rule tests (monitor's metric catalog: "up",
	// "memory_used_ratio", "registered_clients_rise", …).
	Metric string `json:"metric"`
	// Op is one of ">", ">=", "<", "<=", "==", "!=".
	Op        string  `json:"op"`
	Threshold float64 `json:"threshold"`
	// For is how long the condition must hold before the alert fires.
	For Duration `json:"for"`
	// Severity is "info", "warning" or "critical".
	Severity string `json:"severity"`
	// Repeat is how often a notification is repeated while the alert
	// keeps firing; zero means the monitor's default.
	Repeat Duration `json:"repeat,omitempty"`
	// Channels names the channels to notify; empty means every channel.
	Channels    []string `json:"channels,omitempty"`
	Disabled    bool     `json:"disabled,omitempty"`
	Description string   `json:"description,omitempty"`
	// Clusters overrides the rule per cluster name.
	Clusters  map[string]AlertRuleOverride `json:"clusters,omitempty"`
	UpdatedAt time.Time                    `json:"updated_at"`
	UpdatedBy string                       `json:"updated_by,omitempty"`
}

// AlertRuleOverride changes a rule for one cluster. Nil or empty fields
// keep the rule's value.
type AlertRuleOverride struct {
	Threshold *float64  `json:"threshold,omitempty"`
	For       *Duration `json:"for,omitempty"`
	Severity  string    `json:"severity,omitempty"`
	Disabled  *bool     `json:"disabled,omitempty"`
}

// AlertChannel is /alerts/channels/{name}: where notifications go. The
// URL of a chat webhook is itself a credential (DingTalk's access_token,
// WeCom's key, Slack's path), so protect /alerts/channels like
// /clusters/{cluster}/credentials.
type AlertChannel struct {
	Header
	Name string `json:"name"`
	// Type is the message format: "webhook", "dingtalk", "wecom" or "slack".
	Type string `json:"type"`
	URL  string `json:"url"`
	// Secret is DingTalk's signing secret ("SEC…"); empty means unsigned.
	Secret string `json:"secret,omitempty"`
	// Headers are extra HTTP headers for the generic webhook
	// (Authorization, say).
	Headers map[string]string `json:"headers,omitempty"`
	// MinSeverity drops alerts below it; empty means every severity.
	MinSeverity string `json:"min_severity,omitempty"`
	// SkipResolved suppresses resolved notifications.
	SkipResolved bool      `json:"skip_resolved,omitempty"`
	Disabled     bool      `json:"disabled,omitempty"`
	UpdatedAt    time.Time `json:"updated_at"`
	UpdatedBy    string    `json:"updated_by,omitempty"`
}

// AlertState is /alerts/state: the alerts firing now.
type AlertState struct {
	Header
	Alerts    []ActiveAlert `json:"alerts"`
	UpdatedAt time.Time     `json:"updated_at"`
	// Server is the ID of the server that wrote it.
	Server string `json:"server,omitempty"`
}

// ActiveAlert is one firing alert: a rule whose condition holds for one
// subject (a node, a cluster, an app or a client registration).
type ActiveAlert struct {
	// Key identifies the alert: the rule and the subject.
	Key       string            `json:"key"`
	Rule      string            `json:"rule"`
	Severity  string            `json:"severity"`
	Cluster   string            `json:"cluster,omitempty"`
	Node      string            `json:"node,omitempty"`
	App       string            `json:"app,omitempty"`
	Client    string            `json:"client,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Metric    string            `json:"metric"`
	Value     float64           `json:"value"`
	Op        string            `json:"op"`
	Threshold float64           `json:"threshold"`
	Summary   string            `json:"summary"`
	// StartsAt is when the condition began to hold; FiringAt when it had
	// held for the rule's For.
	StartsAt       time.Time `json:"starts_at"`
	FiringAt       time.Time `json:"firing_at"`
	LastNotifiedAt time.Time `json:"last_notified_at,omitzero"`
	Notifications  int       `json:"notifications"`
}

// AlertRules is /alerts/rules.
func (s *Store) AlertRules() Dir { return s.dir(AlertRulesDir, nil) }

// AlertRule is /alerts/rules/{rule}.
func (s *Store) AlertRule(name string) Ref[AlertRule] {
	p, err := AlertRulePath(name)
	return newRef[AlertRule](s.c, AlertRuleSchema, p, err)
}

// AlertChannels is /alerts/channels.
func (s *Store) AlertChannels() Dir { return s.dir(AlertChannelsDir, nil) }

// AlertChannel is /alerts/channels/{name}.
func (s *Store) AlertChannel(name string) Ref[AlertChannel] {
	p, err := AlertChannelPath(name)
	return newRef[AlertChannel](s.c, AlertChannelSchema, p, err)
}

// AlertState is /alerts/state.
func (s *Store) AlertState() Ref[AlertState] {
	return newRef[AlertState](s.c, AlertStateSchema, AlertStatePath, nil)
}
