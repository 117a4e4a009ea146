package cluster

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/internal/testenv"
)

// TestScanScriptAgreesWithPipelines sizes the same slots with the
// server-side script and with MEMORY USAGE pipelines: keys, bytes and big
// keys must agree, and the script must cover every slot however the budget
// cuts its calls.
func TestScanScriptAgreesWithPipelines(t *testing.T) {
	c := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e := New(Config{})
	defer e.Close()
	addr := c.Masters()[0].Addr
	cl := c.Masters()[0].Client(t)

	// Slots 0-2 get 700 small keys each (more than one call's budget over
	// the three), slot 3 one 200 KiB value, slot 4 nothing.
	perSlot := map[int]int{0: 700, 1: 700, 2: 700, 3: 1}
	big := ""
	for i := 0; ; i++ {
		k := "scan:" + strconv.Itoa(i)
		s := KeySlot(k)
		if perSlot[s] == 0 {
			continue
		}
		v := "small"
		if s == 3 {
			v = strings.Repeat("x", 200<<10)
			big = k
		}
		if err := cl.Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
		perSlot[s]--
		if perSlot[0]+perSlot[1]+perSlot[2]+perSlot[3] == 0 {
			break
		}
	}
	slots := []int{0, 1, 2, 3, 4}
	const threshold = 100 << 10
	byScript, err := e.sizeSlots(ctx, addr, slots, threshold)
	if err != nil {
		t.Fatalf("sizeSlots: %v", err)
	}
	byPipes, err := e.scanSlots(ctx, addr, slots, threshold)
	if err != nil {
		t.Fatalf("scanSlots: %v", err)
	}
	if len(byScript) != len(slots) || len(byPipes) != len(slots) {
		t.Fatalf("got %d scans by script and %d by pipelines, want %d", len(byScript), len(byPipes), len(slots))
	}
	for i, s := range slots {
		a, b := byScript[i], byPipes[i]
		if a.keys != b.keys || a.bytes != b.bytes {
			t.Errorf("slot %d: script keys %d bytes %d, pipelines keys %d bytes %d", s, a.keys, a.bytes, b.keys, b.bytes)
		}
		bigKeys := func(sc slotScan) []string {
			var out []string
			for _, bk := range sc.big {
				out = append(out, bk.Key+"="+strconv.FormatInt(bk.Bytes, 10))
			}
			return out
		}
		if !slices.Equal(bigKeys(a), bigKeys(b)) {
			t.Errorf("slot %d: big keys by script %v, by pipelines %v", s, bigKeys(a), bigKeys(b))
		}
	}
	if got := byScript[0].keys; got != 700 {
		t.Errorf("slot 0 has %d keys, want 700", got)
	}
	if len(byScript[3].big) != 1 || byScript[3].big[0].Key != big {
		t.Errorf("slot 3 big keys = %v, want %s", byScript[3].big, big)
	}
}
