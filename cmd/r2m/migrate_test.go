package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/r2m-go/r2m/internal/testenv"
)

// TestMigrateCommands: r2m migrate copies a password-protected standalone
// Redis into an adopted cluster (the dry run warns about the 1 MiB default
// backlog), r2m migrate status shows the link, r2m migrate verify finds the
// two equal in full and sampled, and reports a key changed afterwards.
func TestMigrateCommands(t *testing.T) {
	rc := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3, Password: "dst-pw"})
	src := testenv.StartRedis(t, testenv.RedisOptions{Password: "src-pw"})
	e := startCLIEnv(t)
	if out, err := e.run(t, "dst-pw\n", "cluster", "adopt", "dst", "--seed", rc.Nodes[0].Addr, "--password-stdin", "--wait"); err != nil {
		t.Fatalf("adopt:\n%s\n%v", out, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sc := src.Client(t)
	for i := range 300 {
		if err := sc.Set(ctx, "k:"+strconv.Itoa(i), i, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	from := "redis://:src-pw@" + src.Addr
	if _, err := e.run(t, "", "migrate", "--to", "dst"); err == nil || !strings.Contains(err.Error(), "exactly one of --from") {
		t.Fatalf("migrate without a source: %v", err)
	}
	out, err := e.run(t, "", "migrate", "--from", from, "--to", "dst", "--link", "cli1", "--dry-run")
	if err != nil || !strings.Contains(out, "dry run: migrate of dst") || !strings.Contains(out, "WARNING") || !strings.Contains(out, "repl-backlog-size") {
		t.Fatalf("migrate --dry-run:\n%s\n%v", out, err)
	}
	if strings.Contains(out, "src-pw") {
		t.Fatalf("the plan shows the source password:\n%s", out)
	}
	out, err = e.run(t, "", "migrate", "--from", from, "--to", "dst", "--link", "cli1", "--wait")
	if err != nil || !strings.Contains(out, "succeeded") {
		t.Fatalf("migrate --wait:\n%s\n%v", out, err)
	}
	out, err = e.run(t, "", "migrate", "status", "cli1")
	if err != nil || !strings.Contains(out, "cli1") || !strings.Contains(out, "standalone") || !strings.Contains(out, "stopped") {
		t.Fatalf("migrate status:\n%s\n%v", out, err)
	}
	out, err = e.run(t, "", "migrate", "verify", "--from", from, "--to", "dst")
	if err != nil || !strings.Contains(out, "checked 300 keys") || !strings.Contains(out, "equal") {
		t.Fatalf("migrate verify:\n%s\n%v", out, err)
	}
	out, err = e.run(t, "", "migrate", "verify", "--from", from, "--to-url", "redis://:dst-pw@"+rc.Nodes[0].Addr, "--sample", "50")
	if err != nil || !strings.Contains(out, "equal") {
		t.Fatalf("migrate verify --sample:\n%s\n%v", out, err)
	}
	// The link has stopped: a change on the source is a difference.
	if err := sc.Set(ctx, "k:7", "changed", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	out, err = e.run(t, "", "migrate", "verify", "--from", from, "--to", "dst")
	if err == nil || !strings.Contains(out, `content "k:7"`) {
		t.Fatalf("migrate verify after a change:\n%s\n%v", out, err)
	}
	out, err = e.run(t, "", "migrate", "delete", "cli1")
	if err != nil || !strings.Contains(out, "link cli1 deleted") {
		t.Fatalf("migrate delete:\n%s\n%v", out, err)
	}
	if out, err = e.run(t, "", "migrate", "delete", "cli1"); err == nil || !strings.Contains(err.Error(), "no link") {
		t.Fatalf("migrate delete of a deleted link:\n%s\n%v", out, err)
	}

	// cleanup removes one worker link's checkpoint keys, in every slot,
	// and nothing else.
	tc := rc.Client(t)
	mine := []string{"__r2m_ck:{a}:w1:standalone", "__r2m_ck:{b}:w1:standalone", "__r2m_ck:{c}:w1:0-5460"}
	others := []string{"__r2m_ck:{a}:w2:standalone", "__r2m_ck:{a}:w10:standalone", "ck:{a}:w1:x"}
	for _, k := range append(append([]string{}, mine...), others...) {
		if err := tc.Set(ctx, k, "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	out, err = e.run(t, "", "migrate", "cleanup", "--to-url", "redis://:dst-pw@"+rc.Nodes[0].Addr, "--link", "w1")
	if err != nil || !strings.Contains(out, "removed 3 checkpoint keys of link w1") {
		t.Fatalf("migrate cleanup:\n%s\n%v", out, err)
	}
	for _, k := range mine {
		if n, err := tc.Exists(ctx, k).Result(); err != nil || n != 0 {
			t.Errorf("%s after cleanup: exists %d, %v", k, n, err)
		}
	}
	for _, k := range others {
		if n, err := tc.Exists(ctx, k).Result(); err != nil || n != 1 {
			t.Errorf("%s, not link w1's, after cleanup: exists %d, %v", k, n, err)
		}
	}
	if _, err := e.run(t, "", "migrate", "cleanup", "--to-url", "redis://:dst-pw@"+rc.Nodes[0].Addr, "--link", "bad/name"); err == nil {
		t.Error("cleanup accepted an invalid link name")
	}
}
