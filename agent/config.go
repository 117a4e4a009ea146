package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/r2m-go/r2m/meta"
)

// Names of the files in an instance directory.
const (
	confName    = "redis.conf"
	pidName     = "redis.pid"
	logName     = "redis.log"
	nodesName   = "nodes.conf"
	instPrefix  = "redis-"
	lockName    = "agent.lock"
	desiredName = "desired.json"
)

// defaultNodeTimeout is Redis's own default cluster-node-timeout, which
// meta.Instance documents for a zero NodeTimeout.
const defaultNodeTimeout = 15 * time.Second

// rdbSave is Redis 7's default snapshot schedule, used for "rdb".
const rdbSave = "3600 1 300 100 60 10000"

// redisConf is everything the agent puts into an instance's redis.conf. It
// is comparable, so the agent can tell whether a desired change needs
// applying.
type redisConf struct {
	Host        string // for the header comment only
	Cluster     string // for the header comment only
	Port        int
	Bind        string
	Dir         string
	NodeTimeout time.Duration
	MaxMemory   int64
	Persistence string // "none", "rdb" or "aof"
	Password    string // "" means none; never logged
}

// instanceDir is the directory of the instance on port.
func instanceDir(dataDir string, port int) string {
	return filepath.Join(dataDir, instPrefix+strconv.Itoa(port))
}

// portOfDir parses an instance directory name ("redis-7000").
func portOfDir(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, instPrefix)
	if !ok {
		return 0, false
	}
	p, err := strconv.Atoi(s)
	if err != nil || strconv.Itoa(p) != s || validatePort(p) != nil {
		return 0, false
	}
	return p, true
}

// validatePort accepts the ports whose cluster bus port (port+10000) also
// exists.
func validatePort(p int) error {
	if p < 1 || p > 65535-10000 {
		return fmt.Errorf("port %d out of range: want 1–55535 (the cluster bus uses port+10000)", p)
	}
	return nil
}

// newConf builds the configuration of an instance; password is the
// resolved PasswordFrom.
func newConf(host, bind, dir string, in meta.Instance, password string) (redisConf, error) {
	c := redisConf{
		Host: host, Cluster: in.Cluster, Port: in.Port, Bind: bind, Dir: dir,
		NodeTimeout: time.Duration(in.NodeTimeout), MaxMemory: in.MaxMemoryBytes,
		Persistence: in.Persistence, Password: password,
	}
	if c.NodeTimeout == 0 {
		c.NodeTimeout = defaultNodeTimeout
	}
	if c.Persistence == "" {
		c.Persistence = "none"
	}
	switch {
	case c.Persistence != "none" && c.Persistence != "rdb" && c.Persistence != "aof":
		return c, fmt.Errorf("persistence %q: want none, rdb or aof", in.Persistence)
	case c.NodeTimeout < 0 || c.NodeTimeout%time.Millisecond != 0:
		return c, fmt.Errorf("node timeout %v: want a positive number of milliseconds", c.NodeTimeout)
	case c.MaxMemory < 0:
		return c, fmt.Errorf("maxmemory %d is negative", c.MaxMemory)
	}
	return c, validatePort(c.Port)
}

// settings are the directives that CONFIG SET can change on a running
// instance, with their raw values, in a fixed order. Everything else the
// agent writes (port, dir, pidfile, cluster mode) is fixed for an instance.
func (c redisConf) settings() [][2]string {
	save, aof := "", "no"
	switch c.Persistence {
	case "rdb":
		save = rdbSave
	case "aof":
		aof = "yes"
	}
	return [][2]string{
		{"bind", c.Bind},
		{"cluster-node-timeout", strconv.FormatInt(c.NodeTimeout.Milliseconds(), 10)},
		{"maxmemory", strconv.FormatInt(c.MaxMemory, 10)},
		{"save", save},
		{"appendonly", aof},
		{"requirepass", c.Password},
		{"masterauth", c.Password},
	}
}

