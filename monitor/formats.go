package monitor

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ChannelType is a notification message format.
type ChannelType string

// Channel types.
const (
	// ChannelWebhook posts R2M's own JSON document (see [WebhookPayload]).
	ChannelWebhook ChannelType = "webhook"
	// ChannelDingTalk posts a DingTalk custom robot markdown message,
	// signed when the channel has a secret.
	ChannelDingTalk ChannelType = "dingtalk"
	// ChannelWeCom posts a WeCom (WeChat Work) group robot markdown message.
	ChannelWeCom ChannelType = "wecom"
	// ChannelSlack posts a Slack incoming-webhook message with blocks.
	ChannelSlack ChannelType = "slack"
)

var channelTypes = []ChannelType{ChannelWebhook, ChannelDingTalk, ChannelWeCom, ChannelSlack}

// WebhookPayload is the JSON document a generic webhook receives: one per
// notification, listing every alert that fired, repeated or resolved in
// one collection pass (or one test alert).
type WebhookPayload struct {
	// Version is the payload's schema version, "1".
	Version string `json:"version"`
	Source  string `json:"source"` // "r2m"
	Server  string `json:"server"`
	// Status is "firing" when any alert fires or repeats, else "resolved".
	Status     string         `json:"status"`
	Test       bool           `json:"test,omitempty"`
	ConsoleURL string         `json:"console_url,omitempty"`
	SentAt     time.Time      `json:"sent_at"`
	Alerts     []WebhookAlert `json:"alerts"`
}

// WebhookAlert is one alert in a [WebhookPayload].
type WebhookAlert struct {
	Kind      string            `json:"kind"` // firing, repeat, resolved, test
	Rule      string            `json:"rule"`
	Severity  Severity          `json:"severity"`
	Key       string            `json:"key"`
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
	StartsAt  time.Time         `json:"starts_at"`
	FiringAt  time.Time         `json:"firing_at,omitzero"`
	At        time.Time         `json:"at"`
}

// Size limits of the chat formats: WeCom markdown content is at most 4096
// bytes; Slack section text at most 3000 characters and 50 blocks;
// DingTalk documents no limit, and 20 alerts per message keeps it
// readable.
const (
	maxListed       = 20
	wecomMaxBytes   = 4096
	slackMaxSection = 3000
)

// render builds the HTTP request body for a channel type.
func render(typ ChannelType, events []AlertEvent, server, consoleURL string, now time.Time) ([]byte, error) {
	switch typ {
	case ChannelWebhook:
		p := WebhookPayload{Version: "1", Source: "r2m", Server: server, Status: status(events), ConsoleURL: consoleURL, SentAt: now.UTC(), Alerts: []WebhookAlert{}}
		for _, e := range events {
			if e.Kind == KindTest {
				p.Test = true
			}
			p.Alerts = append(p.Alerts, WebhookAlert{
				Kind: e.Kind, Rule: e.Rule, Severity: e.Severity, Key: e.Key, Cluster: e.Cluster, Node: e.Node,
				App: e.App, Client: e.Client, Labels: e.Labels, Metric: e.Metric, Value: e.Value, Op: e.Op,
				Threshold: e.Threshold, Summary: e.Summary, StartsAt: e.StartsAt.UTC(), FiringAt: e.FiringAt.UTC(), At: e.Time.UTC(),
			})
		}
		return json.Marshal(p)
	case ChannelDingTalk:
		return json.Marshal(map[string]any{
			"msgtype":  "markdown",
			"markdown": map[string]string{"title": title(events), "text": markdown(events, consoleURL, "dingtalk", 0)},
		})
	case ChannelWeCom:
		return json.Marshal(map[string]any{
			"msgtype":  "markdown",
			"markdown": map[string]string{"content": markdown(events, consoleURL, "wecom", wecomMaxBytes)},
		})
	case ChannelSlack:
		return json.Marshal(slackMessage(events, consoleURL))
	}
	return nil, fmt.Errorf("monitor: unknown channel type %q", typ)
}

func status(events []AlertEvent) string {
	for _, e := range events {
		if e.Kind == KindFiring || e.Kind == KindRepeat {
			return "firing"
		}
	}
	if len(events) > 0 && events[0].Kind == KindTest {
		return "test"
	}
	return "resolved"
}

// counts describes a batch: "2 firing, 1 resolved".
func counts(events []AlertEvent) string {
	var firing, repeat, resolved, test int
	for _, e := range events {
		switch e.Kind {
		case KindFiring:
			firing++
		case KindRepeat:
			repeat++
		case KindResolved:
			resolved++
		case KindTest:
			test++
		}
	}
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{firing, "firing"}, {repeat, "still firing"}, {resolved, "resolved"}, {test, "test"}} {
		if p.n > 0 {
			parts = append(parts, strconv.Itoa(p.n)+" "+p.what)
		}
	}
	return strings.Join(parts, ", ")
}

// title is the one-line headline ("R2M alert: [FIRING] node_down —
// cluster orders-1"), which chat apps show in notifications.
func title(events []AlertEvent) string {
	if len(events) == 1 {
		e := events[0]
		where := e.Cluster
		if e.App != "" {
			where = "app " + e.App
		} else if where != "" {
			where = "cluster " + where
		}
		t := fmt.Sprintf("R2M alert: [%s] %s", strings.ToUpper(kindLabel(e.Kind)), e.Rule)
		if where != "" {
			t += " — " + where
		}
		return t
	}
	return "R2M alerts: " + counts(events)
}

