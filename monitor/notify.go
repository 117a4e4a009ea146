package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// Redacted replaces secrets in what [Monitor.Channels] returns. Given
// back to SetChannel in place of a value (or as the URL), it keeps the
// stored one, so a console can show a channel and save it unchanged.
const Redacted = "***"

// Channel is a notification channel.
type Channel struct {
	Name string      `json:"name"`
	Type ChannelType `json:"type"`
	// URL is the webhook URL. Reads return it redacted (tokens in the path
	// and query replaced by Redacted).
	URL string `json:"url"`
	// Secret is DingTalk's signing secret; reads return Redacted when set.
	Secret string `json:"secret,omitempty"`
	// Headers are extra HTTP headers, for the generic webhook only; reads
	// return their values redacted.
	Headers map[string]string `json:"headers,omitempty"`
	// MinSeverity drops alerts below it; empty means all.
	MinSeverity Severity `json:"min_severity,omitempty"`
	// SkipResolved suppresses resolved notifications.
	SkipResolved bool      `json:"skip_resolved,omitempty"`
	Disabled     bool      `json:"disabled,omitempty"`
	UpdatedAt    time.Time `json:"updated_at,omitzero"`
	UpdatedBy    string    `json:"updated_by,omitempty"`
}

var headerName = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_` + "`" + `|~-]+$`)

// ValidateChannel checks a channel's form and returns every problem as a
// [*FieldError], joined. Redacted values pass: SetChannel replaces them
// with the stored ones.
func ValidateChannel(c Channel) error {
	var errs []error
	if meta.ValidateName("alert channel", c.Name) != nil {
		errs = append(errs, fieldErr("name", "%q: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", c.Name))
	}
	if !slices.Contains(channelTypes, c.Type) {
		errs = append(errs, fieldErr("type", "%q: want webhook, dingtalk, wecom or slack", c.Type))
	}
	if c.URL == "" {
		errs = append(errs, fieldErr("url", "is required"))
	} else if !strings.Contains(c.URL, Redacted) {
		u, err := url.Parse(c.URL)
		switch {
		case err != nil:
			errs = append(errs, fieldErr("url", "not a URL: %v", err))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fieldErr("url", "scheme %q: want http or https", u.Scheme))
		case u.Host == "":
			errs = append(errs, fieldErr("url", "has no host"))
		}
	}
	if c.Secret != "" && c.Type != ChannelDingTalk {
		errs = append(errs, fieldErr("secret", "only DingTalk channels are signed; leave it empty for %s", c.Type))
	}
	if len(c.Headers) > 0 && c.Type != ChannelWebhook {
		errs = append(errs, fieldErr("headers", "only generic webhooks take extra headers"))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Headers)) {
		if !headerName.MatchString(k) {
			errs = append(errs, fieldErr("headers."+k, "%q is not a valid header name", k))
		}
		if strings.ContainsAny(c.Headers[k], "\r\n") {
			errs = append(errs, fieldErr("headers."+k, "value contains a line break"))
		}
	}
	if c.MinSeverity != "" && c.MinSeverity.rank() == 0 {
		errs = append(errs, fieldErr("min_severity", "%q: want info, warning, critical or empty", c.MinSeverity))
	}
	return errors.Join(errs...)
}

