package cluster

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// maxMigrateRetries bounds retries of a MIGRATE that timed out (IOERR);
// each retry halves the batch.
const maxMigrateRetries = 4

// moveKeys moves every key of the slot from the source to the target in
// batches until GETKEYSINSLOT on the source comes back empty. Each MIGRATE
// is pipelined with the GETKEYSINSLOT that fetches the next batch, so a
// batch costs one round trip.
func (m *mover) moveKeys(ctx context.Context, pm plannedMove) error {
	s := strconv.Itoa(pm.slot)
	keys, err := m.e.strs(ctx, pm.src.Addr, "GETKEYSINSLOT "+s, "CLUSTER", "GETKEYSINSLOT", s, strconv.FormatInt(m.limit.Load(), 10))
	if err != nil {
		return err
	}
	return m.moveKeysFrom(ctx, pm, keys)
}

// moveKeysFrom is moveKeys with the first batch of keys already fetched
// (by the pipeline that opened the slot); an empty batch means the source
// holds no key of the slot.
func (m *mover) moveKeysFrom(ctx context.Context, pm plannedMove, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	src, s := pm.src, strconv.Itoa(pm.slot)
	nt, err := m.nodeTimeout(ctx, src.Addr)
	if err != nil {
		return err
	}
	m.mu.Lock()
	sc := m.scans[pm.slot]
	m.mu.Unlock()
	big := map[string]int64{}
	for _, bk := range sc.big {
		big[bk.Key] = bk.Bytes
	}
	avg := sc.avgKeyBytes()
	getKeys := func() []string { return []string{"CLUSTER", "GETKEYSINSLOT", s, strconv.FormatInt(m.limit.Load(), 10)} }
	retries := 0
	for len(keys) > 0 {
		if err := m.throttle(ctx); err != nil {
			return err
		}
		batch, bytes := m.pickBatch(keys, big, avg)
		timeout := migrateTimeout(bytes, nt)
		step := fmt.Sprintf("MIGRATE %d keys of slot %s to %s", len(batch), s, pm.dst.Addr)
		release, err := m.acquireSource(ctx, src.Addr)
		if err != nil {
			return err
		}
		t0 := time.Now()
		res, err := m.e.pipelineTimeout(ctx, src.Addr, step, 3*timeout+m.e.cfg.CommandTimeout,
			[][]string{m.migrateArgs(pm.dst.Addr, timeout, false, batch), getKeys()})
		release()
		if err != nil {
			return err
		}
		if merr := res[0].Error(); merr != nil {
			switch {
			case isRedisErr(merr, "BUSYKEY"):
				if err := m.resolveBusy(ctx, pm, batch); err != nil {
					return err
				}
			case (isRedisErr(merr, "IOERR") || isRedisErr(merr, "timeout")) && retries < maxMigrateRetries:
				retries++
				m.limit.Store(max(1, m.limit.Load()/2))
				m.e.log.Warn("MIGRATE timed out; retrying with a smaller batch", "slot", pm.slot, "keys", len(batch), "err", merr)
			default:
				return errNode(src.Addr, step, merr)
			}
			if keys, err = m.e.strs(ctx, src.Addr, "GETKEYSINSLOT "+s, getKeys()...); err != nil {
				return err
			}
			continue
		}
		retries = 0
		m.adapt(time.Since(t0), len(batch))
		m.account(len(batch), bytes)
		if keys, err = res[1].AsStrSlice(); err != nil {
			return errNode(src.Addr, "GETKEYSINSLOT "+s, err)
		}
		m.report()
		if m.opts.BatchPause > 0 {
			if err := sleepCtx(ctx, m.opts.BatchPause); err != nil {
				return err
			}
		}
	}
	return nil
}

