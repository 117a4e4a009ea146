package manager

import (
	"testing"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/internal/testenv"
)

// TestFollowerForwardsAndTakesOver runs two servers on one root: the
// follower forwards mutations to the leader, and takes over at once when the
// leader steps down.
func TestFollowerForwardsAndTakesOver(t *testing.T) {
	url := testenv_SharedEtcdURL(t)
	a := startLeader(t, url)
	b := startServer(t, url)
	ctx := ctxT(t)
	waitFor(t, "the follower to learn the leader", func() bool {
		h, err := b.client(t, "").Health(ctx)
		return err == nil && !h.IsLeader && h.Leader == a.ID()
	})
	// Both servers share the users: the admin token works on either.
	viaB := b.client(t, mustRead(t, AdminTokenPath(a.DataDir)))
	if _, err := viaB.CreateUser(ctx, api.NewUser{Name: "dave", Role: "viewer", Password: "dave's password"}); err != nil {
		t.Fatalf("mutation through the follower: %v", err)
	}
	if u, err := viaB.Users(ctx); err != nil || len(u) != 2 {
		t.Fatalf("users read through the follower = %v, %v", u, err)
	}
	if !a.IsLeader() || b.IsLeader() {
		t.Fatal("roles changed unexpectedly")
	}
	a.stop()
	waitFor(t, "the follower to take over", b.IsLeader)
	if _, err := viaB.CreateUser(ctx, api.NewUser{Name: "erin", Role: "viewer", Password: "erin's password"}); err != nil {
		t.Fatalf("mutation on the new leader: %v", err)
	}
}

// TestPartitionedLeaderIsReplaced cuts the leader off from the coordinator,
// as a kill -9 or a network partition would: it cannot remove its record, so
// the follower waits for the session to expire, then leads; the cut-off
// leader steps down on its own once its session timeout has passed.
func TestPartitionedLeaderIsReplaced(t *testing.T) {
	e := testenv.SharedEtcd(t)
	proxy := testenv.StartProxy(t, e.Addr)
	root := uniqueRoot()
	a := startLeader(t, "etcd://"+proxy.Addr+root)
	b := startServer(t, e.URL(root))
	oldSession := a.cfg.Coordinator.SessionID()
	proxy.Block()
	waitFor(t, "the follower to take over after the leader's session expired", b.IsLeader)
	waitFor(t, "the cut-off leader to step down", func() bool { return !a.IsLeader() })
	proxy.Unblock()
	// Back on the network, the old leader learns its session expired, gets
	// a new one, and follows.
	waitFor(t, "the old leader's new session", func() bool {
		id := a.cfg.Coordinator.SessionID()
		return id != "" && id != oldSession
	})
	if a.IsLeader() || !b.IsLeader() {
		t.Fatal("after the partition healed, the old leader leads again")
	}
}

func mustRead(t testing.TB, path string) string {
	t.Helper()
	b := mustReadBytes(t, path)
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return string(b)
}
