package manager

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/redis/rueidis"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/cluster"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// The online command console runs one command at a time against an app's
// cluster. Its rules:
//   - viewers run read-only commands only (as Redis flags them);
//   - commands that can destroy data or stall a node are refused for all but
//     admins, and admins must confirm them;
//   - commands that take over a connection (MONITOR, SUBSCRIBE, SYNC) are
//     not supported;
//   - every command, run or refused, is audited with who sent it;
//   - replies are cut at commandOutputLimit, so a huge one cannot freeze a
//     page.
const (
	commandOutputLimit   = 64 << 10
	commandElementsLimit = 1000
	commandTimeout       = 5 * time.Second
)

// dangerous lists commands (and subcommands) that can destroy data, change
// the cluster, or stall a node.
var dangerous = map[string][]string{
	"FLUSHALL": nil, "FLUSHDB": nil, "KEYS": nil, "DEBUG": nil, "SHUTDOWN": nil, "SWAPDB": nil,
	"MIGRATE": nil, "SAVE": nil, "BGSAVE": nil, "BGREWRITEAOF": nil, "REPLICAOF": nil, "SLAVEOF": nil,
	"MODULE": nil, "FAILOVER": nil, "RESTORE": nil,
	"CONFIG":   {"SET", "REWRITE", "RESETSTAT"},
	"CLUSTER":  {"RESET", "FORGET", "FAILOVER", "SETSLOT", "ADDSLOTS", "ADDSLOTSRANGE", "DELSLOTS", "DELSLOTSRANGE", "FLUSHSLOTS", "MEET", "REPLICATE", "SET-CONFIG-EPOCH", "BUMPEPOCH", "SAVECONFIG"},
	"SCRIPT":   {"FLUSH", "KILL"},
	"FUNCTION": {"FLUSH", "DELETE", "RESTORE", "KILL"},
	"CLIENT":   {"KILL", "PAUSE", "NO-EVICT"},
	"ACL":      {"SETUSER", "DELUSER", "LOAD", "SAVE"},
	"SLOWLOG":  {"RESET"},
	"LATENCY":  {"RESET"},
}

// unsupported commands take over the connection or never answer.
var unsupported = []string{"MONITOR", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "SYNC", "PSYNC", "RESET", "QUIT", "AUTH", "HELLO", "SELECT"}

// isDangerous reports whether args name a dangerous command.
func isDangerous(args []string) bool {
	subs, ok := dangerous[strings.ToUpper(args[0])]
	if !ok {
		return false
	}
	if subs == nil {
		return true
	}
	return len(args) > 1 && slices.Contains(subs, strings.ToUpper(args[1]))
}

// splitCommand splits a command line the way redis-cli does: words
// separated by spaces, "double quotes" with \n \t \" \\ \xHH escapes, and
// 'single quotes' taken literally (except \').
func splitCommand(line string) ([]string, error) {
	var (
		out []string
		cur strings.Builder
		in  bool
	)
	r := []rune(line)
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case unicode.IsSpace(c):
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		case c == '"' || c == '\'':
			q := c
			in = true
			i++
			for ; i < len(r) && r[i] != q; i++ {
				if r[i] == '\\' && i+1 < len(r) {
					i++
					if q == '\'' {
						if r[i] != '\'' {
							cur.WriteRune('\\')
						}
						cur.WriteRune(r[i])
						continue
					}
					switch r[i] {
					case 'n':
						cur.WriteByte('\n')
					case 't':
						cur.WriteByte('\t')
					case 'r':
						cur.WriteByte('\r')
					case 'x':
						if i+2 < len(r) {
							if b, err := strconv.ParseUint(string(r[i+1:i+3]), 16, 8); err == nil {
								cur.WriteByte(byte(b))
								i += 2
								continue
							}
						}
						cur.WriteRune('x')
					default:
						cur.WriteRune(r[i])
					}
					continue
				}
				cur.WriteRune(r[i])
			}
			if i >= len(r) {
				return nil, badRequest("command", "unbalanced quotes")
			}
			if i+1 < len(r) && !unicode.IsSpace(r[i+1]) {
				return nil, badRequest("command", "closing quote must be followed by a space")
			}
		default:
			in = true
			cur.WriteRune(c)
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

// nodeClients keeps one single-node connection per cluster node for the
// command console.
type nodeClients struct {
	mu sync.Mutex
	m  map[string]rueidis.Client // by cluster + "\x00" + addr + password
}

func (s *Server) nodeClient(name, addr, password string) (rueidis.Client, error) {
	key := name + "\x00" + addr + "\x00" + password
	s.nodes.mu.Lock()
	defer s.nodes.mu.Unlock()
	if c := s.nodes.m[key]; c != nil {
		return c, nil
	}
	c, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{addr}, Password: password, ForceSingleClient: true, DisableCache: true,
		AlwaysRESP2: true, Dialer: net.Dialer{Timeout: 2 * time.Second}, ConnWriteTimeout: commandTimeout,
	})
	if err != nil {
		return nil, err
	}
	if s.nodes.m == nil {
		s.nodes.m = make(map[string]rueidis.Client)
	}
	s.nodes.m[key] = c
	return c, nil
}

