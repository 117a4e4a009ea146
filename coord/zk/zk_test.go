package zk_test

import (
	"testing"

	"github.com/r2m-go/r2m/coord/coordtest"
	_ "github.com/r2m-go/r2m/coord/zk"
	"github.com/r2m-go/r2m/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// faultServer is a private ZooKeeper behind a proxy.
type faultServer struct {
	*testenv.ZooKeeper
	proxy *testenv.Proxy
}

func (f faultServer) URL(root string) string { return "zk://" + f.proxy.Addr + root }

func (f faultServer) DirectURL(root string) string { return f.ZooKeeper.URL(root) }

func (f faultServer) Partition() { f.proxy.Block() }

func (f faultServer) Heal() { f.proxy.Unblock() }

var harness = coordtest.Harness{
	Shared: func(t *testing.T) coordtest.Server { return testenv.SharedZooKeeper(t) },
	Fault: func(t *testing.T) coordtest.FaultServer {
		z := testenv.StartZooKeeper(t)
		return faultServer{ZooKeeper: z, proxy: testenv.StartProxy(t, z.Addr)}
	},
}

// TestConformance runs the coord conformance suite against a real
// ZooKeeper server.
func TestConformance(t *testing.T) { coordtest.Run(t, harness) }
