package manager

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/meta"
)

// LeakConfig tunes leak and zombie detection over client registrations.
// Zero fields take the defaults noted.
type LeakConfig struct {
	// MaxClientsPerProcess flags a process holding more clients of one app
	// than this. Default 16: a healthy process needs one client per app.
	MaxClientsPerProcess int
	// RisingWindow is how far back the "only rising" flag looks: an app
	// whose client count never fell over this window and rose by at least
	// RisingMin is flagged. Default 30m.
	RisingWindow time.Duration
	// RisingSamples is the least number of samples in the window for the
	// flag to be judged at all. Default 10.
	RisingSamples int
	// RisingMin is the least rise across the window that is flagged.
	// Default 5.
	RisingMin int
	// HeartbeatGrace flags a heartbeat older than this many intervals.
	// Default 3.
	HeartbeatGrace float64
	// DefaultHeartbeat is the interval assumed when a record names none.
	// Default 60s, the client library's default.
	DefaultHeartbeat time.Duration
}

func (c LeakConfig) withDefaults() LeakConfig {
	if c.MaxClientsPerProcess <= 0 {
		c.MaxClientsPerProcess = 16
	}
	if c.RisingWindow <= 0 {
		c.RisingWindow = 30 * time.Minute
	}
	if c.RisingSamples <= 0 {
		c.RisingSamples = 10
	}
	if c.RisingMin <= 0 {
		c.RisingMin = 5
	}
	if c.HeartbeatGrace <= 0 {
		c.HeartbeatGrace = 3
	}
	if c.DefaultHeartbeat <= 0 {
		c.DefaultHeartbeat = 60 * time.Second
	}
	return c
}

// Flag codes.
const (
	flagLeak            = "leak"
	flagRising          = "rising"
	flagZombieHeartbeat = "zombie-heartbeat"
	flagZombieConns     = "zombie-conns"
)

// processKey identifies one process: a pid is reused after a restart, so
// the start time is part of it.
type processKey struct {
	host  string
	pid   int
	start time.Time
}

// detectClientProblems finds leaks and zombies among an app's live client
// registrations and in the history of its client count. It returns the
// flags and, per client ID, the codes that concern it.
func detectClientProblems(app string, clients []*meta.Client, history []api.CountSample, now time.Time, cfg LeakConfig) ([]api.Flag, map[string][]string) {
	cfg = cfg.withDefaults()
	flags := []api.Flag{}
	perClient := make(map[string][]string)
	mark := func(code string, ids ...string) {
		for _, id := range ids {
			if !slices.Contains(perClient[id], code) {
				perClient[id] = append(perClient[id], code)
			}
		}
	}

	// One process holding many clients of the app.
	byProc := make(map[processKey][]*meta.Client)
	for _, c := range clients {
		k := processKey{c.Host, c.PID, c.ProcessStart}
		byProc[k] = append(byProc[k], c)
	}
	procs := make([]processKey, 0, len(byProc))
	for k := range byProc {
		procs = append(procs, k)
	}
	slices.SortFunc(procs, func(a, b processKey) int {
		return cmp.Or(cmp.Compare(len(byProc[b]), len(byProc[a])), cmp.Compare(a.host, b.host), cmp.Compare(a.pid, b.pid))
	})
	for _, k := range procs {
		cs := byProc[k]
		if len(cs) <= cfg.MaxClientsPerProcess {
			continue
		}
		site, n := commonSite(cs)
		where := fmt.Sprintf("created at %s", site)
		if n < len(cs) {
			where = fmt.Sprintf("%d of them created at %s", n, site)
		}
		ids := clientIDs(cs)
		flags = append(flags, api.Flag{
			Code: flagLeak, Host: k.host, PID: k.pid, Site: site, Clients: ids,
			Message: fmt.Sprintf("pid %d on %s holds %d clients of %q, %s; one client per process is enough — clients created per task and never closed look like this",
				k.pid, k.host, len(cs), app, where),
		})
		mark(flagLeak, ids...)
	}

	// Zombies: a registration whose process stopped heartbeating, or that
	// holds no connections, while its coordinator session lives.
	for _, c := range clients {
		interval := c.Heartbeat.Expected(cfg.DefaultHeartbeat)
		last := c.Heartbeat.At
		if last.IsZero() {
			last = c.CreatedAt
		}
		age := now.Sub(last)
		if limit := time.Duration(cfg.HeartbeatGrace * float64(interval)); age > limit {
			flags = append(flags, api.Flag{
				Code: flagZombieHeartbeat, Host: c.Host, PID: c.PID, Site: c.CreationSite, Clients: []string{c.ID},
				Message: fmt.Sprintf("client %s (%q) of pid %d on %s, created at %s: last heartbeat %s ago, expected every %s, yet its coordinator session is alive — a stuck process or a client whose Close never ended its session",
					c.ID, c.Name, c.PID, c.Host, c.CreationSite, age.Round(time.Second), interval),
			})
			mark(flagZombieHeartbeat, c.ID)
		}
		if c.OpenConns == 0 && now.Sub(c.CreatedAt) > interval {
			flags = append(flags, api.Flag{
				Code: flagZombieConns, Host: c.Host, PID: c.PID, Site: c.CreationSite, Clients: []string{c.ID},
				Message: fmt.Sprintf("client %s (%q) of pid %d on %s, created at %s, holds no Redis connections while its registration lives — closed connections with a session left open",
					c.ID, c.Name, c.PID, c.Host, c.CreationSite),
			})
			mark(flagZombieConns, c.ID)
		}
	}

	// The app's client count only rising: the incident's signature.
	var win []api.CountSample
	for _, smp := range history {
		if now.Sub(smp.Time) <= cfg.RisingWindow {
			win = append(win, smp)
		}
	}
	if len(win) >= cfg.RisingSamples {
		rising := true
		for i := 1; i < len(win); i++ {
			if win[i].Count < win[i-1].Count {
				rising = false
				break
			}
		}
		if rise := win[len(win)-1].Count - win[0].Count; rising && rise >= cfg.RisingMin {
			flags = append(flags, api.Flag{
				Code: flagRising,
				Message: fmt.Sprintf("%q's client count only rose over the last %s: %d → %d, never falling — clients are created and not closed",
					app, win[len(win)-1].Time.Sub(win[0].Time).Round(time.Second), win[0].Count, win[len(win)-1].Count),
			})
		}
	}
	return flags, perClient
}

// commonSite returns the most frequent creation site and how many clients
// share it.
func commonSite(cs []*meta.Client) (string, int) {
	count := make(map[string]int)
	best, n := "", 0
	for _, c := range cs {
		count[c.CreationSite]++
		if k := count[c.CreationSite]; k > n || k == n && c.CreationSite < best {
			best, n = c.CreationSite, k
		}
	}
	return best, n
}

func clientIDs(cs []*meta.Client) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	slices.Sort(ids)
	return ids
}
