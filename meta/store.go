package meta

import "github.com/r2m-go/r2m/coord"

// Store gives typed access to the records of one coordinator.
type Store struct {
	c *coord.Coordinator
}

// NewStore returns a Store over c. It does not own c: closing c is the
// caller's business.
func NewStore(c *coord.Coordinator) *Store { return &Store{c: c} }

// Coordinator returns the underlying coordinator.
func (s *Store) Coordinator() *coord.Coordinator { return s.c }

func (s *Store) dir(path string, err error) Dir { return Dir{c: s.c, path: path, err: err} }

// Apps is /apps.
func (s *Store) Apps() Dir { return s.dir(AppsDir, nil) }

// App is /apps/{name}.
func (s *Store) App(name string) Ref[App] {
	p, err := AppPath(name)
	return newRef[App](s.c, AppSchema, p, err)
}

// Clients is /apps/{app}/clients.
func (s *Store) Clients(app string) Dir { return s.dir(ClientsDir(app)) }

// Client is /apps/{app}/clients/{id}.
func (s *Store) Client(app, id string) Ref[Client] {
	p, err := ClientPath(app, id)
	return newRef[Client](s.c, ClientSchema, p, err)
}

// Clusters is /clusters.
func (s *Store) Clusters() Dir { return s.dir(ClustersDir, nil) }

// Cluster is /clusters/{name}.
func (s *Store) Cluster(name string) Ref[Cluster] {
	p, err := ClusterPath(name)
	return newRef[Cluster](s.c, ClusterSchema, p, err)
}

// Topology is /clusters/{name}/topology.
func (s *Store) Topology(cluster string) Ref[Topology] {
	p, err := TopologyPath(cluster)
	return newRef[Topology](s.c, TopologySchema, p, err)
}

// Credentials is /clusters/{name}/credentials.
func (s *Store) Credentials(cluster string) Ref[Credentials] {
	p, err := CredentialsPath(cluster)
	return newRef[Credentials](s.c, CredentialsSchema, p, err)
}

// Agents is /agents.
func (s *Store) Agents() Dir { return s.dir(AgentsDir, nil) }

// Agent is /agents/{host}.
func (s *Store) Agent(host string) Ref[Agent] {
	p, err := AgentPath(host)
	return newRef[Agent](s.c, AgentSchema, p, err)
}

// AgentLive is /agents/{host}/live.
func (s *Store) AgentLive(host string) Ref[AgentLive] {
	p, err := AgentLivePath(host)
	return newRef[AgentLive](s.c, AgentLiveSchema, p, err)
}

// Desired is /agents/{host}/desired.
func (s *Store) Desired(host string) Ref[DesiredState] {
	p, err := DesiredPath(host)
	return newRef[DesiredState](s.c, DesiredStateSchema, p, err)
}

// Actual is /agents/{host}/actual.
func (s *Store) Actual(host string) Ref[ActualState] {
	p, err := ActualPath(host)
	return newRef[ActualState](s.c, ActualStateSchema, p, err)
}

// Ops is /ops.
func (s *Store) Ops() Dir { return s.dir(OpsDir, nil) }

// Op is /ops/{id}.
func (s *Store) Op(id string) Ref[Operation] {
	p, err := OpPath(id)
	return newRef[Operation](s.c, OperationSchema, p, err)
}

// Leader is /manager/leader.
func (s *Store) Leader() Ref[Leader] {
	return newRef[Leader](s.c, LeaderSchema, LeaderPath, nil)
}

// Users is /users.
func (s *Store) Users() Dir { return s.dir(UsersDir, nil) }

// User is /users/{name}.
func (s *Store) User(name string) Ref[User] {
	p, err := UserPath(name)
	return newRef[User](s.c, UserSchema, p, err)
}

// Tokens is /users/{name}/tokens.
func (s *Store) Tokens(user string) Dir { return s.dir(TokensDir(user)) }

// Token is /users/{name}/tokens/{id}.
func (s *Store) Token(user, id string) Ref[Token] {
	p, err := TokenPath(user, id)
	return newRef[Token](s.c, TokenSchema, p, err)
}

// Audit is /audit.
func (s *Store) Audit() Dir { return s.dir(AuditDir, nil) }

// AuditEntry is /audit/{id}.
func (s *Store) AuditEntry(id string) Ref[AuditEntry] {
	p, err := AuditPath(id)
	return newRef[AuditEntry](s.c, AuditSchema, p, err)
}

// Secret is /manager/secret.
func (s *Store) Secret() Ref[Secret] {
	return newRef[Secret](s.c, SecretSchema, SecretPath, nil)
}

// ClusterLock is /clusters/{name}/op.
func (s *Store) ClusterLock(cluster string) Ref[ClusterLock] {
	p, err := ClusterOpPath(cluster)
	return newRef[ClusterLock](s.c, ClusterLockSchema, p, err)
}

// SlotMoves is /ops/{id}/slots.
func (s *Store) SlotMoves(op string) Dir { return s.dir(SlotMovesDir(op)) }

// SlotMove is /ops/{id}/slots/{slot}.
func (s *Store) SlotMove(op string, slot int) Ref[SlotMove] {
	p, err := SlotMovePath(op, slot)
	return newRef[SlotMove](s.c, SlotMoveSchema, p, err)
}
