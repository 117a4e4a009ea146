package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// VerifyOptions configures Verify.
type VerifyOptions struct {
	Source, Target Endpoint
	// Sample is the number of random source keys to compare; zero compares
	// every key (SCAN of every source master).
	Sample int
	// TTLTolerance is how far the expiries may differ. Zero means 1 s.
	TTLTolerance time.Duration
	// MaxReported bounds the differences listed in the report. Zero means
	// 100.
	MaxReported int
}

// Difference is one key that differs.
type Difference struct {
	Key    string `json:"key"`
	Reason string `json:"reason"` // "missing", "type", "content", "ttl"
	Detail string `json:"detail,omitempty"`
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Checked   int64        `json:"checked"`
	Missing   int64        `json:"missing"`
	Different int64        `json:"different"`
	TTL       int64        `json:"ttl"`
	Expired   int64        `json:"expired"` // gone from the source while compared
	Diffs     []Difference `json:"diffs,omitempty"`
	// SourceKeys and TargetKeys are the DBSIZE totals (checkpoint keys
	// included on the target).
	SourceKeys int64 `json:"source_keys"`
	TargetKeys int64 `json:"target_keys"`
}

// OK reports whether no difference was found.
func (r *VerifyReport) OK() bool { return r.Missing == 0 && r.Different == 0 && r.TTL == 0 }

