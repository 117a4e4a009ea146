package cluster

import (
	"context"
	"errors"
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

// scanSlotsPerRound is how many slots one scan round asks for at once:
// their COUNTKEYSINSLOT and GETKEYSINSLOT go in one pipeline, and their
// keys' MEMORY USAGE in pipelines of scanPipe commands, so small slots do
// not cost a round trip each.
const scanSlotsPerRound = 64

// scanPipe is how many MEMORY USAGE commands one pipeline carries. Redis
// runs the commands it read in one go before serving other clients, so a
// short pipeline keeps the wait it adds to their commands short (about
// 0.1-0.2 ms here), at the price of more round trips.
const scanPipe = 100

// scanScript sizes keys inside the node, so the scan costs one round trip
// per call and no per-key work in the engine. ARGV is budget, limit,
// big-key threshold, then slots. For each slot it runs COUNTKEYSINSLOT,
// GETKEYSINSLOT (at most limit keys) and MEMORY USAGE of each key, and
// returns {slot, keys, sized, bytes, {big key, bytes, ...}}. It stops after
// the slot that brings the keys it sized to budget, so one call blocks the
// node for a bounded time (about a microsecond per key on Redis 7.0); the
// caller asks again for the rest. The flags mark it read-only and let it
// read keys of several slots, all local: the caller sends only slots the
// node owns. Nodes older than Redis 7.0, or that refuse scripts, fail the
// call and are scanned with pipelines instead.
const scanScript = `#!lua flags=no-writes,allow-cross-slot-keys
local budget, limit, big = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out, sized_all = {}, 0
for i = 4, #ARGV do
  local slot = tonumber(ARGV[i])
  local n = redis.call('CLUSTER', 'COUNTKEYSINSLOT', slot)
  local keys = redis.call('CLUSTER', 'GETKEYSINSLOT', slot, limit)
  local bytes, sized, bigs = 0, 0, {}
  for _, k in ipairs(keys) do
    local b = redis.call('MEMORY', 'USAGE', k)
    if b then
      bytes, sized = bytes + b, sized + 1
      if b >= big then
        bigs[#bigs + 1] = k
        bigs[#bigs + 1] = tostring(b)
      end
    end
  end
  out[#out + 1] = {slot, n, sized, bytes, bigs}
  sized_all = sized_all + #keys
  if sized_all >= budget then break end
end
return out`

// scanBudget is how many keys one scanScript call sizes before it returns
// (it always finishes the slot it is in): about 0.2 ms of the node's time
// for small keys. Calls of 1,000 keys made every foreground command of the
// benchmark that arrived during the scan several milliseconds slower on
// this 2-core machine.
const scanBudget = 200

// errScanReply: the key-sizing script answered something unexpected; the
// slots are then sized with pipelines.
var errScanReply = errors.New("cluster: unexpected reply to the key-sizing script")

// badScanReply describes an unexpected script reply v, wrapping the
// parse error err when there is one.
func badScanReply(v any, err error) error {
	if err != nil {
		return fmt.Errorf("%w: %v: %w", errScanReply, v, err)
	}
	return fmt.Errorf("%w: %v", errScanReply, v)
}

// scanSlotsScript sizes the keys of slots on addr with scanScript. It
// returns the scans of a prefix of slots (at least one slot unless err is
// set).
func (e *Engine) scanSlotsScript(ctx context.Context, addr string, slots []int, bigBytes int64) ([]slotScan, error) {
	args := []string{"EVAL", scanScript, "0", strconv.Itoa(scanBudget), strconv.Itoa(scanChunk), strconv.FormatInt(bigBytes, 10)}
	for _, s := range slots {
		args = append(args, strconv.Itoa(s))
	}
	step := fmt.Sprintf("scan: script over slots %d-", slots[0])
	msg, err := e.cmdTimeout(ctx, e.cfg.CommandTimeout, addr, step, args...)
	if err != nil {
		return nil, err
	}
	rows, err := msg.ToArray()
	if err != nil || len(rows) == 0 || len(rows) > len(slots) {
		return nil, errNode(addr, step, badScanReply(msg, err))
	}
	out := make([]slotScan, len(rows))
	for i, row := range rows {
		f, err := row.ToArray()
		if err != nil || len(f) != 5 {
			return nil, errNode(addr, step, badScanReply(row, err))
		}
		slot, err1 := f[0].AsInt64()
		n, err2 := f[1].AsInt64()
		sized, err3 := f[2].AsInt64()
		bytes, err4 := f[3].AsInt64()
		bigs, err5 := f[4].AsStrSlice()
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil || int(slot) != slots[i] || len(bigs)%2 != 0 {
			return nil, errNode(addr, step, badScanReply(row, err))
		}
		sc := slotScan{keys: n, bytes: bytes}
		for j := 0; j < len(bigs); j += 2 {
			b, _ := strconv.ParseInt(bigs[j+1], 10, 64)
			sc.big = append(sc.big, BigKey{Key: bigs[j], Slot: int(slot), Node: addr, Bytes: b, Estimate: estimateMove(b)})
		}
		if sized > 0 && sized < n {
			sc.bytes = sc.bytes * n / sized // extrapolate the tail
		}
		out[i] = sc
	}
	return out, nil
}

// sizeSlots sizes every key of slots on addr, with scanScript where the
// node runs it and with pipelines where it does not.
func (e *Engine) sizeSlots(ctx context.Context, addr string, slots []int, bigBytes int64) ([]slotScan, error) {
	out := make([]slotScan, 0, len(slots))
	for len(out) < len(slots) {
		rest := slots[len(out):]
		scs, err := e.scanSlotsScript(ctx, addr, rest, bigBytes)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrUnreachable) {
				return out, err
			}
			e.log.Debug("scan script refused; sizing keys with pipelines", "node", addr, "err", err)
			if scs, err = e.scanSlots(ctx, addr, rest, bigBytes); err != nil {
				return out, err
			}
		}
		out = append(out, scs...)
	}
	return out, nil
}

