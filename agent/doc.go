// Package agent is R2M's host agent (`r2m agent`): it runs the redis-server
// instances that the control plane wants on one host, and tells the control
// plane what runs.
//
//	a, err := agent.New(agent.Options{
//		Host: "host-a", BindAddr: "10.0.0.5", DataDir: "/var/lib/r2m",
//		Coordinator: c, // a *coord.Coordinator; the agent does not close it
//		Logger:      logger,
//	})
//	if err != nil { … }
//	err = a.Run(ctx) // until ctx ends
//	c.Close()
//
// # What it does
//
// Run registers the host: the persistent record /agents/{host} (address,
// capacity) and the ephemeral /agents/{host}/live, which exists exactly
// while an agent for the host has a coordinator session; after a session
// expiry it is created again. Run watches /agents/{host}/desired and
// reconciles, level-triggered: for each desired instance it writes
// DataDir/redis-{port}/redis.conf (mode 0600; cluster mode, the password
// from the credentials of the instance's PasswordFrom cluster, maxmemory,
// persistence), starts redis-server, probes it (process alive, PING), and
// restarts it with exponential backoff when it dies. Instances no longer
// desired are stopped (SIGTERM, then SIGKILL after StopTimeout) and their
// directories removed. Changes to a running instance's settings are applied
// with CONFIG SET, without a restart. The actual state goes to
// /agents/{host}/actual (compare-and-set) whenever it changes and every
// ReportInterval.
//
// # Adoption
//
// Instances run in their own session, so they outlive the agent: when Run
// returns (or the agent crashes), they keep serving. A new agent with the
// same DataDir adopts them instead of starting duplicates: it identifies an
// instance's process by the pidfile in its directory, checked against /proc
// (working directory, command line, start time), or failing that by a scan
// of /proc. Directories of instances that are no longer desired (removed
// while no agent ran) are stopped and removed: no duplicates, no orphans.
// Options.StopOnExit, or [Agent.StopAll], stops everything instead, for
// `r2m up`.
//
// # Outages
//
// Supervision never waits for the coordinator. During an outage the agent
// keeps its instances running and restarts crashed ones on the last desired
// state it saw (a copy is kept in DataDir/desired.json for an agent that
// restarts meanwhile); reports and registration resume when the
// coordinator returns. A desired record that does not exist changes
// nothing: an empty instance list is how the control plane stops them all.
//
// The package has no goroutines of its own outside Run: Run starts them and
// waits for every one before it returns.
package agent
