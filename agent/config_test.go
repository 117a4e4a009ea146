package agent

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/r2m-go/r2m/meta"
)

func TestQuoteRoundTrip(t *testing.T) {
	cases := []string{"", "plain", `with "quotes"`, `back\slash`, "tab\tnew\nline", "\x00\x01\xff", "ünïcode", `\x41 is not an escape here`}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		args, err := splitArgs("requirepass " + quote(s))
		if err != nil || len(args) != 2 || args[1] != s {
			t.Fatalf("splitArgs(quote(%q)) = %q, %v; want [requirepass %q]", s, args, err, s)
		}
	}
}

func TestRenderParseRoundTrip(t *testing.T) {
	for _, persistence := range []string{"", "none", "rdb", "aof"} {
		in := meta.Instance{Port: 7001, Cluster: "orders-1", MaxMemoryBytes: 1 << 30, Persistence: persistence,
			NodeTimeout: meta.Duration(3 * time.Second)}
		for _, pw := range []string{"", "s3cret \"x\""} {
			c, err := newConf("host-a", "10.0.0.5", "/var/lib/r2m/redis-7001", in, pw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseConf(c.render())
			if err != nil {
				t.Fatalf("parseConf(render()): %v\n%s", err, c.render())
			}
			got.Host = c.Host
			if got != c {
				t.Fatalf("parseConf(render(%+v)) = %+v", c, got)
			}
		}
	}
	c, _ := newConf("h", "127.0.0.1", "/d", meta.Instance{Port: 7000}, "")
	if c.NodeTimeout != 15*time.Second || c.Persistence != "none" {
		t.Fatalf("defaults: node timeout %v, persistence %q; want 15s, none", c.NodeTimeout, c.Persistence)
	}
	for _, bad := range []meta.Instance{{Port: 0}, {Port: 60000}, {Port: 7000, Persistence: "both"}, {Port: 7000, MaxMemoryBytes: -1}} {
		if _, err := newConf("h", "127.0.0.1", "/d", bad, ""); err == nil {
			t.Errorf("newConf(%+v) accepted an invalid instance", bad)
		}
	}
}

func TestParseStat(t *testing.T) {
	line := []byte("4242 (redis-server 1) S 1 4242 4242 0 -1 4194560 1171 0 14 0 0 0 0 0 20 0 5 0 321501 64905216 3066 18446744073709551615 0\n")
	st, err := parseStat(line)
	if err != nil || st.state != 'S' || st.pgrp != 4242 || st.start != 321501 {
		t.Fatalf("parseStat = %+v, %v; want state S, pgrp 4242, start 321501", st, err)
	}
	if _, err := parseStat([]byte("garbage")); err == nil {
		t.Fatal("parseStat accepted garbage")
	}
}

func TestPortOfDir(t *testing.T) {
	for name, want := range map[string]int{"redis-7000": 7000, "redis-07000": 0, "redis-": 0, "redis-70000": 0, "other-7000": 0, "redis-7000x": 0} {
		got, ok := portOfDir(name)
		if got != want || ok != (want != 0) {
			t.Errorf("portOfDir(%q) = %d, %v; want %d", name, got, ok, want)
		}
	}
}