func kindLabel(kind string) string {
	switch kind {
	case KindRepeat:
		return "still firing"
	case KindTest:
		return "test"
	}
	return kind
}

// markdown renders the subset of Markdown that DingTalk and WeCom both
// accept (headings, bold, quotes, links; WeCom adds three font colors).
// maxBytes > 0 truncates to fit.
func markdown(events []AlertEvent, consoleURL, flavor string, maxBytes int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n", title(events))
	tail := ""
	if consoleURL != "" {
		tail = fmt.Sprintf("\n[Open the R2M console](%s)\n", consoleURL)
	}
	for i, e := range events {
		if i == maxListed {
			fmt.Fprintf(&b, "\n…and %d more\n", len(events)-i)
			break
		}
		label := strings.ToUpper(kindLabel(e.Kind))
		if flavor == "wecom" {
			color := "warning"
			if e.Kind == KindResolved || e.Kind == KindTest {
				color = "info"
			}
			label = fmt.Sprintf(`<font color="%s">%s</font>`, color, label)
		}
		entry := fmt.Sprintf("\n**[%s] %s** (%s)\n> %s\n> since %s\n", label, e.Rule, e.Severity, oneLine(e.Summary), e.StartsAt.UTC().Format(time.RFC3339))
		if maxBytes > 0 && b.Len()+len(entry)+len(tail)+32 > maxBytes {
			fmt.Fprintf(&b, "\n…and %d more\n", len(events)-i)
			break
		}
		b.WriteString(entry)
	}
	b.WriteString(tail)
	out := b.String()
	if maxBytes > 0 && len(out) > maxBytes {
		out = truncateUTF8(out, maxBytes)
	}
	return out
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n]
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// slackEscape escapes what Slack's mrkdwn treats as markup: "<!channel>"
// would otherwise ping everyone.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func slackMessage(events []AlertEvent, consoleURL string) map[string]any {
	blocks := []any{map[string]any{
		"type": "header",
		"text": map[string]any{"type": "plain_text", "text": truncateUTF8(title(events), 150)},
	}}
	for i, e := range events {
		if i == maxListed {
			blocks = append(blocks, map[string]any{"type": "context", "elements": []any{
				map[string]any{"type": "mrkdwn", "text": fmt.Sprintf("…and %d more", len(events)-i)},
			}})
			break
		}
		icon := ":red_circle:"
		switch {
		case e.Kind == KindResolved:
			icon = ":large_green_circle:"
		case e.Kind == KindTest:
			icon = ":large_blue_circle:"
		case e.Severity == SeverityWarning:
			icon = ":large_orange_circle:"
		case e.Severity == SeverityInfo:
			icon = ":large_blue_circle:"
		}
		text := fmt.Sprintf("%s *[%s] %s* (%s)\n%s\nsince <!date^%d^{date_short_pretty} {time}|%s>",
			icon, strings.ToUpper(kindLabel(e.Kind)), slackEscape(e.Rule), e.Severity, slackEscape(oneLine(e.Summary)),
			e.StartsAt.Unix(), e.StartsAt.UTC().Format(time.RFC3339))
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": truncateUTF8(text, slackMaxSection)}})
	}
	if consoleURL != "" {
		blocks = append(blocks, map[string]any{"type": "context", "elements": []any{
			map[string]any{"type": "mrkdwn", "text": fmt.Sprintf("<%s|Open the R2M console>", consoleURL)},
		}})
	}
	// text is the fallback shown in notifications and by clients without
	// blocks.
	fallback := title(events)
	if len(events) == 1 {
		fallback += ": " + oneLine(events[0].Summary)
	}
	return map[string]any{"text": slackEscape(truncateUTF8(fallback, slackMaxSection)), "blocks": blocks}
}

// dingtalkSign adds DingTalk's signature to a robot URL: timestamp (ms)
// and sign = base64(HMAC-SHA256(secret, timestamp + "\n" + secret)).
func dingtalkSign(rawURL, secret string, now time.Time) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "\n" + secret))
	q := u.Query()
	q.Set("timestamp", ts)
	q.Set("sign", base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// chatReply is the answer of DingTalk's and WeCom's robots: HTTP 200 even
// for refused messages, with a non-zero errcode.
type chatReply struct {
	ErrCode *int   `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// checkReply turns a channel's answer into an error, and says whether
// trying again could help.
func checkReply(typ ChannelType, status int, body []byte) (retry bool, err error) {
	snippet := string(bytes.TrimSpace(body))
	if len(snippet) > 200 {
		snippet = snippet[:200] + "…"
	}
	if status < 200 || status > 299 {
		return status >= 500 || status == 429, fmt.Errorf("HTTP %d: %s", status, snippet)
	}
	switch typ {
	case ChannelDingTalk, ChannelWeCom:
		var r chatReply
		if json.Unmarshal(body, &r) != nil || r.ErrCode == nil {
			return false, fmt.Errorf("unexpected answer (want {\"errcode\":0,…}): %s", snippet)
		}
		if *r.ErrCode != 0 {
			return false, fmt.Errorf("%s refused the message: errcode %d: %s", typ, *r.ErrCode, r.ErrMsg)
		}
	}
	return false, nil
}