// acquireSource waits until no other worker of this move has a MIGRATE in
// flight on the source at addr, and returns the function that releases it.
// A MIGRATE blocks its source (and, while it restores, its target) for its
// whole duration, and Redis runs a client's pipelined commands back to
// back: two MIGRATEs queued at one node would make every other client of
// that node wait for both. Workers on different sources still run in
// parallel, and a worker waiting here has its SETSLOT rounds done already.
func (m *mover) acquireSource(ctx context.Context, addr string) (func(), error) {
	m.mu.Lock()
	sem, ok := m.migrating[addr]
	if !ok {
		sem = make(chan struct{}, m.opts.MigratesPerNode)
		m.migrating[addr] = sem
	}
	m.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pickBatch takes the keys for the next MIGRATE: a big key alone, or as
// many keys as the adaptive limit and the byte budget allow, stopping
// before a big key. It returns the keys and their estimated bytes.
func (m *mover) pickBatch(keys []string, big map[string]int64, avg int64) ([]string, int64) {
	if b, ok := big[keys[0]]; ok {
		return keys[:1], b
	}
	limit := int(m.limit.Load())
	if avg > 0 {
		limit = min(limit, int(max(1, m.opts.BatchBytes/avg)))
	}
	n := 0
	for n < len(keys) && n < limit {
		if _, ok := big[keys[n]]; ok {
			break
		}
		n++
	}
	return keys[:n], int64(n) * avg
}

// adapt halves the batch after a slow MIGRATE and grows it back after
// fast full ones, between 1 and BatchKeys.
func (m *mover) adapt(took time.Duration, n int) {
	cur := m.limit.Load()
	switch {
	case took > m.opts.MaxBatchTime && cur > 1:
		m.limit.CompareAndSwap(cur, max(1, cur/2))
	case took < m.opts.MaxBatchTime/4 && int64(n) >= cur && cur < int64(m.opts.BatchKeys):
		m.limit.CompareAndSwap(cur, min(int64(m.opts.BatchKeys), cur*2))
	}
}

func (m *mover) account(keys int, bytes int64) {
	m.mu.Lock()
	m.res.Keys += int64(keys)
	m.res.Bytes += bytes
	m.mu.Unlock()
}

// throttle waits until the keys moved so far fit MaxKeysPerSecond.
func (m *mover) throttle(ctx context.Context) error {
	if m.opts.MaxKeysPerSecond <= 0 {
		return ctx.Err()
	}
	m.mu.Lock()
	keys := m.res.Keys
	m.mu.Unlock()
	due := m.start.Add(time.Duration(float64(keys) / float64(m.opts.MaxKeysPerSecond) * float64(time.Second)))
	return sleepCtx(ctx, time.Until(due))
}

// migrateTimeout bounds one MIGRATE: generous for its estimated size, at
// least a second, and never more than half of cluster-node-timeout, so a
// stuck transfer fails (IOERR) before peers could flag the node.
func migrateTimeout(bytes int64, nodeTimeout time.Duration) time.Duration {
	t := max(time.Second, 4*estimateMove(bytes)+500*time.Millisecond)
	return min(t, nodeTimeout/2)
}

// migrateArgs builds MIGRATE host port "" 0 timeout [REPLACE] [AUTH…] KEYS….
func (m *mover) migrateArgs(dstAddr string, timeout time.Duration, replace bool, keys []string) []string {
	host, port, _ := net.SplitHostPort(dstAddr)
	args := []string{"MIGRATE", host, port, "", "0", strconv.FormatInt(timeout.Milliseconds(), 10)}
	if replace {
		args = append(args, "REPLACE")
	}
	switch {
	case m.e.cfg.Username != "":
		args = append(args, "AUTH2", m.e.cfg.Username, m.e.cfg.Password)
	case m.e.cfg.Password != "":
		args = append(args, "AUTH", m.e.cfg.Password)
	}
	args = append(args, "KEYS")
	return append(args, keys...)
}

// resolveBusy handles BUSYKEY for batch: keys present on both ends are
// compared; equal ones are moved with REPLACE (nothing changes on the
// target), different ones follow the BusyKey policy.
func (m *mover) resolveBusy(ctx context.Context, pm plannedMove, batch []string) error {
	src, dst := pm.src, pm.dst
	srcCmds := make([][]string, len(batch))
	dstCmds := make([][]string, 0, 2*len(batch))
	for i, k := range batch {
		srcCmds[i] = []string{"EXISTS", k}
		dstCmds = append(dstCmds, []string{"ASKING"}, []string{"EXISTS", k})
	}
	sres, err := m.e.pipeline(ctx, src.Addr, "BUSYKEY: EXISTS on source", srcCmds)
	if err != nil {
		return err
	}
	dres, err := m.e.pipeline(ctx, dst.Addr, "BUSYKEY: EXISTS on target", dstCmds)
	if err != nil {
		return err
	}
	var equal, differ []string
	for i, k := range batch {
		onSrc, _ := sres[i].AsInt64()
		onDst, _ := dres[2*i+1].AsInt64()
		if onSrc == 0 || onDst == 0 {
			continue
		}
		same, err := m.sameValue(ctx, pm, k)
		if err != nil {
			return err
		}
		if same {
			equal = append(equal, k)
		} else {
			differ = append(differ, k)
		}
	}
	nt, err := m.nodeTimeout(ctx, src.Addr)
	if err != nil {
		return err
	}
	replace := func(keys []string, why string) error {
		if len(keys) == 0 {
			return nil
		}
		step := fmt.Sprintf("MIGRATE REPLACE %d %s keys of slot %d", len(keys), why, pm.slot)
		_, err := m.e.cmdTimeout(ctx, 3*nt, src.Addr, step, m.migrateArgs(dst.Addr, nt/2, true, keys)...)
		return err
	}
	if err := replace(equal, "identical"); err != nil {
		return err
	}
	m.mu.Lock()
	m.res.BusyKeysResolved += len(equal)
	m.mu.Unlock()
	if len(equal) > 0 {
		m.e.log.Info("BUSYKEY: identical values on both ends; kept one copy", "slot", pm.slot, "keys", len(equal))
	}
	if len(differ) == 0 {
		return nil
	}
	switch m.opts.BusyKey {
	case BusyKeyKeepSource:
		m.e.log.Warn("BUSYKEY: values differ; overwriting the target's copy as the policy says", "slot", pm.slot, "keys", differ)
		return replace(differ, "conflicting")
	case BusyKeyKeepTarget:
		m.e.log.Warn("BUSYKEY: values differ; deleting the source's copy as the policy says", "slot", pm.slot, "keys", differ)
		return m.e.ok(ctx, src.Addr, "BUSYKEY: DEL source copies", append([]string{"DEL"}, differ...)...)
	default:
		return errNode(src.Addr, fmt.Sprintf("MIGRATE slot %d to %s", pm.slot, dst.Addr),
			fmt.Errorf("%w: %s", ErrBusyKeyConflict, strings.Join(differ, ", ")))
	}
}

// maxCompareBytes bounds the values sameValue compares element by element.
const maxCompareBytes = 64 << 20

// sameValue compares one key on both ends: equal DUMP payloads are equal
// values; otherwise (hash tables serialise in iteration order) it compares
// the contents by type.
func (m *mover) sameValue(ctx context.Context, pm plannedMove, key string) (bool, error) {
	sres, err := m.e.pipeline(ctx, pm.src.Addr, "BUSYKEY: DUMP on source", [][]string{{"DUMP", key}, {"TYPE", key}})
	if err != nil {
		return false, err
	}
	dres, err := m.e.pipeline(ctx, pm.dst.Addr, "BUSYKEY: DUMP on target", [][]string{{"ASKING"}, {"DUMP", key}, {"ASKING"}, {"TYPE", key}})
	if err != nil {
		return false, err
	}
	sd, err1 := sres[0].ToString()
	dd, err2 := dres[1].ToString()
	if err1 == nil && err2 == nil && sd == dd {
		return true, nil
	}
	st, _ := sres[1].ToString()
	dt, _ := dres[3].ToString()
	if st != dt || len(sd) > maxCompareBytes || len(dd) > maxCompareBytes {
		return false, nil
	}
	read := contentCommand(st, key)
	if read == nil {
		return false, nil
	}
	sres, err = m.e.pipeline(ctx, pm.src.Addr, "BUSYKEY: read source value", [][]string{read})
	if err != nil {
		return false, err
	}
	dres, err = m.e.pipeline(ctx, pm.dst.Addr, "BUSYKEY: read target value", [][]string{{"ASKING"}, read})
	if err != nil {
		return false, err
	}
	a, errA := normalizeValue(st, sres[0])
	b, errB := normalizeValue(st, dres[1])
	return errA == nil && errB == nil && a == b, nil
}

// contentCommand returns the command that reads a whole value of type typ.
func contentCommand(typ, key string) []string {
	switch typ {
	case "string":
		return []string{"GET", key}
	case "hash":
		return []string{"HGETALL", key}
	case "set":
		return []string{"SMEMBERS", key}
	case "zset":
		return []string{"ZRANGE", key, "0", "-1", "WITHSCORES"}
	case "list":
		return []string{"LRANGE", key, "0", "-1"}
	}
	return nil
}

// normalizeValue renders a value read by contentCommand in a canonical form
// (unordered types sorted).
func normalizeValue(typ string, r rueidis.RedisResult) (string, error) {
	if typ == "string" {
		return r.ToString()
	}
	items, err := r.AsStrSlice()
	if err != nil {
		return "", err
	}
	switch typ {
	case "set":
		slices.Sort(items)
	case "hash":
		pairs := make([]string, 0, len(items)/2)
		for i := 0; i+1 < len(items); i += 2 {
			pairs = append(pairs, items[i]+"\x00"+items[i+1])
		}
		slices.Sort(pairs)
		items = pairs
	}
	return strings.Join(items, "\x01"), nil
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