func (s *Server) closeNodeClients() {
	s.nodes.mu.Lock()
	m := s.nodes.m
	s.nodes.m = nil
	s.nodes.mu.Unlock()
	for _, c := range m {
		c.Close()
	}
}

// runCommand handles POST /api/v1/apps/{app}/command.
func (s *Server) runCommand(r *http.Request, p *principal) (any, error) {
	app := r.PathValue("app")
	var in api.CommandRequest
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	args, err := splitCommand(in.Command)
	if err != nil {
		return nil, err
	}
	if len(args) == 0 {
		return nil, badRequest("command", "command is empty")
	}
	name := strings.ToUpper(args[0])
	res, err := s.execCommand(r.Context(), app, args, in.Confirm, p)
	status, result := http.StatusOK, "ok"
	if err != nil {
		he := toHTTPError(err)
		status, result = he.status, he.msg
	}
	s.audit(p.User, "COMMAND "+name, app, status, errIf(err, result))
	return res, err
}

func errIf(err error, msg string) error {
	if err == nil {
		return nil
	}
	return errors.New(msg)
}

func (s *Server) execCommand(ctx context.Context, app string, args []string, confirm bool, p *principal) (*api.CommandResult, error) {
	name := strings.ToUpper(args[0])
	if slices.Contains(unsupported, name) {
		return nil, badRequest("command", "%s is not supported in the console: it takes over the connection", name)
	}
	if isDangerous(args) {
		if !p.allows(meta.Admin) {
			return nil, forbidden(fmt.Sprintf("%s can destroy data or stall a node: only admins may run it", strings.Join(args[:min(2, len(args))], " ")))
		}
		if !confirm {
			return nil, &httpError{status: http.StatusConflict, code: "confirm", msg: fmt.Sprintf("%s can destroy data or stall a node: confirm to run it", name)}
		}
	}
	a, _, err := s.store.App(app).Get(ctx)
	if errors.Is(err, coord.ErrNotFound) {
		return nil, notFound("no app %q", app)
	} else if err != nil {
		return nil, err
	}
	topo, _, err := s.store.Topology(a.ActiveCluster).Get(ctx)
	if err != nil {
		return nil, unavailable("cluster "+a.ActiveCluster+" has no topology yet", err)
	}
	password, err := s.password(ctx, a.ActiveCluster)
	if err != nil {
		return nil, err
	}
	var seed string
	for _, n := range topo.Nodes {
		if n.Role == meta.RoleMaster && n.Health != meta.HealthFail {
			seed = n.Addr
			break
		}
	}
	if seed == "" {
		return nil, unavailable("cluster "+a.ActiveCluster+" has no master to talk to", nil)
	}
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	anyc, err := s.nodeClient(a.ActiveCluster, seed, password)
	if err != nil {
		return nil, unavailable("cannot connect to "+seed, err)
	}
	// Read-only-ness and keys come from Redis itself; a container command
	// (CONFIG, CLIENT, …) is judged by its subcommand.
	var info []rueidis.RedisMessage
	if len(args) > 1 {
		info, err = anyc.Do(ctx, anyc.B().Arbitrary("COMMAND", "INFO", strings.ToLower(name+"|"+args[1])).Build()).ToArray()
	}
	if err != nil || len(info) == 0 || info[0].IsNil() {
		info, err = anyc.Do(ctx, anyc.B().Arbitrary("COMMAND", "INFO", name).Build()).ToArray()
	}
	if err != nil || len(info) == 0 || info[0].IsNil() {
		return nil, badRequest("command", "unknown command %q", args[0])
	}
	flags := commandFlags(info[0])
	if slices.Contains(flags, "admin") && !p.allows(meta.Admin) {
		// Administrative commands read and change server settings,
		// passwords included (CONFIG GET requirepass).
		return nil, forbidden(fmt.Sprintf("%s is an administrative command: only admins may run it", name))
	}
	readOnly := slices.Contains(flags, "readonly") && !slices.Contains(flags, "write") || introspection(args)
	if !p.allows(meta.Operator) && !readOnly {
		return nil, forbidden(fmt.Sprintf("%s writes: viewers may run read-only commands only", name))
	}
	target := seed
	if keys, err := anyc.Do(ctx, anyc.B().Arbitrary("COMMAND", "GETKEYS").Args(args...).Build()).AsStrSlice(); err == nil && len(keys) > 0 {
		slot := cluster.KeySlot(keys[0])
		for _, k := range keys[1:] {
			if cluster.KeySlot(k) != slot {
				return nil, badRequest("command", "keys in different slots (CROSSSLOT); a cluster command works on keys of one slot")
			}
		}
		if owner := slotOwner(topo, slot); owner != "" {
			target = owner
		}
	}
	out, node, err := s.sendRouted(ctx, a.ActiveCluster, password, target, args)
	if err != nil {
		return nil, err
	}
	res := &api.CommandResult{Node: node}
	res.Output, res.Truncated = renderReply(out, rawReply(args))
	return res, nil
}

