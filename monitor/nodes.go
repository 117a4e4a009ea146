package monitor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// nodePool keeps one single-node rueidis client per node address, like
// cluster.Engine does. It is used by one pass at a time; its lock only
// guards the map against the pass's own poll goroutines.
type nodePool struct {
	timeout time.Duration

	mu     sync.Mutex
	closed bool
	conns  map[string]*nodeConn // by address
	// closing tracks the goroutines that close dropped clients: closing a
	// client whose node is silent takes up to a second, which must not
	// hold up a pass.
	closing sync.WaitGroup
}

type nodeConn struct {
	password string
	c        rueidis.Client
}

func newNodePool(timeout time.Duration) *nodePool {
	return &nodePool{timeout: timeout, conns: make(map[string]*nodeConn)}
}

// client returns the client for addr, dialing it when there is none or
// the password changed. Dialing, AUTH included, is bounded by the pool's
// timeout.
func (p *nodePool) client(addr, password string) (rueidis.Client, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if nc := p.conns[addr]; nc != nil {
		if nc.password == password {
			p.mu.Unlock()
			return nc.c, nil
		}
		delete(p.conns, addr)
		p.closeLater(nc.c)
	}
	p.mu.Unlock()
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:       []string{addr},
		Password:          password,
		ForceSingleClient: true,
		DisableCache:      true,
		DisableRetry:      true,
		AlwaysRESP2:       true,
		Dialer:            net.Dialer{Timeout: p.timeout},
		// Background PINGs notice a silent node; polls bound themselves.
		ConnWriteTimeout: max(3*p.timeout, 5*time.Second),
		ClientName:       "r2m-monitor",
	})
	if err != nil {
		if c != nil {
			p.closeLater(c)
		}
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.closeLater(c)
		return nil, ErrClosed
	}
	if nc := p.conns[addr]; nc != nil && nc.password == password {
		p.closeLater(c)
		return nc.c, nil
	}
	p.conns[addr] = &nodeConn{password: password, c: c}
	return c, nil
}

// drop forgets addr's client after a transport failure, so the next poll
// dials afresh instead of queueing behind requests a frozen node never
// answered.
func (p *nodePool) drop(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if nc := p.conns[addr]; nc != nil {
		delete(p.conns, addr)
		p.closeLater(nc.c)
	}
}

// retain closes the clients of nodes no longer monitored.
func (p *nodePool) retain(keep map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, nc := range p.conns {
		if !keep[addr] {
			delete(p.conns, addr)
			p.closeLater(nc.c)
		}
	}
}

// closeLater closes c on a goroutine that close waits for. Called with
// p.mu held or on a client not yet shared.
func (p *nodePool) closeLater(c rueidis.Client) {
	p.closing.Go(c.Close)
}

// close closes every client and waits for all closes to finish.
func (p *nodePool) close() {
	p.mu.Lock()
	p.closed = true
	for addr, nc := range p.conns {
		delete(p.conns, addr)
		p.closeLater(nc.c)
	}
	p.mu.Unlock()
	p.closing.Wait()
}

// nodePoll is what one poll of one node returned.
type nodePoll struct {
	addr     string
	err      error     // set when the node did not answer INFO in time
	at       time.Time // the real (monotonic) time of the answer, for rates
	duration time.Duration
	info     info
	cluster  info // nil when cluster support is off or CLUSTER INFO failed
	slowlog  []slowEntry
	slowErr  error
	latency  []latencyEvent
}

// slowlogDepth is how many slow log entries one poll reads. Entries beyond
// it that arrived within one interval are counted (ids are consecutive)
// but not read.
const slowlogDepth = 128

// poll runs INFO all, CLUSTER INFO, SLOWLOG GET and LATENCY LATEST on addr
// in one round trip, bounded by the pool's timeout from the start of
// dialing.
func (p *nodePool) poll(ctx context.Context, addr, password string) *nodePoll {
	start := time.Now()
	res := &nodePoll{addr: addr}
	defer func() { res.duration = time.Since(start) }()
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	c, err := p.client(addr, password)
	if err != nil {
		res.err = fmt.Errorf("connect %s: %w", addr, err)
		return res
	}
	replies := c.DoMulti(ctx,
		c.B().Info().Section("all").Build(),
		c.B().ClusterInfo().Build(),
		c.B().SlowlogGet().Count(slowlogDepth).Build(),
		c.B().LatencyLatest().Build(),
	)
	res.at = time.Now()
	text, err := replies[0].ToString()
	if err != nil {
		if _, isRedis := rueidis.IsRedisErr(err); !isRedis || ctx.Err() != nil {
			p.drop(addr)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %v", p.timeout)
		}
		res.err = fmt.Errorf("INFO on %s: %w", addr, err)
		return res
	}
	res.info = parseInfo(text)
	if s, err := replies[1].ToString(); err == nil {
		res.cluster = parseInfo(s)
	}
	if m, err := replies[2].ToMessage(); err == nil {
		res.slowlog, res.slowErr = parseSlowlog(m)
	} else {
		res.slowErr = err
	}
	if m, err := replies[3].ToMessage(); err == nil {
		res.latency, _ = parseLatencyLatest(m)
	}
	return res
}
