package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/client"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/meta"
)

// TestUpFromFreshDataDir runs the README's first command the way a
// newcomer would: from an empty data dir, then Ctrl-C, then again.
func TestUpFromFreshDataDir(t *testing.T) {
	dir := t.TempDir()
	args := []string{"up", "--data-dir", dir, "--http", freeAddr(t), "--etcd-addr", freeAddr(t), "--port-base", testPortBase(), "--log-level", "warn"}
	up := startR2M(t, args...)
	up.waitOutput(t, "Press Ctrl-C", 90*time.Second)
	out := up.output()
	console, coordURL, tokPath := field(out, "console"), field(out, "coordinator"), field(out, "admin token")
	if console == "" || coordURL == "" || tokPath == "" || !strings.Contains(out, "client.New(ctx, client.Options{Coordinator:") {
		t.Fatalf("r2m up banner lacks the console URL, coordinator URL, token path or Go example:\n%s", out)
	}
	t.Logf("banner:\n%s", out[strings.Index(out, "R2M is up"):])

	// The console answers.
	resp, err := http.Get(console + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s/healthz: %v %v", console, resp, err)
	}
	resp.Body.Close()
	tok, err := os.ReadFile(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tok))
	// The demo cluster is clean by R2M's check (exit status 0).
	if out, err := runCLI(t, "cluster", "check", "demo", "--server", console, "--token", token); err != nil {
		t.Fatalf("r2m cluster check demo: %v\n%s", err, out)
	}

	// With the printed coordinator URL, an R2M Go client finds the demo app
	// by name, registers, and writes; the CLI lists it among the live
	// clients.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(ctx, client.Options{Coordinator: coordURL, App: "demo", Name: "up-test"})
	if err != nil {
		t.Fatalf("client.New with the printed coordinator URL %s: %v", coordURL, err)
	}
	if err := c.Do(ctx, c.B().Set().Key("survives").Value("restart").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, "clients", "demo", "--server", console, "--token", token); err != nil || !strings.Contains(out, "up-test") {
		t.Fatalf("r2m clients demo does not list the client: %v\n%s", err, out)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("client Close: %v", err)
	}
	co, err := coord.Open(ctx, coordURL)
	if err != nil {
		t.Fatalf("open the printed coordinator URL %s: %v", coordURL, err)
	}
	st := meta.NewStore(co)
	topo, _, err := st.Topology("demo").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := st.Clients("demo").Names(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("after Close the demo app's clients are %v, %v; want none", ids, err)
	}
	if err := co.Close(); err != nil {
		t.Fatal(err)
	}

	// Ctrl-C stops everything, Redis included.
	if err := up.interrupt(t); err != nil {
		t.Fatalf("r2m up after SIGINT: %v\n%s", err, up.output())
	}
	for _, n := range topo.Nodes {
		if conn, err := (&net.Dialer{Timeout: time.Second}).Dial("tcp", n.Addr); err == nil {
			conn.Close()
			t.Fatalf("redis %s still answers after r2m up stopped", n.Addr)
		}
	}

	// The next r2m up brings the same cluster back with its data.
	again := startR2M(t, args...)
	again.waitOutput(t, "Press Ctrl-C", 90*time.Second)
	c, err = client.New(ctx, client.Options{Coordinator: coordURL, App: "demo", Name: "up-test"})
	if err != nil {
		t.Fatalf("client.New after the second r2m up: %v", err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}()
	if v, err := c.Do(ctx, c.B().Get().Key("survives").Build()).ToString(); err != nil || v != "restart" {
		t.Fatalf("after a second r2m up, GET survives = %q, %v", v, err)
	}
}
