package web

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/r2m-go/r2m/api"
)

// The client table groups an app's live registrations the way an operator
// hunts a leak: which host, which process on it, which line of code made
// the clients. The largest groups come first, so a process holding many
// clients is at the top.

// hostGroup is the clients of one host.
type hostGroup struct {
	Host    string
	Count   int
	Flagged bool
	Procs   []procGroup
}

// procGroup is the clients of one process (a pid with its start time: a
// pid is reused after a restart).
type procGroup struct {
	PID           int
	Start         time.Time
	ClientVersion string
	GoVersion     string
	Count         int
	Flagged       bool
	Sites         []siteGroup
}

// siteGroup is the clients one creation site made within a process.
type siteGroup struct {
	Site    string
	Count   int
	Flagged bool
	Clients []api.ClientInfo
}

type procKey struct {
	host  string
	pid   int
	start time.Time
}

// groupClients groups clients by host, process and creation site, largest
// groups first, each client list oldest first.
func groupClients(clients []api.ClientInfo) []hostGroup {
	hosts := map[string]*hostGroup{}
	procs := map[procKey]*procGroup{}
	sites := map[procKey]map[string]*siteGroup{}
	procsOf := map[string][]procKey{}
	for _, ci := range clients {
		h := hosts[ci.Host]
		if h == nil {
			h = &hostGroup{Host: ci.Host}
			hosts[ci.Host] = h
		}
		k := procKey{ci.Host, ci.PID, ci.ProcessStart}
		p := procs[k]
		if p == nil {
			p = &procGroup{PID: ci.PID, Start: ci.ProcessStart, ClientVersion: ci.ClientVersion, GoVersion: ci.GoVersion}
			procs[k] = p
			sites[k] = map[string]*siteGroup{}
			procsOf[ci.Host] = append(procsOf[ci.Host], k)
		}
		s := sites[k][ci.CreationSite]
		if s == nil {
			s = &siteGroup{Site: ci.CreationSite}
			sites[k][ci.CreationSite] = s
		}
		flagged := len(ci.Flags) > 0
		s.Clients = append(s.Clients, ci)
		s.Count++
		p.Count++
		h.Count++
		s.Flagged = s.Flagged || flagged
		p.Flagged = p.Flagged || flagged
		h.Flagged = h.Flagged || flagged
	}
	out := make([]hostGroup, 0, len(hosts))
	for host, h := range hosts {
		for _, k := range procsOf[host] {
			p := procs[k]
			for _, s := range sites[k] {
				slices.SortFunc(s.Clients, func(a, b api.ClientInfo) int {
					return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
				})
				p.Sites = append(p.Sites, *s)
			}
			slices.SortFunc(p.Sites, func(a, b siteGroup) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Site, b.Site)) })
			h.Procs = append(h.Procs, *p)
		}
		slices.SortFunc(h.Procs, func(a, b procGroup) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.PID, b.PID), a.Start.Compare(b.Start))
		})
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b hostGroup) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Host, b.Host)) })
	return out
}

// flagInfo describes a flag code for people: a short label and what to do.
type flagInfo struct {
	Label string
	Class string
}

var flagInfos = map[string]flagInfo{
	"leak":             {Label: "LEAK", Class: "flag-leak"},
	"rising":           {Label: "ONLY RISING", Class: "flag-leak"},
	"zombie-heartbeat": {Label: "ZOMBIE: no heartbeat", Class: "flag-zombie"},
	"zombie-conns":     {Label: "ZOMBIE: no connections", Class: "flag-zombie"},
}

// flagLabel returns the label and class of a flag code.
func flagLabel(code string) flagInfo {
	if fi, ok := flagInfos[code]; ok {
		return fi
	}
	return flagInfo{Label: code, Class: "flag-zombie"}
}

// clientsView is the client panel of an app page.
type clientsView struct {
	App    string
	Count  int
	Flags  []api.Flag
	Groups []hostGroup
	// History is the count over time for the chart, as [unix seconds,
	// count] pairs.
	History [][2]int64
	// Explain maps a client ID to the messages of the flags that concern
	// it, so each flagged row carries its explanation.
	Explain map[string]string
}

func newClientsView(ac api.AppClients) *clientsView {
	v := &clientsView{App: ac.App, Count: ac.Count, Flags: ac.Flags, Groups: groupClients(ac.Clients), Explain: map[string]string{}}
	for _, s := range ac.History {
		v.History = append(v.History, [2]int64{s.Time.Unix(), int64(s.Count)})
	}
	for _, f := range ac.Flags {
		for _, id := range f.Clients {
			if prev := v.Explain[id]; prev != "" {
				v.Explain[id] = prev + "\n" + f.Message
			} else {
				v.Explain[id] = f.Message
			}
		}
	}
	return v
}

// FlagLabel is for templates.
func (v *clientsView) FlagLabel(code string) flagInfo { return flagLabel(code) }

// HistoryNote says how much history the chart has.
func (v *clientsView) HistoryNote() string {
	if len(v.History) == 0 {
		return "no samples yet: this server samples the count periodically"
	}
	return fmt.Sprintf("%d %s since %s", len(v.History), plural(len(v.History), "sample", "samples"), when(time.Unix(v.History[0][0], 0)))
}
