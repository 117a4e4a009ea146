package main

import (
	"strings"
	"testing"

	"github.com/r2m-go/r2m/internal/testenv"
)

func TestClusterAndOpCommands(t *testing.T) {
	rc := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3, Password: "cli-pw"})
	e := startCLIEnv(t)
	out, err := e.run(t, "cli-pw\n", "cluster", "adopt", "shop", "--seed", rc.Nodes[0].Addr, "--password-stdin", "--dry-run")
	if err != nil || !strings.Contains(out, "dry run: adopt of shop") || !strings.Contains(out, "3 masters, 0 replicas") {
		t.Fatalf("adopt --dry-run:\n%s\n%v", out, err)
	}
	out, err = e.run(t, "cli-pw\n", "cluster", "adopt", "shop", "--seed", rc.Nodes[0].Addr, "--password-stdin", "--wait")
	if err != nil || !strings.Contains(out, "succeeded") || !strings.Contains(out, "clean") {
		t.Fatalf("adopt --wait:\n%s\n%v", out, err)
	}
	out, err = e.run(t, "", "cluster", "list")
	if err != nil || !strings.Contains(out, "shop") || !strings.Contains(out, "active") {
		t.Fatalf("cluster list:\n%s\n%v", out, err)
	}
	out, err = e.run(t, "", "cluster", "check", "shop")
	if err != nil || !strings.Contains(out, "is clean") {
		t.Fatalf("cluster check:\n%s\n%v", out, err)
	}
	out, err = e.run(t, "", "cluster", "credentials", "shop")
	if err != nil || out != "cli-pw\n" {
		t.Fatalf("cluster credentials printed %q, %v; want the password alone", out, err)
	}
	m0, m2 := rc.Masters()[0].Addr, rc.Masters()[2].Addr
	out, err = e.run(t, "", "cluster", "reshard", "shop", "--from", m0, "--to", m2, "--slots", "10", "--dry-run")
	if err != nil || !strings.Contains(out, "move 10 slots") {
		t.Fatalf("reshard --dry-run:\n%s\n%v", out, err)
	}
	out, err = e.run(t, "", "cluster", "reshard", "shop", "--from", m0, "--to", m2, "--slots", "10", "--wait")
	if err != nil || !strings.Contains(out, "succeeded") {
		t.Fatalf("reshard --wait:\n%s\n%v", out, err)
	}
	out, err = e.run(t, "", "op", "list", "--cluster", "shop")
	if err != nil || strings.Count(out, "succeeded") != 2 {
		t.Fatalf("op list:\n%s\n%v", out, err)
	}
	if _, err := e.run(t, "", "cluster", "reshard", "shop", "--from", m0, "--to", m0, "--slots", "10"); err == nil || !strings.Contains(err.Error(), "two different masters") {
		t.Fatalf("reshard to itself: %v", err)
	}
	if _, err := e.run(t, "", "cluster", "rebalance", "shop", "--weight", "x"); err == nil || !strings.Contains(err.Error(), "NODE=WEIGHT") {
		t.Fatalf("rebalance with a bad weight: %v", err)
	}
	if _, err := e.run(t, "", "cluster", "check", "nope"); err == nil || !strings.Contains(err.Error(), "no cluster") {
		t.Fatalf("check of a missing cluster: %v", err)
	}
}
