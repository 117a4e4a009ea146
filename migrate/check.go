package migrate

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultOutage is the link outage a source's replication backlog should
// survive without a full synchronization, when CheckSource is given zero.
const DefaultOutage = 10 * time.Minute

// SourceReport is what CheckSource found about a source.
type SourceReport struct {
	Cluster bool     `json:"cluster"`
	Masters []string `json:"masters"`
	// BacklogBytes is each master's repl-backlog-size; WriteBytesPerSec
	// its replication stream rate over a short sample.
	BacklogBytes     map[string]int64   `json:"backlog_bytes"`
	WriteBytesPerSec map[string]float64 `json:"write_bytes_per_sec"`
	// Databases lists the databases other than 0 that hold keys.
	Databases []int `json:"databases,omitempty"`
	// Warnings are the problems an operator should fix or accept.
	Warnings []string `json:"warnings,omitempty"`
}

// CheckSource inspects a source before a link starts: its masters, whether
// each repl-backlog-size covers outage (zero means DefaultOutage) at the
// write rate seen over half a second, and databases other than 0. Problems
// are Warnings; an unreachable source is an error.
func CheckSource(ctx context.Context, ep Endpoint, outage time.Duration) (*SourceReport, error) {
	if outage <= 0 {
		outage = DefaultOutage
	}
	n := newNodes(ep, "r2m-migrate-check")
	defer n.close()
	ms, isCluster, err := clusterMasters(ctx, n, ep.Addrs)
	if err != nil {
		return nil, err
	}
	rep := &SourceReport{Cluster: isCluster, BacklogBytes: map[string]int64{}, WriteBytesPerSec: map[string]float64{}}
	if isCluster {
		for _, m := range ms {
			rep.Masters = append(rep.Masters, m.Addr)
		}
	} else {
		rep.Masters = []string{ep.Addrs[0]}
	}
	offset := func(addr string) (int64, int64, error) {
		info, err := n.do(ctx, addr, "INFO", "replication").ToString()
		if err != nil {
			return 0, 0, fmt.Errorf("migrate: source %s: %w", addr, err)
		}
		off, _ := strconv.ParseInt(infoField(info, "master_repl_offset"), 10, 64)
		size, _ := strconv.ParseInt(infoField(info, "repl_backlog_size"), 10, 64)
		return off, size, nil
	}
	first := map[string]int64{}
	for _, a := range rep.Masters {
		off, size, err := offset(a)
		if err != nil {
			return nil, err
		}
		first[a], rep.BacklogBytes[a] = off, size
		if !isCluster {
			info, err := n.do(ctx, a, "INFO", "keyspace").ToString()
			if err == nil {
				for _, l := range strings.Split(info, "\n") {
					if db, ok := strings.CutPrefix(strings.TrimSpace(l), "db"); ok {
						num, _, _ := strings.Cut(db, ":")
						if d, err := strconv.Atoi(num); err == nil && d != 0 {
							rep.Databases = append(rep.Databases, d)
						}
					}
				}
			}
		}
	}
	start := time.Now()
	tm := time.NewTimer(500 * time.Millisecond)
	select {
	case <-ctx.Done():
		tm.Stop()
		return nil, ctx.Err()
	case <-tm.C:
	}
	for _, a := range rep.Masters {
		off, size, err := offset(a)
		if err != nil {
			return nil, err
		}
		rate := float64(off-first[a]) / time.Since(start).Seconds()
		rep.WriteBytesPerSec[a] = rate
		need := int64(rate * outage.Seconds())
		if size < need {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf(
				"source %s: repl-backlog-size is %s but writes run at %s/s, so a link outage longer than %v forces a full resync; raise it to at least %s (CONFIG SET repl-backlog-size %d)",
				a, bytesText(size), bytesText(int64(rate)), time.Duration(float64(size)/max(rate, 1)*float64(time.Second)).Round(time.Second),
				bytesText(need), need))
		} else if size <= 1<<20 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf(
				"source %s: repl-backlog-size is the 1 MiB default; any burst of writes during a link outage forces a full resync (CONFIG SET repl-backlog-size 256mb)", a))
		}
	}
	for _, d := range rep.Databases {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("source database %d holds keys: a Redis Cluster has only database 0; the link stops unless a db map merges it", d))
	}
	return rep, nil
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
