package etcd_test

import (
	"testing"

	"github.com/r2m-go/r2m/coord/coordtest"
	_ "github.com/r2m-go/r2m/coord/etcd"
	"github.com/r2m-go/r2m/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// faultServer is a private embedded etcd behind a proxy.
type faultServer struct {
	*testenv.Etcd
	proxy *testenv.Proxy
}

func (f faultServer) URL(root string) string { return "etcd://" + f.proxy.Addr + root }

func (f faultServer) DirectURL(root string) string { return f.Etcd.URL(root) }

func (f faultServer) Partition() { f.proxy.Block() }

func (f faultServer) Heal() { f.proxy.Unblock() }

var harness = coordtest.Harness{
	Shared: func(t *testing.T) coordtest.Server { return testenv.SharedEtcd(t) },
	Fault: func(t *testing.T) coordtest.FaultServer {
		e := testenv.StartEtcd(t)
		return faultServer{Etcd: e, proxy: testenv.StartProxy(t, e.Addr)}
	},
}

// TestConformance runs the coord conformance suite against a real embedded
// etcd.
func TestConformance(t *testing.T) { coordtest.Run(t, harness) }
