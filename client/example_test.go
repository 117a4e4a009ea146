package client_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/r2m-go/r2m/client"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// The examples run against the package's real servers. exampleSetup plays
// the control plane: it writes an app "orders" whose active cluster is the
// shared Redis Cluster, and returns the coordinator URL.

// exampleTB lets the examples use testenv's shared servers, which need a
// testing.TB only to report a failure. Methods it does not override are
// never called by that code (the embedded nil interface would panic).
type exampleTB struct{ testing.TB }

func (exampleTB) Helper()                   {}
func (exampleTB) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (exampleTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (exampleTB) Errorf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (exampleTB) Cleanup(func())            {} // the shared servers stop with the package

func exampleSetup(cfg meta.ClientConfig) (coordinatorURL, app string) {
	tb := exampleTB{}
	var r [4]byte
	_, _ = rand.Read(r[:])
	url := backends[0].shared(tb)("/clientexample/" + hex.EncodeToString(r[:]))
	rc := sharedCluster(tb)
	co, err := coord.Open(context.Background(), url)
	if err != nil {
		panic(err)
	}
	defer co.Close()
	e := &env{t: tb, url: url, obs: co, st: meta.NewStore(co), app: "orders", cluster: "orders-1"}
	e.writeCluster(e.cluster, rc)
	if err := e.st.App(e.app).Create(context.Background(), &meta.App{Name: e.app, ActiveCluster: e.cluster, Client: cfg, ConfigVersion: 1}); err != nil {
		panic(err)
	}
	return url, e.app
}

func ExampleNew() {
	coordinatorURL, app := exampleSetup(meta.ClientConfig{}) // zk://127.0.0.1:…/clientexample/…
	ctx := context.Background()

	c, err := client.New(ctx, client.Options{
		Coordinator: coordinatorURL,
		App:         app,
		Name:        "example",
	})
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	err = c.Do(ctx, c.B().Set().Key("example:greeting").Value("hello").Build()).Error()
	if err != nil {
		fmt.Println("set:", err)
	}
	v, err := c.Do(ctx, c.B().Get().Key("example:greeting").Build()).ToString()
	fmt.Println(v, err)

	if err := c.Close(); err != nil {
		fmt.Println("close:", err) // Close reports what it could not clean up
	}
	// Output: hello <nil>
}

func ExampleClient_Compat() {
	coordinatorURL, app := exampleSetup(meta.ClientConfig{})
	ctx := context.Background()
	c, err := client.New(ctx, client.Options{Coordinator: coordinatorURL, App: app})
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	defer c.Close()

	// The go-redis-style API, for code moving over from go-redis.
	rc := c.Compat()
	key := "example:visits:" + c.ID()
	rc.Set(ctx, key, 41, time.Hour)
	n, err := rc.Incr(ctx, key).Result()
	fmt.Println(n, err)
	// Output: 42 <nil>
}

func ExampleClient_DoCache() {
	// The app config turns client-side caching on.
	coordinatorURL, app := exampleSetup(meta.ClientConfig{ClientCache: true})
	ctx := context.Background()
	c, err := client.New(ctx, client.Options{Coordinator: coordinatorURL, App: app})
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	defer c.Close()

	key := "example:config:" + c.ID()
	c.Do(ctx, c.B().Set().Key(key).Value("blue").Build())
	for range 2 {
		r := c.DoCache(ctx, c.B().Get().Key(key).Cache(), time.Minute)
		v, _ := r.ToString()
		fmt.Println(v, "from cache:", r.IsCacheHit())
	}
	// Output:
	// blue from cache: false
	// blue from cache: true
}

func ExampleOptions_onEvent() {
	coordinatorURL, app := exampleSetup(meta.ClientConfig{})
	events := make(chan client.Event, 16)
	c, err := client.New(context.Background(), client.Options{
		Coordinator: coordinatorURL,
		App:         app,
		// OnEvent runs on a goroutine of the client; it may even call Close.
		OnEvent: func(e client.Event) { events <- e },
	})
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	e := <-events
	fmt.Println(e.Type, "in cluster", e.Cluster)
	fmt.Println("close:", c.Close())
	e = <-events
	fmt.Println(e.Type, e.Err)
	// Output:
	// registered in cluster orders-1
	// close: <nil>
	// closed <nil>
}