// Verify compares source keys with the target, key by key: type, content
// (order-insensitive where Redis is) and expiry within TTLTolerance. It
// returns an error wrapping ErrDifferent when keys differ.
func Verify(ctx context.Context, opts VerifyOptions) (*VerifyReport, error) {
	if opts.TTLTolerance <= 0 {
		opts.TTLTolerance = time.Second
	}
	if opts.MaxReported <= 0 {
		opts.MaxReported = 100
	}
	src := newNodes(opts.Source, "r2m-verify")
	defer src.close()
	tgt, err := newTarget(ctx, opts.Target, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, fmt.Errorf("migrate: verify: target: %w", err)
	}
	defer tgt.close()
	masters, isCluster, err := clusterMasters(ctx, src, opts.Source.Addrs)
	if err != nil {
		return nil, fmt.Errorf("migrate: verify: source: %w", err)
	}
	addrs := []string{opts.Source.Addrs[0]}
	if isCluster {
		addrs = addrs[:0]
		for _, m := range masters {
			addrs = append(addrs, m.Addr)
		}
	}
	rep := &VerifyReport{}
	for _, a := range addrs {
		n, err := src.do(ctx, a, "DBSIZE").AsInt64()
		if err != nil {
			return nil, fmt.Errorf("migrate: verify: DBSIZE on %s: %w", a, err)
		}
		rep.SourceKeys += n
	}
	for _, a := range tgt.masterAddrs() {
		if n, err := tgt.do(ctx, a, "DBSIZE").AsInt64(); err == nil {
			rep.TargetKeys += n
		}
	}
	checkBatch := func(a string, keys []string) error {
		keys = slices.DeleteFunc(keys, func(k string) bool { return strings.HasPrefix(k, ckPrefix) })
		if len(keys) == 0 {
			return nil
		}
		sc, err := src.client(a)
		if err != nil {
			return err
		}
		sv, err := contents(ctx, sc, keys)
		if err != nil {
			return err
		}
		tv, err := tgt.contents(ctx, keys)
		if err != nil {
			return err
		}
		for i, key := range keys {
			diff := func(reason, detail string) {
				if len(rep.Diffs) < opts.MaxReported {
					rep.Diffs = append(rep.Diffs, Difference{Key: key, Reason: reason, Detail: detail})
				}
			}
			s, t := sv[i], tv[i]
			if s.text == "" {
				rep.Expired++
				continue
			}
			rep.Checked++
			switch {
			case t.text == "":
				rep.Missing++
				diff("missing", "")
			case t.text != s.text:
				rep.Different++
				diff("content", fmt.Sprintf("source %.80q, target %.80q", s.text, t.text))
			case (s.exp < 0) != (t.exp < 0) || abs(s.exp-t.exp) > opts.TTLTolerance.Milliseconds():
				rep.TTL++
				diff("ttl", fmt.Sprintf("source expires at %d, target at %d (ms, -1 = never)", s.exp, t.exp))
			}
		}
		return nil
	}
	if opts.Sample > 0 {
		for i := 0; i < opts.Sample; i += 100 {
			a := addrs[(i/100)%len(addrs)]
			c, err := src.client(a)
			if err != nil {
				return nil, fmt.Errorf("migrate: verify: %w", err)
			}
			var cmds rueidis.Commands
			for range min(100, opts.Sample-i) {
				cmds = append(cmds, c.B().Randomkey().Build())
			}
			var keys []string
			for _, r := range c.DoMulti(ctx, cmds...) {
				k, err := r.ToString()
				if isNil(err) {
					continue
				}
				if err != nil {
					return nil, fmt.Errorf("migrate: verify: RANDOMKEY: %w", err)
				}
				keys = append(keys, k)
			}
			if err := checkBatch(a, keys); err != nil {
				return nil, fmt.Errorf("migrate: verify: %w", err)
			}
		}
	} else {
		for _, a := range addrs {
			cursor := "0"
			for {
				res, err := src.do(ctx, a, "SCAN", cursor, "COUNT", "1000").ToArray()
				if err != nil || len(res) != 2 {
					return nil, fmt.Errorf("migrate: verify: SCAN on %s: %w", a, err)
				}
				cursor, _ = res[0].ToString()
				keys, _ := res[1].AsStrSlice()
				if err := checkBatch(a, keys); err != nil {
					return nil, fmt.Errorf("migrate: verify: %w", err)
				}
				if cursor == "0" {
					break
				}
			}
		}
	}
	if !rep.OK() {
		return rep, fmt.Errorf("%w: %d missing, %d with other content, %d with another expiry (of %d checked)",
			ErrDifferent, rep.Missing, rep.Different, rep.TTL, rep.Checked)
	}
	return rep, nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// contents reads keys from the target masters that own them, re-reading
// the slot map once if the target moved a slot meanwhile.
func (t *target) contents(ctx context.Context, keys []string) ([]content, error) {
	for attempt := 0; ; attempt++ {
		out := make([]content, len(keys))
		by := map[string][]int{}
		for i, k := range keys {
			a := t.ownerOf(keySlot(k))
			by[a] = append(by[a], i)
		}
		var err error
		for a, idx := range by {
			var c rueidis.Client
			if c, err = t.client(a); err != nil {
				break
			}
			sub := make([]string, len(idx))
			for j, i := range idx {
				sub[j] = keys[i]
			}
			var got []content
			if got, err = contents(ctx, c, sub); err != nil {
				break
			}
			for j, i := range idx {
				out[i] = got[j]
			}
		}
		if err == nil {
			return out, nil
		}
		if attempt == 2 || ctx.Err() != nil {
			return nil, err
		}
		if rerr := t.refresh(ctx, true); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
	}
}

type content struct {
	text string // "" when the key does not exist
	exp  int64  // absolute expiry in ms, -1 for none
}

// contents returns a canonical text of each key's value and its expiry,
// in two pipelined round trips.
func contents(ctx context.Context, c rueidis.Client, keys []string) ([]content, error) {
	b := c.B()
	var cmds rueidis.Commands
	for _, k := range keys {
		cmds = append(cmds, b.Type().Key(k).Build(), b.Pexpiretime().Key(k).Build())
	}
	res := c.DoMulti(ctx, cmds...)
	out := make([]content, len(keys))
	types := make([]string, len(keys))
	cmds = cmds[:0]
	var owner []int
	for i, k := range keys {
		typ, err := res[2*i].ToString()
		if err != nil {
			return nil, fmt.Errorf("TYPE %q: %w", k, err)
		}
		if out[i].exp, err = res[2*i+1].AsInt64(); err != nil {
			return nil, fmt.Errorf("PEXPIRETIME %q: %w", k, err)
		}
		types[i] = typ
		add := func(cmd rueidis.Completed) {
			cmds = append(cmds, cmd)
			owner = append(owner, i)
		}
		switch typ {
		case "none":
		case "string":
			add(b.Get().Key(k).Build())
		case "list":
			add(b.Lrange().Key(k).Start(0).Stop(-1).Build())
		case "set":
			add(b.Smembers().Key(k).Build())
		case "zset":
			add(b.Zrange().Key(k).Min("0").Max("-1").Withscores().Build())
		case "hash":
			add(b.Hgetall().Key(k).Build())
		case "stream":
			add(b.Xrange().Key(k).Start("-").End("+").Build())
			add(b.XinfoGroups().Key(k).Build())
		default:
			return nil, fmt.Errorf("key %q: type %s cannot be compared", k, typ)
		}
	}
	parts := make([][]string, len(keys))
	for j, r := range c.DoMulti(ctx, cmds...) {
		i := owner[j]
		var err error
		switch types[i] {
		case "string":
			var v string
			v, err = r.ToString()
			if isNil(err) {
				err = nil
			}
			parts[i] = []string{v}
		case "list", "zset":
			parts[i], err = r.AsStrSlice()
		case "set":
			parts[i], err = r.AsStrSlice()
			slices.Sort(parts[i])
		case "hash":
			var m map[string]string
			m, err = r.AsStrMap()
			for k, v := range m {
				parts[i] = append(parts[i], k+"="+v)
			}
			slices.Sort(parts[i])
		case "stream":
			if len(parts[i]) == 0 || parts[i][0] != "entries" {
				var entries []rueidis.XRangeEntry
				entries, err = r.AsXRange()
				parts[i] = append(parts[i], "entries")
				for _, e := range entries {
					var fv []string
					for f, v := range e.FieldValues {
						fv = append(fv, f+"="+v)
					}
					slices.Sort(fv)
					parts[i] = append(parts[i], e.ID+":"+strings.Join(fv, ","))
				}
				break
			}
			var groups []rueidis.RedisMessage
			groups, err = r.ToArray()
			for _, gm := range groups {
				g, _ := gm.AsMap()
				nm, lm, pm := g["name"], g["last-delivered-id"], g["pending"]
				name, _ := nm.ToString()
				last, _ := lm.ToString()
				pend, _ := pm.AsInt64()
				parts[i] = append(parts[i], "group "+name+" "+last+" "+strconv.FormatInt(pend, 10))
			}
		}
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil, err
			}
			return nil, fmt.Errorf("key %q: %w", keys[i], err)
		}
	}
	for i := range keys {
		if types[i] != "none" {
			out[i].text = types[i] + "\x00" + strings.Join(parts[i], "\x00")
		}
	}
	return out, nil
}
