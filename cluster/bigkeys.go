package cluster

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// DefaultBigKeyBytes is the MEMORY USAGE above which a key counts as big:
// it is reported before the move and moved on its own.
const DefaultBigKeyBytes = 8 << 20

// migrateBytesPerSecond is a conservative estimate of how fast one MIGRATE
// serialises, sends and restores a value, used to predict how long a big
// key would block its nodes. Measured on loopback with Redis 7.0: a 200 MB
// string moves in well under a second; this figure leaves a 2-3x margin.
const migrateBytesPerSecond = 100 << 20

// BigKey is a key whose size stands out, found before a move.
type BigKey struct {
	Key   string
	Slot  int
	Node  string // address of the node holding it
	Bytes int64  // MEMORY USAGE
	// Estimate is how long moving it is expected to block its nodes.
	Estimate time.Duration
}

func (b BigKey) String() string {
	return fmt.Sprintf("%s slot %d on %s: %d bytes, ~%v to move", b.Key, b.Slot, b.Node, b.Bytes, b.Estimate.Round(time.Millisecond))
}

// slotScan is what the pre-move scan learned about one slot.
type slotScan struct {
	keys  int64
	bytes int64
	big   []BigKey
}

// avgKeyBytes returns the mean size of the slot's keys, big keys excluded.
func (s slotScan) avgKeyBytes() int64 {
	n := s.keys - int64(len(s.big))
	b := s.bytes
	for _, k := range s.big {
		b -= k.Bytes
	}
	if n <= 0 || b <= 0 {
		return 0
	}
	return b / n
}

// scanChunk bounds how many keys one GETKEYSINSLOT of the scan returns, so
// the scan never blocks a node for long.
const scanChunk = 20000

// scanSlot sizes every key of slot on addr with MEMORY USAGE, in pipelines.
// GETKEYSINSLOT has no cursor, so a slot with more than scanChunk keys is
// sized by its first scanChunk keys; the move still finds later big keys by
// the time its MIGRATEs take.
func (e *Engine) scanSlot(ctx context.Context, addr string, slot int, bigBytes int64) (slotScan, error) {
	var sc slotScan
	s := strconv.Itoa(slot)
	n, err := e.integer(ctx, addr, "scan: COUNTKEYSINSLOT "+s, "CLUSTER", "COUNTKEYSINSLOT", s)
	if err != nil || n == 0 {
		return sc, err
	}
	sc.keys = n
	keys, err := e.strs(ctx, addr, "scan: GETKEYSINSLOT "+s, "CLUSTER", "GETKEYSINSLOT", s, strconv.FormatInt(min(n, scanChunk), 10))
	if err != nil {
		return sc, err
	}
	const pipe = 1000
	for i := 0; i < len(keys); i += pipe {
		part := keys[i:min(i+pipe, len(keys))]
		cmds := make([][]string, len(part))
		for j, k := range part {
			cmds[j] = []string{"MEMORY", "USAGE", k}
		}
		res, err := e.pipeline(ctx, addr, "scan: MEMORY USAGE slot "+s, cmds)
		if err != nil {
			return sc, err
		}
		for j, r := range res {
			b, err := r.AsInt64()
			if err != nil {
				continue // deleted or expired since GETKEYSINSLOT
			}
			sc.bytes += b
			if b >= bigBytes {
				sc.big = append(sc.big, BigKey{Key: part[j], Slot: slot, Node: addr, Bytes: b, Estimate: estimateMove(b)})
			}
		}
	}
	if len(keys) > 0 && int64(len(keys)) < n {
		sc.bytes = sc.bytes * n / int64(len(keys)) // extrapolate the tail
	}
	return sc, nil
}

// estimateMove predicts how long moving bytes with one MIGRATE blocks.
func estimateMove(bytes int64) time.Duration {
	return time.Duration(float64(bytes) / migrateBytesPerSecond * float64(time.Second))
}

// FindBigKeys sizes every key of the given slots on the node at addr and
// returns those of at least threshold bytes (zero means
// DefaultBigKeyBytes). It is the dry-run form of the scan MoveSlots runs
// before it starts.
func (e *Engine) FindBigKeys(ctx context.Context, addr string, slots []int, threshold int64) ([]BigKey, error) {
	if threshold <= 0 {
		threshold = DefaultBigKeyBytes
	}
	var out []BigKey
	for _, s := range slots {
		sc, err := e.scanSlot(ctx, addr, s, threshold)
		if err != nil {
			return out, err
		}
		out = append(out, sc.big...)
	}
	return out, nil
}