// scanSlots sizes every key of the given slots on addr with MEMORY USAGE,
// the round trips shared by all of them. GETKEYSINSLOT has no cursor, so a
// slot with more than scanChunk keys is sized by its first scanChunk keys;
// the move still finds later big keys by the time its MIGRATEs take.
func (e *Engine) scanSlots(ctx context.Context, addr string, slots []int, bigBytes int64) ([]slotScan, error) {
	out := make([]slotScan, len(slots))
	cmds := make([][]string, 0, 2*len(slots))
	for _, slot := range slots {
		s := strconv.Itoa(slot)
		cmds = append(cmds, []string{"CLUSTER", "COUNTKEYSINSLOT", s}, []string{"CLUSTER", "GETKEYSINSLOT", s, strconv.Itoa(scanChunk)})
	}
	res, err := e.pipeline(ctx, addr, fmt.Sprintf("scan: GETKEYSINSLOT %d slots from %d", len(slots), slots[0]), cmds)
	if err != nil {
		return out, err
	}
	// owner[i] is the index in slots of the key keys[i].
	var keys []string
	var owner []int
	for i, slot := range slots {
		n, err := res[2*i].AsInt64()
		if err != nil {
			return out, errNode(addr, "scan: COUNTKEYSINSLOT "+strconv.Itoa(slot), err)
		}
		ks, err := res[2*i+1].AsStrSlice()
		if err != nil {
			return out, errNode(addr, "scan: GETKEYSINSLOT "+strconv.Itoa(slot), err)
		}
		out[i].keys = max(n, int64(len(ks)))
		keys = append(keys, ks...)
		for range ks {
			owner = append(owner, i)
		}
	}
	sized := make([]int64, len(slots))
	for i := 0; i < len(keys); i += scanPipe {
		part := keys[i:min(i+scanPipe, len(keys))]
		cmds := make([][]string, len(part))
		for j, k := range part {
			cmds[j] = []string{"MEMORY", "USAGE", k}
		}
		res, err := e.pipeline(ctx, addr, "scan: MEMORY USAGE slot "+strconv.Itoa(slots[owner[i]]), cmds)
		if err != nil {
			return out, err
		}
		for j, r := range res {
			b, err := r.AsInt64()
			if err != nil {
				continue // deleted or expired since GETKEYSINSLOT
			}
			sc := &out[owner[i+j]]
			sc.bytes += b
			sized[owner[i+j]]++
			if b >= bigBytes {
				slot := slots[owner[i+j]]
				sc.big = append(sc.big, BigKey{Key: part[j], Slot: slot, Node: addr, Bytes: b, Estimate: estimateMove(b)})
			}
		}
	}
	for i := range out {
		if sized[i] > 0 && sized[i] < out[i].keys {
			out[i].bytes = out[i].bytes * out[i].keys / sized[i] // extrapolate the tail
		}
	}
	return out, nil
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
	scs, err := e.sizeSlots(ctx, addr, slots, threshold)
	var out []BigKey
	for _, sc := range scs {
		out = append(out, sc.big...)
	}
	return out, err
}
