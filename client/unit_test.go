package client

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/r2m-go/r2m/meta"
)

func TestBuckets(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 7, 8, 9, 100, 999, time.Microsecond, 1234567, time.Millisecond, 3 * time.Second, time.Hour, 1 << 62} {
		i := bucketOf(d)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%v) = %d, out of range", d, i)
		}
		up := bucketUpper(i)
		if d > up {
			t.Errorf("bucketOf(%v) = %d whose upper bound %v is below it", d, i, up)
		}
		// A bucket is at most a quarter wider than its values.
		if d >= 8 && float64(up) > float64(d)*1.25+1 {
			t.Errorf("bucket of %v has upper bound %v: more than 25%% off", d, up)
		}
		if i > 0 && d <= bucketUpper(i-1) && d >= 8 {
			t.Errorf("%v also fits the bucket below (%v)", d, bucketUpper(i-1))
		}
	}
}

func TestHeartbeatWindow(t *testing.T) {
	var c counters
	var w window
	t0 := time.Now()
	w.at = t0
	for i := range 100 {
		d := time.Millisecond
		if i == 99 {
			d = 100 * time.Millisecond
		}
		var err error
		if i%10 == 0 {
			err = errors.New("boom")
		}
		c.observe(d, 1, err)
	}
	c.observe(time.Millisecond, 16, rueidis.Nil) // a DoMulti of 16; a nil reply is no error
	hb := w.next(&c, t0.Add(time.Minute))
	if hb.Commands != 116 || hb.Errors != 10 {
		t.Fatalf("window: %d commands, %d errors; want 116 and 10", hb.Commands, hb.Errors)
	}
	if p50 := time.Duration(hb.P50); p50 < time.Millisecond || p50 > 1250*time.Microsecond {
		t.Errorf("p50 = %v, want about 1ms", p50)
	}
	if p99 := time.Duration(hb.P99); p99 < time.Millisecond || p99 > 1250*time.Microsecond {
		t.Errorf("p99 = %v, want about 1ms (one slow call in 101 is above the 99th percentile)", p99)
	}
	if time.Duration(hb.Interval) != time.Minute {
		t.Errorf("interval %v, want 1m", time.Duration(hb.Interval))
	}
	// The next window starts from zero.
	hb = w.next(&c, t0.Add(2*time.Minute))
	if hb.Commands != 0 || hb.Errors != 0 || hb.P99 != 0 {
		t.Fatalf("empty window: %+v", hb)
	}
}

func TestTopologyAddrs(t *testing.T) {
	tp := &meta.Topology{Nodes: []meta.Node{
		{Addr: "b:2", Role: meta.RoleMaster},
		{Addr: "a:1", Role: meta.RoleReplica},
		{Addr: "c:3", Role: meta.RoleMaster, Health: meta.HealthFail},
		{Addr: "b:2", Role: meta.RoleMaster},
		{Addr: ""},
	}}
	nodes, init := topologyAddrs(tp)
	if !slices.Equal(nodes, []string{"a:1", "b:2", "c:3"}) || !slices.Equal(init, []string{"b:2"}) {
		t.Fatalf("nodes %v seeds %v; want every address once, and the live masters as seeds", nodes, init)
	}
	nodes, init = topologyAddrs(&meta.Topology{Nodes: []meta.Node{{Addr: "x:1", Role: meta.RoleReplica}}})
	if !slices.Equal(init, nodes) {
		t.Fatalf("without masters the seeds are every node; got %v", init)
	}
}

func TestApplyConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   meta.ClientConfig
		check func(o *rueidis.ClientOption) string
	}{
		{"zero keeps rueidis defaults, cache off", meta.ClientConfig{}, func(o *rueidis.ClientOption) string {
			if o.BlockingPoolSize != 0 || o.ConnWriteTimeout != 0 || o.DisableRetry || o.RetryDelay != nil || o.SendToReplicas != nil || !o.DisableCache {
				return "want only DisableCache set"
			}
			return ""
		}},
		{"pool and timeouts", meta.ClientConfig{PoolSize: 7, DialTimeout: meta.Duration(time.Second), ReadTimeout: meta.Duration(2 * time.Second), WriteTimeout: meta.Duration(3 * time.Second)}, func(o *rueidis.ClientOption) string {
			if o.BlockingPoolSize != 7 || o.Dialer.Timeout != time.Second || o.ConnWriteTimeout != 3*time.Second {
				return "want pool 7, dial 1s, conn timeout 3s (the larger of read and write)"
			}
			return ""
		}},
		{"no retries", meta.ClientConfig{MaxRetries: -1}, func(o *rueidis.ClientOption) string {
			if !o.DisableRetry {
				return "want DisableRetry"
			}
			return ""
		}},
		{"three retries", meta.ClientConfig{MaxRetries: 3}, func(o *rueidis.ClientOption) string {
			if o.RetryDelay == nil || o.RetryDelay(3, rueidis.Completed{}, nil) < 0 || o.RetryDelay(4, rueidis.Completed{}, nil) >= 0 {
				return "want a retry delay that allows 3 attempts and refuses the 4th"
			}
			return ""
		}},
		{"replicas and cache", meta.ClientConfig{ReadFromReplica: true, ClientCache: true, ClientCacheBytes: 4096}, func(o *rueidis.ClientOption) string {
			if o.SendToReplicas == nil || o.DisableCache || o.CacheSizeEachConn != 4096 {
				return "want SendToReplicas, cache on, 4096 bytes"
			}
			return ""
		}},
	} {
		var o rueidis.ClientOption
		applyConfig(&o, tc.cfg)
		if msg := tc.check(&o); msg != "" {
			t.Errorf("%s: %s", tc.name, msg)
		}
	}
	if rueidisConfig(meta.ClientConfig{HeartbeatInterval: meta.Duration(time.Second)}) != rueidisConfig(meta.ClientConfig{}) {
		t.Error("the heartbeat interval must not count as a rueidis setting")
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want []string // substrings of the error; none means valid
	}{
		{"valid", Options{Coordinator: "zk://h:1/r", App: "orders"}, nil},
		{"everything wrong at once", Options{App: "no such/app", CloseTimeout: time.Millisecond, HeartbeatInterval: -1}, []string{"Coordinator is empty", "Options.App", "CloseTimeout", "HeartbeatInterval"}},
		{"negative session timeout", Options{Coordinator: "etcd://h:1/r", App: "a", SessionTimeout: -time.Second}, []string{"SessionTimeout"}},
	} {
		err := tc.o.Validate()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: valid, want errors %v", tc.name, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, w)
			}
		}
	}
}

func TestDispatcherContainsPanics(t *testing.T) {
	var got []EventType
	d := newDispatcher(func(ev Event) {
		got = append(got, ev.Type)
		if ev.Type == EventRegistered {
			panic("boom")
		}
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	d.emit(Event{Type: EventRegistered})
	d.emit(Event{Type: EventTopologyChanged})
	d.start()
	d.emit(Event{Type: EventClosed})
	d.emit(Event{Type: EventConfigChanged}) // after closed: dropped
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the event goroutine did not end after the closed event")
	}
	if want := []EventType{EventRegistered, EventTopologyChanged, EventClosed}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestGoid(t *testing.T) {
	here := goid()
	if here == 0 {
		t.Fatal("goid() = 0")
	}
	other := make(chan uint64)
	go func() { other <- goid() }()
	if o := <-other; o == here || o == 0 {
		t.Fatalf("goid on another goroutine = %d, here %d", o, here)
	}
}