// introspection reports commands that read no keys but only describe the
// server or the cluster, which viewers may run though Redis does not flag
// them readonly.
func introspection(args []string) bool {
	name := strings.ToUpper(args[0])
	sub := ""
	if len(args) > 1 {
		sub = strings.ToUpper(args[1])
	}
	switch name {
	case "PING", "ECHO", "INFO", "TIME", "LOLWUT", "ROLE":
		return true
	case "CLUSTER":
		return slices.Contains([]string{"INFO", "NODES", "SLOTS", "SHARDS", "KEYSLOT", "COUNTKEYSINSLOT", "MYID", "REPLICAS", "SLAVES"}, sub)
	case "COMMAND":
		return sub != ""
	case "SLOWLOG":
		return sub == "GET" || sub == "LEN"
	case "LATENCY":
		return sub == "LATEST" || sub == "HISTORY" || sub == "DOCTOR"
	case "MEMORY":
		return sub == "STATS" || sub == "DOCTOR" || sub == "USAGE"
	}
	return false
}

// rawReply reports commands whose text reply redis-cli prints as it is
// rather than quoted: reports made of lines, such as INFO.
func rawReply(args []string) bool {
	name := strings.ToUpper(args[0])
	sub := ""
	if len(args) > 1 {
		sub = strings.ToUpper(args[1])
	}
	switch name {
	case "INFO", "LOLWUT":
		return true
	case "CLUSTER":
		return sub == "INFO" || sub == "NODES" || sub == "REPLICAS" || sub == "SLAVES"
	case "CLIENT":
		return sub == "LIST" || sub == "INFO"
	case "MEMORY":
		return sub == "DOCTOR" || sub == "MALLOC-STATS"
	case "LATENCY":
		return sub == "DOCTOR" || sub == "GRAPH"
	}
	return false
}

// commandFlags reads the flags of a COMMAND INFO entry.
func commandFlags(entry rueidis.RedisMessage) []string {
	parts, err := entry.ToArray()
	if err != nil || len(parts) < 3 {
		return nil
	}
	flags, _ := parts[2].AsStrSlice()
	return flags
}

func slotOwner(t *meta.Topology, slot int) string {
	for _, n := range t.Nodes {
		if n.Role != meta.RoleMaster {
			continue
		}
		for _, r := range n.Slots {
			if slot >= r.Start && slot <= r.End {
				return n.Addr
			}
		}
	}
	return ""
}

