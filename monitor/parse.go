package monitor

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// info is the parsed text of INFO or CLUSTER INFO: "field:value" lines.
type info map[string]string

func parseInfo(s string) info {
	m := make(info, 256)
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		m[k] = v
	}
	return m
}

// num returns a numeric field.
func (i info) num(k string) (float64, bool) {
	v, ok := i[k]
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	return f, err == nil
}

// keyspace sums keys and expiring keys over every "dbN:keys=…,expires=…"
// line.
func (i info) keyspace() (keys, expires float64) {
	for k, v := range i {
		if !strings.HasPrefix(k, "db") {
			continue
		}
		if _, err := strconv.Atoi(k[2:]); err != nil {
			continue
		}
		kv := parseKV(v)
		n, _ := strconv.ParseFloat(kv["keys"], 64)
		e, _ := strconv.ParseFloat(kv["expires"], 64)
		keys += n
		expires += e
	}
	return keys, expires
}

// replicaLink is one "slaveN:" line of a master's INFO replication.
type replicaLink struct {
	addr   string
	state  string
	offset float64
	lag    float64 // seconds since the replica's last ACK
}

// replicas returns the master's view of its replicas, by "ip:port".
func (i info) replicas() map[string]replicaLink {
	out := make(map[string]replicaLink)
	for k, v := range i {
		if !strings.HasPrefix(k, "slave") {
			continue
		}
		if _, err := strconv.Atoi(k[5:]); err != nil {
			continue
		}
		kv := parseKV(v)
		off, _ := strconv.ParseFloat(kv["offset"], 64)
		lag, _ := strconv.ParseFloat(kv["lag"], 64)
		addr := net.JoinHostPort(kv["ip"], kv["port"])
		out[addr] = replicaLink{addr: addr, state: kv["state"], offset: off, lag: lag}
	}
	return out
}

// parseKV parses "a=1,b=2".
func parseKV(s string) map[string]string {
	m := make(map[string]string, 4)
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		if ok {
			m[k] = v
		}
	}
	return m
}

// slowEntry is one SLOWLOG GET entry.
type slowEntry struct {
	ID       int64
	At       time.Time
	Duration time.Duration
	Command  string
}

// parseSlowlog reads SLOWLOG GET's reply: entries, newest first, each
// [id, unix time, microseconds, [args…], (client addr, client name)].
func parseSlowlog(m rueidis.RedisMessage) ([]slowEntry, error) {
	arr, err := m.ToArray()
	if err != nil {
		return nil, err
	}
	out := make([]slowEntry, 0, len(arr))
	for _, e := range arr {
		f, err := e.ToArray()
		if err != nil || len(f) < 4 {
			return nil, fmt.Errorf("slowlog entry: %v", err)
		}
		id, err1 := f[0].AsInt64()
		ts, err2 := f[1].AsInt64()
		us, err3 := f[2].AsInt64()
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("slowlog entry: id, time or duration is not an integer")
		}
		args, _ := f[3].AsStrSlice()
		cmd := ""
		if len(args) > 0 {
			cmd = strings.ToUpper(args[0])
		}
		out = append(out, slowEntry{ID: id, At: time.Unix(ts, 0), Duration: time.Duration(us) * time.Microsecond, Command: cmd})
	}
	return out, nil
}

// latencyEvent is one LATENCY LATEST row.
type latencyEvent struct {
	Event  string
	At     time.Time
	Latest time.Duration
	Max    time.Duration
}

// parseLatencyLatest reads LATENCY LATEST's reply: rows of [event, unix
// time, latest ms, max ms] (Redis 7.4 and later may add fields).
func parseLatencyLatest(m rueidis.RedisMessage) ([]latencyEvent, error) {
	arr, err := m.ToArray()
	if err != nil {
		return nil, err
	}
	out := make([]latencyEvent, 0, len(arr))
	for _, e := range arr {
		f, err := e.ToArray()
		if err != nil || len(f) < 4 {
			return nil, fmt.Errorf("latency row: %v", err)
		}
		name, err := f[0].ToString()
		if err != nil {
			return nil, err
		}
		ts, _ := f[1].AsInt64()
		latest, _ := f[2].AsInt64()
		mx, _ := f[3].AsInt64()
		out = append(out, latencyEvent{Event: name, At: time.Unix(ts, 0), Latest: time.Duration(latest) * time.Millisecond, Max: time.Duration(mx) * time.Millisecond})
	}
	return out, nil
}
