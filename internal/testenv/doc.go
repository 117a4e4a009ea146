// Package testenv starts the real servers that R2M's tests run against:
// standalone redis-server, Redis Clusters, ZooKeeper from the Debian package
// and an embedded etcd, each on loopback ports chosen free at run time.
//
// Every server is owned by something that stops it: per-test servers by
// t.Cleanup, per-package shared servers by [Main]. Child processes carry a
// marker in their environment and die with the test binary (PR_SET_PDEATHSIG),
// and [Main] fails the package if any marked process survives. When a test
// fails, the tail of each server's log is attached to it.
//
// A missing binary fails the test with the command that installs it. Tests
// never skip because a server is unavailable.
//
// testenv is imported only from _test.go files. It must never import the
// packages it helps to test (coord, meta, client, cluster, manager, ...): the
// harness has to stay independent of the code it judges.
package testenv
