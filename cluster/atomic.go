package cluster

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// ServerVersion identifies the server software of a node.
type ServerVersion struct {
	// Name is "redis" or "valkey".
	Name string
	// Major, Minor, Patch of the server's own version (for Valkey its
	// valkey_version, not the redis_version it reports for compatibility).
	Major, Minor, Patch int
}

func (v ServerVersion) String() string {
	return fmt.Sprintf("%s %d.%d.%d", v.Name, v.Major, v.Minor, v.Patch)
}

// atLeast reports whether v >= major.minor.
func (v ServerVersion) atLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// AtomicMigration names a server-side slot migration mechanism.
type AtomicMigration string

// Slot migration mechanisms.
const (
	// MigrationClassic: SETSLOT IMPORTING/MIGRATING, GETKEYSINSLOT and
	// MIGRATE driven by the engine (every Redis Cluster version).
	MigrationClassic AtomicMigration = "classic"
	// MigrationRedisASM: Redis >= 8.4 CLUSTER MIGRATION IMPORT, run on the
	// target.
	MigrationRedisASM AtomicMigration = "redis-cluster-migration"
	// MigrationValkeyASM: Valkey >= 9.0 CLUSTER MIGRATESLOTS, run on the
	// source.
	MigrationValkeyASM AtomicMigration = "valkey-migrateslots"
)

// ParseServerVersion reads the server name and version from the text of
// INFO server. Valkey reports server_name:valkey and valkey_version; Redis
// reports redis_version only.
func ParseServerVersion(infoServer string) (ServerVersion, error) {
	info := parseInfo(infoServer)
	v := ServerVersion{Name: "redis"}
	ver := info["redis_version"]
	if info["server_name"] == "valkey" || info["valkey_version"] != "" {
		v.Name = "valkey"
		ver = info["valkey_version"]
	}
	if ver == "" {
		return v, fmt.Errorf("cluster: INFO server has no version field")
	}
	parts := strings.SplitN(ver, ".", 3)
	nums := []*int{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		if j := strings.IndexFunc(p, func(r rune) bool { return r < '0' || r > '9' }); j >= 0 {
			p = p[:j] // "0-rc1" -> "0"
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return v, fmt.Errorf("cluster: version %q: %w", ver, err)
		}
		*nums[i] = n
	}
	return v, nil
}

// Migration returns the best slot migration mechanism the version offers.
func (v ServerVersion) Migration() AtomicMigration {
	switch {
	case v.Name == "valkey" && v.atLeast(9, 0):
		return MigrationValkeyASM
	case v.Name == "redis" && v.atLeast(8, 4):
		return MigrationRedisASM
	default:
		return MigrationClassic
	}
}

// pairMigration picks the mechanism for a move between two nodes: a
// server-side one only when both ends offer the same.
func pairMigration(src, dst ServerVersion) AtomicMigration {
	if m := src.Migration(); m == dst.Migration() {
		return m
	}
	return MigrationClassic
}

// atomicCommand builds the command that starts a server-side migration of
// ranges from the source to the target with id dstID, and says on which end
// (source or target) it must run.
func atomicCommand(m AtomicMigration, ranges []SlotRange, dstID string) (args []string, onTarget bool) {
	switch m {
	case MigrationRedisASM:
		args = []string{"CLUSTER", "MIGRATION", "IMPORT"}
		for _, r := range ranges {
			args = append(args, strconv.Itoa(r.Start), strconv.Itoa(r.End))
		}
		return args, true
	case MigrationValkeyASM:
		args = []string{"CLUSTER", "MIGRATESLOTS", "SLOTSRANGE"}
		for _, r := range ranges {
			args = append(args, strconv.Itoa(r.Start), strconv.Itoa(r.End))
		}
		return append(args, "NODE", dstID), false
	}
	return nil, false
}

// serverVersion asks a node for INFO server.
func (e *Engine) serverVersion(ctx context.Context, addr string) (ServerVersion, error) {
	text, err := e.str(ctx, addr, "INFO server", "INFO", "server")
	if err != nil {
		return ServerVersion{}, err
	}
	v, err := ParseServerVersion(text)
	if err != nil {
		return v, errNode(addr, "INFO server", err)
	}
	return v, nil
}

// DetectMigration reports which slot migration mechanism a move from src to
// dst (addresses) would use.
func (e *Engine) DetectMigration(ctx context.Context, src, dst string) (AtomicMigration, error) {
	sv, err := e.serverVersion(ctx, src)
	if err != nil {
		return MigrationClassic, err
	}
	dv, err := e.serverVersion(ctx, dst)
	if err != nil {
		return MigrationClassic, err
	}
	return pairMigration(sv, dv), nil
}
