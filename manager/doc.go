// Package manager is the R2M control plane behind "r2m server": the HTTP
// API, authentication and roles, the audit log, leader election among server
// instances, the operations engine that the leader runs, and the topology
// observer.
//
// Every server serves reads. Mutations are executed by the leader: a
// follower forwards them to the leader's address, which it learns from the
// ephemeral leader record. Leadership is that ephemeral record, so a leader
// that dies (even by kill -9) is replaced once its coordinator session ends;
// there is no lock to remove by hand.
//
// manager is wired together in cmd/r2m. It must not import client.
package manager