// sendRouted sends the command to addr and follows one MOVED or ASK.
func (s *Server) sendRouted(ctx context.Context, name, password, addr string, args []string) (rueidis.RedisResult, string, error) {
	for hop := 0; hop < 3; hop++ {
		c, err := s.nodeClient(name, addr, password)
		if err != nil {
			return rueidis.RedisResult{}, addr, unavailable("cannot connect to "+addr, err)
		}
		cmd := c.B().Arbitrary(args[0]).Args(args[1:]...).Build()
		res := c.Do(ctx, cmd)
		if rerr, ok := rueidis.IsRedisErr(res.Error()); ok {
			if to, moved := rerr.IsMoved(); moved {
				addr = to
				continue
			}
			if to, ask := rerr.IsAsk(); ask {
				ac, err := s.nodeClient(name, to, password)
				if err != nil {
					return rueidis.RedisResult{}, to, unavailable("cannot connect to "+to, err)
				}
				rs := ac.DoMulti(ctx, ac.B().Asking().Build(), ac.B().Arbitrary(args[0]).Args(args[1:]...).Build())
				return rs[1], to, nil
			}
		}
		if err := res.NonRedisError(); err != nil {
			return res, addr, unavailable("node "+addr+" did not answer", err)
		}
		return res, addr, nil
	}
	return rueidis.RedisResult{}, addr, unavailable("too many redirects", nil)
}

// renderReply prints a reply as redis-cli does, cut at the output bound.
// With raw, a text reply is printed as it is (INFO and the like).
func renderReply(res rueidis.RedisResult, raw bool) (string, bool) {
	var b strings.Builder
	elements := 0
	truncated := false
	var render func(m rueidis.RedisMessage, indent string)
	render = func(m rueidis.RedisMessage, indent string) {
		if b.Len() > commandOutputLimit || elements > commandElementsLimit {
			truncated = true
			return
		}
		elements++
		if err := m.Error(); err != nil {
			b.WriteString("(error) " + err.Error() + "\n")
			return
		}
		switch {
		case m.IsNil():
			b.WriteString("(nil)\n")
		case m.IsInt64():
			v, _ := m.AsInt64()
			fmt.Fprintf(&b, "(integer) %d\n", v)
		case m.IsArray():
			arr, _ := m.ToArray()
			if len(arr) == 0 {
				b.WriteString("(empty array)\n")
				return
			}
			width := len(strconv.Itoa(len(arr)))
			for i, e := range arr {
				prefix := fmt.Sprintf("%*d) ", width, i+1)
				if i > 0 {
					b.WriteString(indent)
				}
				b.WriteString(prefix)
				render(e, indent+strings.Repeat(" ", len(prefix)))
				if truncated {
					return
				}
			}
		default:
			s, err := m.ToString()
			if err != nil {
				fmt.Fprintf(&b, "%v\n", err)
				return
			}
			if raw {
				b.WriteString(strings.ReplaceAll(s, "\r\n", "\n"))
				if !strings.HasSuffix(s, "\n") {
					b.WriteString("\n")
				}
			} else if isStatusReply(m) {
				b.WriteString(s + "\n")
			} else {
				b.WriteString(strconv.Quote(s) + "\n")
			}
		}
	}
	m, err := res.ToMessage()
	if rueidis.IsRedisNil(err) {
		return "(nil)\n", false
	}
	if err != nil {
		if rerr, ok := rueidis.IsRedisErr(err); ok {
			return "(error) " + rerr.Error() + "\n", false
		}
		return "(error) " + err.Error() + "\n", false
	}
	render(m, "")
	out := b.String()
	if len(out) > commandOutputLimit {
		truncated = true
	}
	if truncated {
		if len(out) > commandOutputLimit {
			out = out[:commandOutputLimit]
		}
		out += "… (output cut)\n"
	}
	return out, truncated
}

// isStatusReply tells a simple-string reply (+OK), which redis-cli prints
// bare, from a bulk string, which it quotes. rueidis exposes the reply type
// only through the message's description.
func isStatusReply(m rueidis.RedisMessage) bool {
	return strings.Contains(m.String(), `"Type":"simple string"`)
}
