package embedetcd

import (
	"context"
	"testing"
	"time"

	"github.com/r2m-go/r2m/coord"
	_ "github.com/r2m-go/r2m/coord/etcd"
	"github.com/r2m-go/r2m/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestRestartKeepsData starts a member, writes through coord, stops it,
// starts it again from the same directory and reads the data back.
func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Start(Config{Dir: dir, ClientAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := coord.Open(ctx, s.URL("/r2m"))
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	if err := c.Create(ctx, "/apps/demo", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	s.Close()
	s.Close() // safe twice

	s2, err := Start(Config{Dir: dir, ClientAddr: addr})
	if err != nil {
		t.Fatalf("restart from the same directory: %v", err)
	}
	defer s2.Close()
	c2, err := coord.Open(ctx, s2.URL("/r2m"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	n, err := c2.Get(ctx, "/apps/demo")
	if err != nil || string(n.Data) != "kept" {
		t.Fatalf("after restart Get = %v, %v; want the data written before", n, err)
	}
}
