package monitor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

func sampleEvents(n int) []AlertEvent {
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var out []AlertEvent
	for i := range n {
		kind := KindFiring
		if i%3 == 2 {
			kind = KindResolved
		}
		out = append(out, AlertEvent{ID: int64(i + 1), Time: at, Kind: kind, Alert: Alert{
			Key: fmt.Sprintf("node_down@node/c1/10.0.0.%d:7000", i), Rule: "node_down", Severity: SeverityCritical,
			Cluster: "c1", Node: fmt.Sprintf("10.0.0.%d:7000", i), Metric: mUp, Value: 0, Op: "==", Threshold: 0,
			Summary:  fmt.Sprintf("node 10.0.0.%d:7000 (master) of cluster c1: up is 0 (== 0); 节点无响应 <!channel>", i),
			StartsAt: at.Add(-time.Minute), FiringAt: at,
		}})
	}
	return out
}

// TestPayloadFormats checks each channel type against the JSON its
// service documents.
func TestPayloadFormats(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 1, 0, time.UTC)
	one := sampleEvents(1)

	t.Run("webhook", func(t *testing.T) {
		b, err := render(ChannelWebhook, sampleEvents(3), "srv-1", "https://r2m.example.com", now)
		if err != nil {
			t.Fatal(err)
		}
		var p WebhookPayload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if p.Version != "1" || p.Source != "r2m" || p.Server != "srv-1" || p.Status != "firing" || len(p.Alerts) != 3 || p.ConsoleURL == "" {
			t.Fatalf("webhook payload %s", b)
		}
		a := p.Alerts[0]
		if a.Kind != KindFiring || a.Rule != "node_down" || a.Node != "10.0.0.0:7000" || a.Metric != mUp || a.StartsAt.IsZero() {
			t.Errorf("webhook alert %+v", a)
		}
		if p.Alerts[2].Kind != KindResolved {
			t.Errorf("third alert kind %q, want resolved", p.Alerts[2].Kind)
		}
		b, _ = render(ChannelWebhook, sampleEvents(3)[2:], "srv-1", "", now)
		_ = json.Unmarshal(b, &p)
		if p.Status != "resolved" {
			t.Errorf("status of a resolved-only batch = %q", p.Status)
		}
	})

	t.Run("dingtalk", func(t *testing.T) {
		b, err := render(ChannelDingTalk, one, "srv-1", "https://r2m.example.com", now)
		if err != nil {
			t.Fatal(err)
		}
		// {"msgtype":"markdown","markdown":{"title":…,"text":…}}
		var m struct {
			MsgType  string `json:"msgtype"`
			Markdown struct {
				Title string `json:"title"`
				Text  string `json:"text"`
			} `json:"markdown"`
		}
		if err := strictUnmarshal(b, &m); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		if m.MsgType != "markdown" || !strings.Contains(m.Markdown.Title, "node_down") || !strings.Contains(m.Markdown.Text, "10.0.0.0:7000") ||
			!strings.Contains(m.Markdown.Text, "[Open the R2M console](https://r2m.example.com)") {
			t.Errorf("DingTalk message %s", b)
		}
	})

	t.Run("wecom", func(t *testing.T) {
		b, err := render(ChannelWeCom, one, "srv-1", "", now)
		if err != nil {
			t.Fatal(err)
		}
		// {"msgtype":"markdown","markdown":{"content":…}}
		var m struct {
			MsgType  string `json:"msgtype"`
			Markdown struct {
				Content string `json:"content"`
			} `json:"markdown"`
		}
		if err := strictUnmarshal(b, &m); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		if m.MsgType != "markdown" || !strings.Contains(m.Markdown.Content, `<font color="warning">FIRING</font>`) {
			t.Errorf("WeCom message %s", b)
		}
		// Many alerts still fit WeCom's 4096-byte limit, as valid UTF-8.
		b, _ = render(ChannelWeCom, sampleEvents(300), "srv-1", "https://r2m.example.com", now)
		_ = json.Unmarshal(b, &m)
		if n := len(m.Markdown.Content); n > wecomMaxBytes || !utf8.ValidString(m.Markdown.Content) || !strings.Contains(m.Markdown.Content, "more") {
			t.Errorf("300 alerts: WeCom content is %d bytes (limit %d), valid UTF-8 %v, says how many more: %v",
				n, wecomMaxBytes, utf8.ValidString(m.Markdown.Content), strings.Contains(m.Markdown.Content, "more"))
		}
	})

	t.Run("slack", func(t *testing.T) {
		b, err := render(ChannelSlack, sampleEvents(30), "srv-1", "https://r2m.example.com", now)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Text   string `json:"text"`
			Blocks []struct {
				Type string `json:"type"`
				Text *struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"text"`
				Elements []map[string]string `json:"elements"`
			} `json:"blocks"`
		}
		if err := strictUnmarshal(b, &m); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		if m.Text == "" || len(m.Blocks) > 50 || m.Blocks[0].Type != "header" || m.Blocks[0].Text.Type != "plain_text" {
			t.Fatalf("Slack message: text %q, %d blocks, first %+v", m.Text, len(m.Blocks), m.Blocks[0])
		}
		sec := m.Blocks[1]
		if sec.Type != "section" || sec.Text.Type != "mrkdwn" || !strings.Contains(sec.Text.Text, "*[FIRING] node_down*") {
			t.Errorf("Slack section %+v", sec)
		}
		if strings.Contains(string(b), "<!channel>") || !strings.Contains(sec.Text.Text, "&lt;!channel&gt;") {
			t.Errorf("Slack text must escape <!channel>: %s", sec.Text.Text)
		}
		for _, bl := range m.Blocks {
			if bl.Text != nil && utf8.RuneCountInString(bl.Text.Text) > slackMaxSection {
				t.Errorf("block text of %d characters", utf8.RuneCountInString(bl.Text.Text))
			}
		}
	})
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// TestChannelsAndDelivery stores channels (secrets redacted on read and
// kept when saved back redacted), test-sends to a signed DingTalk robot,
// and checks error handling: errcode refusals, retries of 5xx only, and
// that no error carries the webhook's token.
func TestChannelsAndDelivery(t *testing.T) {
	st, _ := newStore(t)
	m := newMonitor(t, Config{Store: st, NotifyTimeout: 2 * time.Second})
	ctx := testCtx(t, 30*time.Second)

	var status atomic.Int32
	status.Store(200)
	var answer atomic.Value
	answer.Store(`{"errcode":0,"errmsg":"ok"}`)
	var hits atomic.Int32
	var lastQuery atomic.Value
	rv := newReceiver(t)
	rv.reply = func(w http.ResponseWriter) {
		hits.Add(1)
		w.WriteHeader(int(status.Load()))
		_, _ = w.Write([]byte(answer.Load().(string)))
	}
	rv.Config.Handler = wrapQuery(rv.Config.Handler, &lastQuery)

	const secret = "SECabc123"
	ch, err := m.SetChannel(ctx, Channel{Name: "ding", Type: ChannelDingTalk, URL: rv.URL + "/robot/send?access_token=tok-12345", Secret: secret, MinSeverity: SeverityWarning})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ch.URL, "tok-12345") || ch.Secret != Redacted || !strings.Contains(ch.URL, "access_token="+Redacted) {
		t.Errorf("SetChannel returned %+v, want URL token and secret redacted", ch)
	}
	list, err := m.Channels(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("Channels = %v, %v", list, err)
	}
	// Saving the redacted view back keeps the secret and the URL.
	list[0].SkipResolved = true
	if _, err := m.SetChannel(ctx, list[0]); err != nil {
		t.Fatal(err)
	}
	rec, _, err := st.AlertChannel("ding").Get(ctx)
	if err != nil || rec.Secret != secret || !strings.Contains(rec.URL, "tok-12345") || !rec.SkipResolved {
		t.Fatalf("stored channel %+v, %v; want the secret and URL kept, skip_resolved set", rec, err)
	}

	before := time.Now()
	d, err := m.TestChannel(ctx, "ding")
	if err != nil || !d.OK || d.Attempts != 1 {
		t.Fatalf("TestChannel = %+v, %v", d, err)
	}
	// The signature DingTalk checks: base64(HMAC-SHA256(secret, ts+"\n"+secret)).
	q, _ := url.ParseQuery(lastQuery.Load().(string))
	ts, _ := strconv.ParseInt(q.Get("timestamp"), 10, 64)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(q.Get("timestamp") + "\n" + secret))
	if q.Get("access_token") != "tok-12345" || q.Get("sign") != base64.StdEncoding.EncodeToString(mac.Sum(nil)) ||
		ts < before.Add(-time.Second).UnixMilli() || ts > time.Now().UnixMilli() {
		t.Errorf("signed query %v: want access_token kept, a current timestamp (ms) and its signature", q)
	}
	body := waitBody(t, rv, "r2m_test", time.Second)
	if !strings.Contains(string(body), `"msgtype":"markdown"`) {
		t.Errorf("test message %s, want DingTalk markdown", body)
	}

	// DingTalk answers 200 with an errcode when it refuses: an error,
	// not retried.
	answer.Store(`{"errcode":310000,"errmsg":"sign not match"}`)
	hits.Store(0)
	d, err = m.TestChannel(ctx, "ding")
	if !errors.Is(err, ErrDelivery) || !strings.Contains(err.Error(), "310000") || hits.Load() != 1 {
		t.Errorf("refused: %+v, %v after %d attempts; want ErrDelivery with the errcode, one attempt", d, err, hits.Load())
	}
	// A server error is retried; the URL's token never appears in errors.
	status.Store(503)
	answer.Store("busy")
	hits.Store(0)
	d, err = m.TestChannel(ctx, "ding")
	if !errors.Is(err, ErrDelivery) || hits.Load() != maxAttempts || d.Attempts != maxAttempts {
		t.Errorf("503: %+v, %v after %d hits; want %d attempts", d, err, hits.Load(), maxAttempts)
	}
	status.Store(400)
	hits.Store(0)
	if _, err := m.TestChannel(ctx, "ding"); err == nil || hits.Load() != 1 {
		t.Errorf("400: %v after %d hits; want an error after one attempt", err, hits.Load())
	}
	if _, err := m.SetChannel(ctx, Channel{Name: "dead", Type: ChannelWebhook, URL: "http://127.0.0.1:1/hook/tok-secret-999?key=tok-secret-999"}); err != nil {
		t.Fatal(err)
	}
	d, err = m.TestChannel(ctx, "dead")
	if err == nil || strings.Contains(err.Error(), "tok-secret-999") || strings.Contains(d.Error, "tok-secret-999") {
		t.Errorf("unreachable channel: %v / %q; want an error without the token", err, d.Error)
	}

	// Routing: the channel's minimum severity and skip_resolved apply.
	status.Store(200)
	answer.Store(`{"errcode":0,"errmsg":"ok"}`)
	if err := m.DeleteChannel(ctx, "dead"); err != nil {
		t.Fatal(err)
	}
	n := newNotifier(m)
	evs := sampleEvents(3) // firing, firing, resolved; all critical
	evs[1].Severity = SeverityInfo
	hits.Store(0)
	n.deliver(ctx, evs)
	n.stop()
	b := waitBody(t, rv, "10.0.0.0:7000", time.Second)
	if hits.Load() != 1 || !strings.Contains(string(b), "10.0.0.0:7000") || strings.Contains(string(b), "10.0.0.1:7000") || strings.Contains(string(b), "RESOLVED") {
		t.Errorf("routed message %s (%d sends): want only the critical firing alert", b, hits.Load())
	}
}

func wrapQuery(h http.Handler, last *atomic.Value) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last.Store(r.URL.RawQuery)
		h.ServeHTTP(w, r)
	})
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://oapi.dingtalk.com/robot/send?access_token=abc":                 "https://oapi.dingtalk.com/robot/send?access_token=***",
		"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx":    "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***",
		"https://hooks.slack.com/services/T0123/B0456/7IsoQTrixdUtE971O1xQTm4T": "https://hooks.slack.com/services/***/***/***",
		"https://user:pw@alerts.example.com/hooks/r2m":                          "https://alerts.example.com/hooks/r2m",
		"https://alerts.example.com/v1/hooks/a1b2c3d4e5":                        "https://alerts.example.com/v1/hooks/***",
		"not a url": Redacted,
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
