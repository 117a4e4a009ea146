package meta

import (
	"errors"
	"fmt"
	"regexp"
)

// ErrInvalidName is wrapped by every error about an unusable name.
var ErrInvalidName = errors.New("meta: invalid name")

// namePattern is the rule for every name that becomes a path segment: app,
// cluster, host, user, operation and client IDs. It keeps names safe in
// paths, URLs, shell commands and file names on both coordinators.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidateName checks a name of the given kind ("app", "cluster", …): 1–128
// characters, letters, digits, '.', '_' and '-', starting with a letter or
// digit.
func ValidateName(kind, name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w: %s name %q: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalidName, kind, name)
	}
	return nil
}

// The layout below the coordinator root. Directory paths are constants;
// record paths are built by the functions below, which validate names.
const (
	AppsDir     = "/apps"
	ClustersDir = "/clusters"
	AgentsDir   = "/agents"
	OpsDir      = "/ops"
	UsersDir    = "/users"
	AuditDir    = "/audit"
	// LeaderPath is the ephemeral record of the leading r2m server.
	LeaderPath = "/manager/leader"
	// SecretPath holds the key that signs console session cookies, shared
	// by every r2m server.
	SecretPath = "/manager/secret"
)

func join(kind, dir, name string, rest ...string) (string, error) {
	if err := ValidateName(kind, name); err != nil {
		return "", err
	}
	p := dir + "/" + name
	for _, r := range rest {
		p += "/" + r
	}
	return p, nil
}

// AppPath is /apps/{app}: the app record clients watch.
func AppPath(app string) (string, error) { return join("app", AppsDir, app) }

// ClientsDir is /apps/{app}/clients: one ephemeral child per live client.
func ClientsDir(app string) (string, error) { return join("app", AppsDir, app, "clients") }

// ClientPath is /apps/{app}/clients/{id}.
func ClientPath(app, id string) (string, error) {
	dir, err := ClientsDir(app)
	if err != nil {
		return "", err
	}
	if err := ValidateName("client id", id); err != nil {
		return "", err
	}
	return dir + "/" + id, nil
}

// ClusterPath is /clusters/{cluster}.
func ClusterPath(cluster string) (string, error) { return join("cluster", ClustersDir, cluster) }

// TopologyPath is /clusters/{cluster}/topology.
func TopologyPath(cluster string) (string, error) {
	return join("cluster", ClustersDir, cluster, "topology")
}

// CredentialsPath is /clusters/{cluster}/credentials, the cluster's Redis
// password, kept apart from the cluster record so that listing clusters
// never reads it.
func CredentialsPath(cluster string) (string, error) {
	return join("cluster", ClustersDir, cluster, "credentials")
}

// ClusterOpPath is /clusters/{cluster}/op: the one operation allowed to
// run on the cluster. Creating it is how an operation claims the cluster.
func ClusterOpPath(cluster string) (string, error) {
	return join("cluster", ClustersDir, cluster, "op")
}

// AgentPath is /agents/{host}: the agent's persistent host record.
func AgentPath(host string) (string, error) { return join("host", AgentsDir, host) }

// AgentLivePath is /agents/{host}/live: ephemeral while the agent runs.
func AgentLivePath(host string) (string, error) { return join("host", AgentsDir, host, "live") }

// DesiredPath is /agents/{host}/desired, written by the manager.
func DesiredPath(host string) (string, error) { return join("host", AgentsDir, host, "desired") }

// ActualPath is /agents/{host}/actual, written by the agent.
func ActualPath(host string) (string, error) { return join("host", AgentsDir, host, "actual") }

// OpPath is /ops/{id}.
func OpPath(id string) (string, error) { return join("operation id", OpsDir, id) }

// SlotMovesDir is /ops/{id}/slots: the persisted state of each slot an
// operation moves, one child per slot, so a new leader can finish a slot
// that was half moved.
func SlotMovesDir(op string) (string, error) { return join("operation id", OpsDir, op, "slots") }

// SlotMovePath is /ops/{id}/slots/{slot}.
func SlotMovePath(op string, slot int) (string, error) {
	dir, err := SlotMovesDir(op)
	if err != nil {
		return "", err
	}
	if slot < 0 || slot > 16383 {
		return "", fmt.Errorf("%w: slot %d: want 0-16383", ErrInvalidName, slot)
	}
	return fmt.Sprintf("%s/%d", dir, slot), nil
}

// UserPath is /users/{name}.
func UserPath(name string) (string, error) { return join("user", UsersDir, name) }

// TokensDir is /users/{name}/tokens: the user's API tokens.
func TokensDir(user string) (string, error) { return join("user", UsersDir, user, "tokens") }

// TokenPath is /users/{name}/tokens/{id}.
func TokenPath(user, id string) (string, error) {
	dir, err := TokensDir(user)
	if err != nil {
		return "", err
	}
	if err := ValidateName("token id", id); err != nil {
		return "", err
	}
	return dir + "/" + id, nil
}

// AuditPath is /audit/{id}.
func AuditPath(id string) (string, error) { return join("audit id", AuditDir, id) }
