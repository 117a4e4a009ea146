package cluster_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/r2m-go/r2m/cluster"
)

func TestParseNodes(t *testing.T) {
	text := `07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host-a slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 [5461-<-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1] [93->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
6ec23923021cf3ffec47632106199cb7f496ce01 :0@0 master,fail?,noaddr - 1426238316232 0 5 disconnected`
	nodes, err := cluster.ParseNodes(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 4 {
		t.Fatalf("got %d nodes, want 4", len(nodes))
	}
	r := nodes[0]
	if r.Role != cluster.RoleReplica || r.MasterID != "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca" || r.Hostname != "host-a" || r.BusPort != 31004 {
		t.Errorf("replica parsed as %+v", r)
	}
	me := nodes[2]
	if !me.Myself() || me.SlotCount() != 5461 || me.ConfigEpoch != 1 {
		t.Errorf("myself parsed as %+v", me)
	}
	if me.Importing[5461] != "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1" || me.Migrating[93] != "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f" {
		t.Errorf("open slots: importing %v migrating %v", me.Importing, me.Migrating)
	}
	if n := nodes[3]; n.Addr != "" || !n.Failing() || n.Connected {
		t.Errorf("noaddr node parsed as %+v", n)
	}
	if _, err := cluster.ParseNodes("abc 1.2.3.4:1@2 master"); err == nil {
		t.Error("short line parsed without error")
	}
}

func TestKeySlot(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want int
	}{
		{"foo", 12182},
		{"123456789", 12739},
		{"{user1000}.following", cluster.KeySlot("user1000")},
		{"{}foo", cluster.KeySlot("{}foo")},
		{"bar{zap}", cluster.KeySlot("zap")},
	} {
		if got := cluster.KeySlot(tc.key); got != tc.want {
			t.Errorf("KeySlot(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
	if got := cluster.FormatRanges(cluster.Ranges([]int{5, 1, 2, 3, 9, 10})); got != "1-3,5,9-10" {
		t.Errorf("ranges = %s", got)
	}
}

func TestAtomicMigrationDetection(t *testing.T) {
	for _, tc := range []struct {
		name string
		info string
		want cluster.AtomicMigration
		ver  string
	}{
		{"debian redis 7.0", "# Server\r\nredis_version:7.0.15\r\nredis_mode:cluster\r\n", cluster.MigrationClassic, "redis 7.0.15"},
		{"redis 8.2", "redis_version:8.2.1\r\n", cluster.MigrationClassic, "redis 8.2.1"},
		{"redis 8.4", "redis_version:8.4.0\r\n", cluster.MigrationRedisASM, "redis 8.4.0"},
		{"redis 9", "redis_version:9.0.0\r\n", cluster.MigrationRedisASM, "redis 9.0.0"},
		{"valkey 8.1 (reports redis 7.2.4)", "redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.3\r\n", cluster.MigrationClassic, "valkey 8.1.3"},
		{"valkey 9.0", "redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.0.0\r\n", cluster.MigrationValkeyASM, "valkey 9.0.0"},
		{"redis rc", "redis_version:8.4.0-rc1\r\n", cluster.MigrationRedisASM, "redis 8.4.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := cluster.ParseServerVersion(tc.info)
			if err != nil {
				t.Fatal(err)
			}
			if v.String() != tc.ver || v.Migration() != tc.want {
				t.Errorf("got %s -> %s, want %s -> %s", v, v.Migration(), tc.ver, tc.want)
			}
		})
	}
	if _, err := cluster.ParseServerVersion("os:Linux\r\n"); err == nil {
		t.Error("INFO without a version parsed")
	}
}

// planView builds a view of masters with the given slot counts, laid out
// contiguously.
func planView(counts ...int) *cluster.View {
	var nodes []*cluster.NodeState
	next := 0
	for i, c := range counts {
		n := &cluster.NodeState{Reachable: true}
		n.ID = strings.Repeat(string(rune('a'+i)), 40)
		n.Addr = "10.0.0." + itoa(i+1) + ":6379"
		n.Role = cluster.RoleMaster
		if c > 0 {
			n.Slots = []cluster.SlotRange{{Start: next, End: next + c - 1}}
		}
		next += c
		nodes = append(nodes, n)
	}
	return cluster.NewView(nodes)
}

func after(p *cluster.Plan) []int {
	out := make([]int, len(p.Nodes))
	for i, n := range p.Nodes {
		out[i] = n.After
	}
	return out
}

func TestPlanRebalance(t *testing.T) {
	for _, tc := range []struct {
		name      string
		counts    []int
		weights   map[string]float64
		threshold float64
		exclude   bool
		want      []int // after, in view master order (masters with slots first)
		moves     int
		drain     int
	}{
		{"balanced stays put", []int{5462, 5461, 5461}, nil, 0, false, []int{5462, 5461, 5461}, 0, 0},
		{"empty master counted", []int{8192, 8192, 0}, nil, 0, false, []int{5462, 5461, 5461}, 5461, 0},
		{"empty master excluded", []int{8192, 8192, 0}, nil, 0, true, []int{8192, 8192}, 0, 0},
		{"weight zero drains", []int{5462, 5461, 5461}, map[string]float64{"10.0.0.3:6379": 0}, 0, false, []int{8192, 8192, 0}, 5461, 1},
		{"weighted 2:1:1", []int{5462, 5461, 5461}, map[string]float64{"10.0.0.1:6379": 2}, 0, false, []int{8192, 4096, 4096}, 2730, 0},
		{"under threshold", []int{5500, 5442, 5442}, nil, 2, false, []int{5500, 5442, 5442}, 0, 0},
		{"over threshold", []int{6000, 5192, 5192}, nil, 2, false, []int{5462, 5461, 5461}, 538, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := planView(tc.counts...)
			p, err := cluster.PlanRebalance(v, cluster.RebalanceOptions{Weights: tc.weights, ThresholdPct: tc.threshold, ExcludeEmpty: tc.exclude})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", p)
			if got := after(p); !equalInts(got, tc.want) || len(p.Moves) != tc.moves || len(p.Drain) != tc.drain {
				t.Errorf("after %v, %d moves, %d drained; want %v, %d, %d", got, len(p.Moves), len(p.Drain), tc.want, tc.moves, tc.drain)
			}
			total := 0
			for _, n := range p.Nodes {
				total += n.After
			}
			if len(p.Nodes) == len(tc.counts) && total != cluster.NumSlots {
				t.Errorf("slots after add up to %d", total)
			}
		})
	}
	if _, err := cluster.PlanRebalance(planView(16384), cluster.RebalanceOptions{Weights: map[string]float64{"10.0.0.1:6379": 0}}); !errors.Is(err, cluster.ErrInvalidPlan) {
		t.Errorf("all weights zero: err = %v, want ErrInvalidPlan", err)
	}
	if _, err := cluster.PlanRebalance(planView(16384), cluster.RebalanceOptions{Weights: map[string]float64{"nope:1": 1}}); !errors.Is(err, cluster.ErrInvalidPlan) {
		t.Errorf("unknown node weight: err = %v, want ErrInvalidPlan", err)
	}
}

func TestPlanReshardAndScale(t *testing.T) {
	v := planView(8192, 8192, 0)
	p, err := cluster.PlanReshard(v, "10.0.0.1:6379", "10.0.0.3:6379", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Moves) != 100 || p.Moves[0].Slot != 8092 || p.Nodes[1].After != 100 {
		t.Errorf("reshard plan:\n%s", p)
	}
	if _, err := cluster.PlanReshard(v, "10.0.0.1:6379", "10.0.0.3:6379", 9000); !errors.Is(err, cluster.ErrInvalidPlan) {
		t.Errorf("too many slots: err = %v", err)
	}
	out, err := cluster.PlanScale(v, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := after(out); !equalInts(got, []int{5462, 5461, 5461}) {
		t.Errorf("scale out to 3: after %v\n%s", got, out)
	}
	in, err := cluster.PlanScale(planView(5462, 5461, 5461), 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := after(in); !equalInts(got, []int{8192, 8192, 0}) || len(in.Drain) != 1 {
		t.Errorf("scale in to 2: after %v drain %v\n%s", got, in.Drain, in)
	}
	if _, err := cluster.PlanScale(v, 4); !errors.Is(err, cluster.ErrInvalidPlan) {
		t.Errorf("scale beyond masters: err = %v", err)
	}
}

func TestPlanCreatePlacement(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hosts    []string
		replicas int
		sameHost int
	}{
		{"three hosts", []string{"a", "a", "b", "b", "c", "c"}, 1, 0},
		{"hosts listed in blocks", []string{"a", "a", "a", "b", "b", "b"}, 1, 0},
		{"one host", []string{"a", "a", "a", "a", "a", "a"}, 1, 3},
		{"two replicas three hosts", []string{"a", "a", "a", "b", "b", "b", "c", "c", "c"}, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nodes []cluster.NodeSpec
			for i, h := range tc.hosts {
				nodes = append(nodes, cluster.NodeSpec{Addr: "10.0.0.1:" + itoa(7000+i), Host: h})
			}
			l, err := cluster.PlanCreate(nodes, tc.replicas)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", l)
			if len(l.SameHost) != tc.sameHost {
				t.Errorf("%d replicas share their master's host, want %d", len(l.SameHost), tc.sameHost)
			}
			for i, m := range l.Masters {
				for _, r := range l.Replicas[i] {
					if tc.sameHost == 0 && r.Host == m.Host {
						t.Errorf("replica %s on master %s's host %s", r.Addr, m.Addr, m.Host)
					}
				}
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