// wordSegment is a URL path segment kept when redacting ("services",
// "robot", "cgi-bin", "v1"): lower case, short, at most two digits.
// Anything else may be a token.
var wordSegment = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,19}$`)

func isWord(seg string) bool {
	digits := 0
	for _, r := range seg {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	return digits <= 2 && wordSegment.MatchString(seg)
}

// redactURL hides what may be a credential in a webhook URL: user info,
// query values and path segments that do not look like words.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return Redacted
	}
	u.User = nil
	segs := strings.Split(u.Path, "/")
	for i, s := range segs {
		if s != "" && !isWord(s) {
			segs[i] = Redacted
		}
	}
	u.Path = strings.Join(segs, "/")
	u.RawPath = ""
	q := u.Query()
	for k := range q {
		q.Set(k, Redacted)
	}
	u.RawQuery = q.Encode()
	u.Fragment = ""
	out, _ := url.PathUnescape(u.String())
	return out
}

func channelFromRecord(rec *meta.AlertChannel) Channel {
	return Channel{
		Name: rec.Name, Type: ChannelType(rec.Type), URL: rec.URL, Secret: rec.Secret, Headers: rec.Headers,
		MinSeverity: Severity(rec.MinSeverity), SkipResolved: rec.SkipResolved, Disabled: rec.Disabled,
		UpdatedAt: rec.UpdatedAt, UpdatedBy: rec.UpdatedBy,
	}
}

func (c Channel) redacted() Channel {
	c.URL = redactURL(c.URL)
	if c.Secret != "" {
		c.Secret = Redacted
	}
	if len(c.Headers) > 0 {
		h := make(map[string]string, len(c.Headers))
		for k := range c.Headers {
			h[k] = Redacted
		}
		c.Headers = h
	}
	return c
}

// loadChannels reads every channel, secrets included.
func loadChannels(ctx context.Context, st *meta.Store) ([]Channel, error) {
	names, err := st.AlertChannels().Names(ctx)
	if err != nil {
		return nil, fmt.Errorf("monitor: list channels: %w", err)
	}
	var out []Channel
	var errs []error
	for _, n := range names {
		rec, _, err := st.AlertChannel(n).Get(ctx)
		if errors.Is(err, coord.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("monitor: channel %s: %w", n, err))
			continue
		}
		out = append(out, channelFromRecord(rec))
	}
	return out, errors.Join(errs...)
}

// Channels lists the notification channels, secrets redacted.
func (m *Monitor) Channels(ctx context.Context) ([]Channel, error) {
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	chans, err := loadChannels(ctx, m.cfg.Store)
	out := make([]Channel, 0, len(chans))
	for _, c := range chans {
		out = append(out, c.redacted())
	}
	return out, err
}

// Channel returns one channel, secrets redacted, or an error wrapping
// ErrNotFound.
func (m *Monitor) Channel(ctx context.Context, name string) (Channel, error) {
	if err := m.checkOpen(); err != nil {
		return Channel{}, err
	}
	c, err := m.channel(ctx, name)
	if err != nil {
		return Channel{}, err
	}
	return c.redacted(), nil
}

func (m *Monitor) channel(ctx context.Context, name string) (Channel, error) {
	if meta.ValidateName("alert channel", name) != nil {
		return Channel{}, fieldErr("name", "%q is not a valid channel name", name)
	}
	rec, _, err := m.cfg.Store.AlertChannel(name).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return Channel{}, notFound("alert channel", name)
	}
	if err != nil {
		return Channel{}, err
	}
	return channelFromRecord(rec), nil
}

// SetChannel validates c and stores it, creating or replacing the channel
// of that name. A URL containing Redacted, a Secret equal to Redacted and
// header values equal to Redacted keep the stored values (so what Channels
// returned can be saved back). Invalid input fails with [*FieldError]s.
// It returns the channel as stored, redacted.
func (m *Monitor) SetChannel(ctx context.Context, c Channel) (Channel, error) {
	if err := m.checkOpen(); err != nil {
		return Channel{}, err
	}
	if err := ValidateChannel(c); err != nil {
		return Channel{}, err
	}
	var out *meta.AlertChannel
	_, _, err := m.cfg.Store.AlertChannel(c.Name).Upsert(ctx, func(cur *meta.AlertChannel) error {
		exists := cur.Name != ""
		next := meta.AlertChannel{
			Name: c.Name, Type: string(c.Type), URL: c.URL, Secret: c.Secret, Headers: maps.Clone(c.Headers),
			MinSeverity: string(c.MinSeverity), SkipResolved: c.SkipResolved, Disabled: c.Disabled,
			UpdatedAt: m.cfg.Now().UTC(), UpdatedBy: c.UpdatedBy,
		}
		if strings.Contains(next.URL, Redacted) {
			if !exists {
				return fieldErr("url", "is redacted, and there is no stored URL to keep; give the full URL")
			}
			next.URL = cur.URL
		}
		if next.Secret == Redacted {
			if !exists || cur.Secret == "" {
				return fieldErr("secret", "is redacted, and there is no stored secret to keep")
			}
			next.Secret = cur.Secret
		}
		for k, v := range next.Headers {
			if v == Redacted {
				old, ok := cur.Headers[k]
				if !ok {
					return fieldErr("headers."+k, "is redacted, and there is no stored value to keep")
				}
				next.Headers[k] = old
			}
		}
		*cur = next
		out = &next
		return nil
	})
	if err != nil {
		return Channel{}, err
	}
	return channelFromRecord(out).redacted(), nil
}

// DeleteChannel deletes a channel. It fails with ErrNotFound when there is
// none, and with ErrInUse while a rule names it.
func (m *Monitor) DeleteChannel(ctx context.Context, name string) error {
	if err := m.checkOpen(); err != nil {
		return err
	}
	if meta.ValidateName("alert channel", name) != nil {
		return fieldErr("name", "%q is not a valid channel name", name)
	}
	rules, err := loadRules(ctx, m.cfg.Store)
	if err != nil {
		return err
	}
	var users []string
	for _, r := range rules {
		if slices.Contains(r.Channels, name) {
			users = append(users, r.Name)
		}
	}
	if len(users) > 0 {
		return fmt.Errorf("%w: channel %q is named by rules %s; change them first", ErrInUse, name, strings.Join(users, ", "))
	}
	ref := m.cfg.Store.AlertChannel(name)
	for range 8 {
		_, v, err := ref.Get(ctx)
		if errors.Is(err, coord.ErrNotFound) {
			return notFound("alert channel", name)
		}
		if err != nil {
			return err
		}
		err = ref.Delete(ctx, v)
		if errors.Is(err, coord.ErrVersionConflict) {
			continue
		}
		if errors.Is(err, coord.ErrNotFound) {
			return notFound("alert channel", name)
		}
		return err
	}
	return fmt.Errorf("monitor: delete channel %s: %w", name, meta.ErrTooManyConflicts)
}

// TestChannel sends a test message to the named channel now, whether or
// not it is disabled, and reports the outcome. A channel that refuses or
// does not answer makes it fail with an error wrapping ErrDelivery that
// says what the channel answered (never the channel's URL).
func (m *Monitor) TestChannel(ctx context.Context, name string) (Delivery, error) {
	if err := m.checkOpen(); err != nil {
		return Delivery{}, err
	}
	ch, err := m.channel(ctx, name)
	if err != nil {
		return Delivery{}, err
	}
	now := m.cfg.Now()
	ev := AlertEvent{Time: now, Kind: KindTest, Alert: Alert{
		Key: "test@" + m.cfg.ServerID, Rule: "r2m_test", Severity: SeverityInfo, State: KindTest, StartsAt: now,
		Summary: fmt.Sprintf("A test notification from R2M server %s to channel %q. If you can read it, the channel works.", m.cfg.ServerID, name),
	}}
	d := m.send(ctx, ch, []AlertEvent{ev})
	if !d.OK {
		return d, fmt.Errorf("%w: channel %q: %s", ErrDelivery, name, d.Error)
	}
	return d, nil
}

// maxAttempts bounds delivery attempts of one message to one channel.
const maxAttempts = 3

// send delivers one message to one channel, retrying server errors and
// timeouts with a short pause. It never puts the channel's URL into
// errors: the URL is a credential.
func (m *Monitor) send(ctx context.Context, ch Channel, events []AlertEvent) Delivery {
	d := Delivery{Channel: ch.Name, Type: string(ch.Type)}
	defer func() {
		d.At = m.cfg.Now().UTC()
		result := "ok"
		if !d.OK {
			result = "failed"
		}
		m.metrics.notifications.WithLabelValues(ch.Name, string(ch.Type), result).Inc()
	}()
	body, err := render(ch.Type, events, m.cfg.ServerID, m.cfg.ConsoleURL, m.cfg.Now())
	if err != nil {
		d.Error = err.Error()
		return d
	}
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		d.Attempts = attempt
		retry, err := m.post(ctx, ch, body)
		if err == nil {
			d.OK, d.Error = true, ""
			return d
		}
		d.Error = err.Error()
		if !retry || attempt == maxAttempts {
			break
		}
		t := time.NewTimer(time.Duration(attempt) * 500 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return d
		case <-t.C:
		}
	}
	return d
}

// post makes one attempt.
func (m *Monitor) post(ctx context.Context, ch Channel, body []byte) (retry bool, err error) {
	target := ch.URL
	if ch.Type == ChannelDingTalk && ch.Secret != "" {
		if target, err = dingtalkSign(target, ch.Secret, time.Now()); err != nil {
			return false, fmt.Errorf("sign: %v", err)
		}
	}
	actx, cancel := context.WithTimeout(ctx, m.cfg.NotifyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("build request to %s: %v", redactURL(ch.URL), stripURL(err))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "r2m-monitor")
	for k, v := range ch.Headers {
		req.Header.Set(k, v)
	}
	resp, err := m.cfg.HTTPClient.Do(req)
	if err != nil {
		return true, fmt.Errorf("POST %s: %v", redactURL(ch.URL), stripURL(err))
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return checkReply(ch.Type, resp.StatusCode, reply)
}

// stripURL drops the URL that net/http puts into its errors.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// notifier delivers batches of alert events off the pass, so a slow
// channel never delays collection. It is started and stopped by a run.
type notifier struct {
	m     *Monitor
	queue chan []AlertEvent // owned by the run: it sends, and closes it to stop the notifier
	done  chan struct{}     // closed when the notifier has drained and exited
	// drain bounds deliveries after stop, so a channel that hangs cannot
	// hold up the end of a Run for more than NotifyTimeout.
	ctx    context.Context
	cancel context.CancelFunc
}

// queueDepth is how many batches may wait; one batch per pass, so this
// rides out a channel that hangs for many intervals.
const queueDepth = 64

func newNotifier(m *Monitor) *notifier {
	n := &notifier{m: m, queue: make(chan []AlertEvent, queueDepth), done: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	go n.run()
	return n
}

// enqueue hands a batch over; when the queue is full the batch is
// dropped, counted and logged rather than blocking the pass.
func (n *notifier) enqueue(events []AlertEvent) {
	select {
	case n.queue <- events:
	default:
		n.m.metrics.dropped.Add(float64(len(events)))
		n.m.log.Error("alert notifications dropped: the delivery queue is full", "events", len(events))
	}
}

// stop lets queued batches go out within NotifyTimeout, then gives up on
// the rest, and waits for the notifier to exit.
func (n *notifier) stop() {
	close(n.queue)
	t := time.AfterFunc(n.m.cfg.NotifyTimeout, n.cancel)
	<-n.done
	t.Stop()
	n.cancel()
}

func (n *notifier) run() {
	defer close(n.done)
	for batch := range n.queue {
		if n.ctx.Err() != nil {
			n.m.log.Warn("alert notifications not sent: the monitor stopped", "events", len(batch))
			continue
		}
		n.deliver(n.ctx, batch)
	}
}

// deliver sends a batch to every channel that wants some of it, in
// parallel, and records the outcome in the alert history.
func (n *notifier) deliver(ctx context.Context, events []AlertEvent) {
	m := n.m
	chans, err := loadChannels(ctx, m.cfg.Store)
	if err != nil {
		m.log.Warn("alert channels: some could not be read", "err", err)
	}
	var mu sync.Mutex
	deliveries := make(map[int64][]Delivery)
	var wg sync.WaitGroup
	for _, ch := range chans {
		if ch.Disabled {
			continue
		}
		var sel []AlertEvent
		for _, e := range events {
			if len(e.channels) > 0 && !slices.Contains(e.channels, ch.Name) {
				continue
			}
			if ch.MinSeverity != "" && e.Severity.rank() < ch.MinSeverity.rank() {
				continue
			}
			if e.Kind == KindResolved && ch.SkipResolved {
				continue
			}
			sel = append(sel, e)
		}
		if len(sel) == 0 {
			continue
		}
		wg.Go(func() {
			d := m.send(ctx, ch, sel)
			if !d.OK {
				m.log.Warn("alert notification not delivered", "channel", ch.Name, "type", ch.Type, "attempts", d.Attempts, "err", d.Error)
			}
			mu.Lock()
			for _, e := range sel {
				deliveries[e.ID] = append(deliveries[e.ID], d)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(deliveries) == 0 {
		return
	}
	hctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.hist.setDeliveries(hctx, deliveries); err != nil {
		m.log.Warn("alert history: deliveries not recorded", "err", err)
	}
}
