package migrate

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// streamPlanner turns spooled stream commands into units: it follows
// SELECT, collects MULTI … EXEC, and routes each data command by slot.
type streamPlanner struct {
	sh   *shard
	tr   *tracker
	db   int
	inTx bool
	tx   []part
}

// feed plans one command that ends at offset off.
func (p *streamPlanner) feed(ctx context.Context, cmd command, off int64) error {
	l := p.sh.l
	name := strings.ToLower(string(cmd.args[0]))
	args := make([]string, len(cmd.args))
	for i, a := range cmd.args {
		args[i] = string(a)
	}
	var parts []part
	switch name {
	case "select":
		if len(args) > 1 {
			fmt.Sscan(args[1], &p.db)
			p.sh.db.Store(int64(p.db))
		}
	case "ping", "replconf", "publish", "spublish":
		// Consumed: PING keeps the link alive, REPLCONF GETACK was answered
		// by repl, and messages are not data.
	case "multi":
		p.inTx, p.tx = true, p.tx[:0]
		return nil
	case "exec":
		p.inTx = false
		units := group(p.sh, p.db, p.tx, off, true, l.opts.Mode == ExactlyOnce)
		p.tx = p.tx[:0]
		for _, u := range units {
			if err := p.sh.dispatch(ctx, p.tr, u); err != nil {
				return err
			}
		}
		p.tr.consumed(off)
		return nil
	case "discard":
		p.inTx, p.tx = false, p.tx[:0]
	case "flushall", "flushdb":
		if !l.opts.AllowFlush {
			return fmt.Errorf("%w: %s at offset %d; set AllowFlush to apply it", ErrFlushBlocked, strings.ToUpper(name), off)
		}
		if name == "flushdb" && l.dbAllowed(p.db) != nil {
			break
		}
		if err := p.tr.waitIdle(ctx); err != nil {
			return err
		}
		if err := l.target.broadcast(ctx, "FLUSHALL"); err != nil {
			return fmt.Errorf("migrate: applying %s: %w", name, err)
		}
	case "function", "script":
		if err := l.target.broadcast(ctx, args...); err != nil {
			l.log.Warn("applying a function command on the target", "cmd", name, "err", err)
		}
	default:
		var err error
		parts, err = l.commands.planCommand(ctx, name, args)
		if err != nil {
			l.stats.unroutable.Add(1)
			l.log.Warn("skipping a command the link cannot route", "shard", p.sh.id, "cmd", name, "err", err)
			parts = nil
		}
		if len(parts) > 0 {
			if err := l.dbAllowed(p.db); err != nil {
				return err
			}
		}
		p.grace(name, parts)
	}
	if p.inTx {
		p.tx = append(p.tx, parts...)
		return nil
	}
	if len(parts) > 0 {
		for _, u := range group(p.sh, p.db, parts, off, false, l.opts.Mode == ExactlyOnce) {
			if err := p.sh.dispatch(ctx, p.tr, u); err != nil {
				return err
			}
		}
	}
	p.tr.consumed(off)
	return nil
}

// keepsTTL lists commands that leave a key's expiry alone, so a graced key
// they touch keeps its grace.
var keepsTTL = map[string]bool{
	"incr": true, "incrby": true, "decr": true, "decrby": true, "incrbyfloat": true, "append": true,
	"setrange": true, "setbit": true, "rpush": true, "lpush": true, "rpushx": true, "lpushx": true,
	"linsert": true, "lset": true, "lrem": true, "ltrim": true, "sadd": true, "srem": true,
	"zadd": true, "zrem": true, "zincrby": true, "hset": true, "hmset": true, "hsetnx": true,
	"hdel": true, "hincrby": true, "hincrbyfloat": true, "xadd": true, "xtrim": true, "xdel": true,
	"xack": true, "xclaim": true, "xautoclaim": true, "xgroup": true, "xsetid": true, "pfadd": true,
}

// grace applies the TTL grace to stream commands that set an absolute
// expiry (Redis 7 propagates every expiry as PEXPIREAT or SET … PXAT): when
// the expiry falls within 5 s plus twice the current lag, the key would
// expire on the target before a refresh still in the pipeline arrives, so
// it gets now+TTLGrace and its real expiry is written back once the link has
// caught up with its spool (restoreGraced). Other commands end a key's grace
// unless they keep its TTL.
func (p *streamPlanner) grace(name string, parts []part) {
	l := p.sh.l
	for _, pt := range parts {
		if pt.resync || len(pt.keys) == 0 {
			continue
		}
		at := -1 // index of the absolute expiry argument
		switch name {
		case "pexpireat":
			if len(pt.args) >= 3 {
				at = 2
			}
		case "set", "getex":
			for i := 2; i+1 < len(pt.args); i++ {
				if strings.EqualFold(pt.args[i], "pxat") {
					at = i + 1
				}
			}
		}
		key := pt.keys[0]
		if at < 0 {
			if !keepsTTL[name] {
				for _, k := range pt.keys {
					delete(p.sh.graced, k)
				}
			}
			continue
		}
		if l.opts.TTLGrace <= 0 {
			continue
		}
		t, err := strconv.ParseInt(pt.args[at], 10, 64)
		if err != nil {
			continue
		}
		now := time.Now()
		lag := time.Duration(p.sh.lagMs(p.tr.appliedOffset())) * time.Millisecond
		if t >= now.Add(5*time.Second+2*lag).UnixMilli() {
			delete(p.sh.graced, key)
			continue
		}
		if p.sh.graced == nil {
			p.sh.graced = map[string]int64{}
		}
		p.sh.graced[key] = t
		pt.args[at] = strconv.FormatInt(now.Add(l.opts.TTLGrace).UnixMilli(), 10)
	}
}
