// Package meta is the contract between R2M's processes: the records they
// keep in the coordinator, and the paths they keep them at. The control
// plane writes apps, clusters, topologies, desired agent state and
// operations; agents write their actual state and liveness; clients register
// themselves and follow their app and its cluster's topology. Everything
// they share goes through the types and paths in this package, so that the
// layout is written down in one place (docs/coordinator-layout.md describes
// it for operators with zkCli.sh or etcdctl).
//
// Every record is JSON with a "v" field, the schema version of its type. A
// reader refuses a record written with a newer schema than it knows, instead
// of silently dropping fields it does not understand. Every update is a
// compare-and-set on the node's version ([Ref.Set], [Ref.Update]), so a
// writer working from a stale read is fenced out.
//
//	st := meta.NewStore(c) // c is a *coord.Coordinator
//	app, err := st.App("orders").Update(ctx, func(a *meta.App) error {
//		a.ActiveCluster = "orders-dc2"
//		return nil
//	})
//
// meta imports coord and the standard library only. It must never import
// client, cluster, manager, agent or monitor.
package meta
