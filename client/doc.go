// Package client is the Go client of R2M. An application names a
// coordinator and an app; the client finds the app's active Redis Cluster in
// the coordinator, routes each command by its key's hash slot, follows
// topology and configuration changes live, and registers itself so that
// operators can see every live client.
//
// The data path is rueidis (github.com/redis/rueidis): concurrent commands
// are pipelined automatically onto one connection per node, and
// server-assisted client-side caching is available through DoCache. A
// [Client] offers rueidis's command methods itself, a rueidis.Client view for
// libraries that take one ([Client.Rueidis]), and the go-redis-style API of
// rueidiscompat for code moving over from go-redis ([Client.Compat]).
//
// # Usage
//
//	import "github.com/r2m-go/r2m/client" // speaks zk:// and etcd:// coordinators
//
//	func run(ctx context.Context) error {
//		c, err := client.New(ctx, client.Options{
//			Coordinator: "zk://zk1:2181,zk2:2181/r2m", // or etcd://…
//			App:         "orders",
//			Name:        "billing-job",
//			OnEvent: func(e client.Event) {
//				log.Printf("r2m: %v (cluster %s, epoch %d, config v%d)", e.Type, e.Cluster, e.Epoch, e.ConfigVersion)
//			},
//		})
//		if err != nil {
//			return err // nothing is left behind: no session, record or connection
//		}
//		defer func() {
//			if err := c.Close(); err != nil {
//				log.Printf("r2m: close: %v", err) // says what could not be cleaned up
//			}
//		}()
//
//		// Native API: rueidis commands, built with B().
//		if err := c.Do(ctx, c.B().Set().Key("order:1").Value("paid").Ex(time.Hour).Build()).Error(); err != nil {
//			return err
//		}
//		status, err := c.Do(ctx, c.B().Get().Key("order:1").Build()).ToString()
//		// Several commands in one round trip per node:
//		for _, r := range c.DoMulti(ctx,
//			c.B().Incr().Key("orders:count").Build(),
//			c.B().Sadd().Key("orders:paid").Member("1").Build(),
//		) {
//			if err := r.Error(); err != nil {
//				return err
//			}
//		}
//		// Client-side cache (when the app config turns it on): a hit costs
//		// no round trip, and Redis invalidates the entry when the key changes.
//		status, err = c.DoCache(ctx, c.B().Get().Key("order:1").Cache(), time.Minute).ToString()
//
//		// go-redis-style API, for code moving over from go-redis.
//		rc := c.Compat()
//		if err := rc.Set(ctx, "order:2", "new", 0).Err(); err != nil {
//			return err
//		}
//		n, err := rc.Incr(ctx, "orders:count").Result()
//
//		// A rueidis.Client, for libraries that take one.
//		var lib rueidis.Client = c.Rueidis()
//		_, _, _ = status, n, lib
//		return err
//	}
//
// # What New reads from the coordinator
//
// New reads the app record /apps/{app} (meta.App): its active cluster and
// its client config. From the cluster it reads /clusters/{cluster}
// (meta.Cluster), the password in /clusters/{cluster}/credentials when the
// cluster has one, and the topology /clusters/{cluster}/topology
// (meta.Topology), whose masters become rueidis's seed addresses. Redis is
// the authority on which node serves which slot: rueidis asks it (CLUSTER
// SLOTS) and follows MOVED and ASK. New then creates the registration
// record /apps/{app}/clients/{id} (meta.Client), ephemeral, and returns. If
// any step fails, or ctx ends, New undoes the steps before it.
//
// The app's client config (meta.ClientConfig) is applied live:
//
//	pool_size           rueidis BlockingPoolSize (connections per node for blocking commands)
//	dial_timeout        rueidis Dialer.Timeout
//	read_timeout,
//	write_timeout       rueidis ConnWriteTimeout (the larger of the two)
//	max_retries         retries of read-only commands after network errors; -1: none
//	read_from_replica   read-only commands go to replicas
//	client_cache        server-assisted client-side caching on (off by default)
//	client_cache_bytes  cache size per connection
//	heartbeat_interval  how often the registration's stats are refreshed
//
// rueidis takes its settings once, when it is built, so a change to any of
// them (all but heartbeat_interval) makes the client build a new inner
// rueidis client, swap it in atomically, and close the old one once the
// commands running on it have finished: no command fails because of a
// change. The same happens when the app switches to another cluster, or when
// the topology no longer lists any node the current inner client knows. A
// topology change that rueidis can follow (slots moved, a failover, nodes
// added or removed while some remain) needs nothing: the client notes the new
// epoch and lets redirects drive rueidis. Rebuilds wait a random time up to
// Options.ReloadJitter so that a change seen by every client at once does not
// make them all reconnect at once.
//
// # Events
//
// OnEvent, if set, receives [Event]s on a goroutine the client owns:
// registered, topology changed (with the epoch now used), config changed
// (with the config version now applied), session lost, session recovered,
// and closed (with Close's result). While the coordinator session is lost,
// commands keep working on the last topology; when a session expires, the
// client registers again on the new one by itself.
//
// # Closing
//
// Close is bounded (Options.CloseTimeout, 3s by default), idempotent, safe
// from many goroutines and from inside OnEvent, and takes no context. It
// returns nil only when the registration record is deleted and the
// coordinator has confirmed it, every Redis connection is closed, and every
// goroutine the client started has exited. Otherwise it returns every
// failure, joined, and logs it; when the coordinator could not be reached,
// the error wraps coord.ErrCloseUnconfirmed: the record is deleted when the
// session reconnects, or vanishes when it times out.
//
// All clients of a process that use the same coordinator URL share one
// coordinator session, and the records and watches they follow; the last
// one to close ends the session.
//
// # Leaks
//
// A Client that becomes unreachable without Close is found by the garbage
// collector (runtime.AddCleanup): the client logs, at error level, the
// file:line of the New call that created it, and closes itself. This catches
// the leak, but only at the next garbage collection and only if nothing else
// keeps the Client reachable — an OnEvent closure that refers to the Client
// does — so it is a safety net, not a substitute for Close. The console shows
// the same creation site for every registration.
package client