// render returns the redis.conf text.
func (c redisConf) render() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Written by the r2m agent of host %s. Do not edit: the agent rewrites\n", sanitize(c.Host))
	b.WriteString("# this file from the desired state in the coordinator.\n")
	fmt.Fprintf(&b, "%s%s\n", clusterComment, quote(c.Cluster))
	fmt.Fprintf(&b, "port %d\n", c.Port)
	fmt.Fprintf(&b, "dir %s\n", quote(c.Dir))
	fmt.Fprintf(&b, "pidfile %s\n", quote(filepath.Join(c.Dir, pidName)))
	fmt.Fprintf(&b, "logfile %s\n", quote(filepath.Join(c.Dir, logName)))
	b.WriteString("daemonize no\n")
	b.WriteString("cluster-enabled yes\n")
	fmt.Fprintf(&b, "cluster-config-file %s\n", nodesName)
	// Replicas sync at once: Redis's default waits 5s for more replicas to
	// share one transfer, which only delays a new cluster and a recovery.
	fmt.Fprintf(&b, "repl-diskless-sync-delay 0\n")
	b.WriteString("appendfsync everysec\n")
	for _, kv := range c.settings() {
		switch kv[0] {
		case "requirepass", "masterauth":
			if c.Password != "" {
				fmt.Fprintf(&b, "%s %s\n", kv[0], quote(kv[1]))
			}
		case "save":
			if kv[1] == "" {
				b.WriteString("save \"\"\n")
			} else {
				fmt.Fprintf(&b, "save %s\n", kv[1]) // pairs of plain numbers
			}
		default:
			fmt.Fprintf(&b, "%s %s\n", kv[0], kv[1])
		}
	}
	return b.Bytes()
}

// clusterComment carries the instance's cluster label in the file, where
// Redis ignores it and parseConf reads it back.
const clusterComment = "# r2m-cluster "

// sanitize keeps a label on one comment line.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// quote encodes s as a double-quoted Redis config argument. Redis's parser
// (sdssplitargs) understands \xHH inside double quotes, so every byte that
// is not a plain printable character is written that way; a password can
// hold anything.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// splitArgs splits one config line the way Redis does, for what the agent
// writes: bare words, and double-quoted strings with \xHH or \c escapes.
func splitArgs(line string) ([]string, error) {
	var args []string
	i := 0
	for {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i == len(line) {
			return args, nil
		}
		if line[i] != '"' {
			j := i
			for j < len(line) && line[j] != ' ' && line[j] != '\t' {
				j++
			}
			args = append(args, line[i:j])
			i = j
			continue
		}
		var b strings.Builder
		for i++; ; {
			if i >= len(line) {
				return nil, errors.New("unterminated quote")
			}
			c := line[i]
			if c == '"' {
				i++
				if i < len(line) && line[i] != ' ' && line[i] != '\t' {
					return nil, errors.New("closing quote not followed by a space")
				}
				break
			}
			if c == '\\' && i+3 < len(line) && line[i+1] == 'x' {
				v, err := strconv.ParseUint(line[i+2:i+4], 16, 8)
				if err != nil {
					return nil, errors.New("bad \\x escape")
				}
				b.WriteByte(byte(v))
				i += 4
				continue
			}
			if c == '\\' && i+1 < len(line) {
				i++
				c = line[i]
				switch c {
				case 'n':
					c = '\n'
				case 'r':
					c = '\r'
				case 't':
					c = '\t'
				case 'b':
					c = '\b'
				case 'a':
					c = '\a'
				}
			}
			b.WriteByte(c)
			i++
		}
		args = append(args, b.String())
	}
}

// parseConf reads back a redis.conf the agent wrote. It fails on anything
// it does not recognise, and the caller then rewrites the file.
func parseConf(data []byte) (redisConf, error) {
	var c redisConf
	var save, aof string
	for n, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, clusterComment); ok {
			if args, err := splitArgs(rest); err == nil && len(args) == 1 {
				c.Cluster = args[0]
			}
			continue
		}
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		args, err := splitArgs(line)
		if err != nil || len(args) < 2 {
			return c, fmt.Errorf("line %d: not a directive the agent writes", n+1)
		}
		v := args[1]
		switch args[0] {
		case "port":
			c.Port, err = strconv.Atoi(v)
		case "bind":
			c.Bind = v
		case "dir":
			c.Dir = v
		case "cluster-node-timeout":
			var ms int64
			ms, err = strconv.ParseInt(v, 10, 64)
			c.NodeTimeout = time.Duration(ms) * time.Millisecond
		case "maxmemory":
			c.MaxMemory, err = strconv.ParseInt(v, 10, 64)
		case "save":
			save = strings.Join(args[1:], " ")
		case "appendonly":
			aof = v
		case "requirepass":
			c.Password = v
		}
		if err != nil {
			return c, fmt.Errorf("line %d: %s: %w", n+1, args[0], err)
		}
	}
	switch {
	case aof == "yes":
		c.Persistence = "aof"
	case save == rdbSave:
		c.Persistence = "rdb"
	default:
		c.Persistence = "none"
	}
	if c.Port == 0 || c.Dir == "" {
		return c, fmt.Errorf("no port or dir directive")
	}
	return c, nil
}

// writeFileAtomic replaces path with data (mode perm) so that a reader
// never sees half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
