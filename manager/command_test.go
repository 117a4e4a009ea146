package manager

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/r2m-go/r2m/api"
	"github.com/r2m-go/r2m/internal/testenv"
)

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`GET foo`, []string{"GET", "foo"}},
		{`  SET  "a b"  'c d' `, []string{"SET", "a b", "c d"}},
		{`SET k "line\nnext\x41\"q"`, []string{"SET", "k", "line\nnextA\"q"}},
		{`SET k 'it\'s \n'`, []string{"SET", "k", `it's \n`}},
		{`SET k ""`, []string{"SET", "k", ""}},
	} {
		got, err := splitCommand(tc.in)
		if err != nil || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`GET "open`, `GET "a"b`} {
		if _, err := splitCommand(bad); err == nil {
			t.Errorf("splitCommand(%q): want an error", bad)
		}
	}
}

func TestCommandConsole(t *testing.T) {
	rc := testenv.SharedRedisCluster(t, testenv.ClusterOptions{Masters: 3, Password: "cmd-pw"})
	ts := startLeader(t, testenv_SharedEtcdURL(t))
	ctx := ctxT(t)
	admin := ts.adminClient(t)
	op, _, err := admin.Adopt(ctx, api.AdoptParams{Name: "cmd", Seed: rc.Nodes[0].Addr, Password: "cmd-pw"}, false)
	if err != nil {
		t.Fatal(err)
	}
	waitOp(t, admin, op.ID)
	tokens := map[string]*api.Client{"admin": admin}
	for _, role := range []string{"viewer", "operator"} {
		if _, err := admin.CreateUser(ctx, api.NewUser{Name: "c-" + role, Role: role, Password: "a long password"}); err != nil {
			t.Fatal(err)
		}
		tok, err := admin.CreateToken(ctx, api.NewToken{User: "c-" + role})
		if err != nil {
			t.Fatal(err)
		}
		tokens[role] = ts.client(t, tok.Secret)
	}
	run := func(who, cmd string, confirm bool) (string, error) {
		t.Helper()
		res, err := tokens[who].Command(ctx, "cmd", cmd, confirm)
		if err != nil {
			return "", err
		}
		return res.Output, nil
	}
	for _, tc := range []struct {
		who, cmd string
		confirm  bool
		want     string // output, or an error status
	}{
		{"operator", `SET greeting "hello world"`, false, "OK\n"},
		{"viewer", `GET greeting`, false, "\"hello world\"\n"},
		{"viewer", `GET missing`, false, "(nil)\n"},
		{"operator", `RPUSH list a b c`, false, "(integer) 3\n"},
		{"viewer", `LRANGE list 0 -1`, false, "1) \"a\"\n2) \"b\"\n3) \"c\"\n"},
		{"viewer", `LRANGE greeting 0 -1`, false, "(error) WRONGTYPE"},
		{"viewer", `SET greeting x`, false, "403"},
		{"viewer", `FLUSHALL`, false, "403"},
		{"operator", `FLUSHALL`, false, "403"},
		{"operator", `CONFIG SET maxmemory 1`, false, "403"},
		{"viewer", `CONFIG GET requirepass`, false, "403"},
		{"operator", `CONFIG GET requirepass`, false, "403"},
		{"admin", `CONFIG GET maxmemory`, false, "maxmemory"},
		{"viewer", `CLUSTER INFO`, false, "\ncluster_slots_assigned:16384\n"},
		{"admin", `FLUSHALL`, false, "409"},
		{"operator", `MSET {a}1 x {b}2 y`, false, "400"},
		{"operator", `MSET {a}1 x {a}2 y`, false, "OK\n"},
		{"viewer", `NOSUCHCOMMAND`, false, "400"},
		{"viewer", `MONITOR`, false, "400"},
		{"viewer", `GET "unbalanced`, false, "400"},
	} {
		out, err := run(tc.who, tc.cmd, tc.confirm)
		switch {
		case len(tc.want) == 3 && tc.want[0] >= '4' && tc.want[0] <= '5' && tc.want != "OK\n":
			var e *api.Error
			if !errorAs(err, &e) || e.Status != atoi(tc.want) {
				t.Errorf("%s: %q: %v / %q, want HTTP %s", tc.who, tc.cmd, err, out, tc.want)
			}
		case err != nil:
			t.Errorf("%s: %q: %v", tc.who, tc.cmd, err)
		case !strings.Contains(out, tc.want):
			t.Errorf("%s: %q printed %q, want %q", tc.who, tc.cmd, out, tc.want)
		}
	}
	// The viewer's refused FLUSHALL is in the audit log, with who sent it.
	entries, err := admin.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if e.User == "c-viewer" && e.Action == "COMMAND FLUSHALL" && e.Status == 403 {
			found = true
		}
	}
	if !found {
		t.Fatal("the viewer's refused FLUSHALL is not in the audit log")
	}
	// Huge replies are cut.
	if _, err := run("operator", `SET big `+strings.Repeat("x", 200000), false); err != nil {
		t.Fatal(err)
	}
	res, err := admin.Command(ctx, "cmd", "GET big", false)
	if err != nil || !res.Truncated || len(res.Output) > commandOutputLimit+100 {
		t.Fatalf("GET big: truncated %v, %d bytes, %v", res.Truncated, len(res.Output), err)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestOpEventsStream follows an operation through its event stream until
// the final "done" event.
func TestOpEventsStream(t *testing.T) {
	rc := testenv.SharedRedisCluster(t, testenv.ClusterOptions{Masters: 3, Password: "cmd-pw"})
	ts := startLeader(t, testenv_SharedEtcdURL(t))
	ctx := ctxT(t)
	admin := ts.adminClient(t)
	op, _, err := admin.Adopt(ctx, api.AdoptParams{Name: "sse", Seed: rc.Nodes[0].Addr, Password: "cmd-pw"}, false)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/v1/ops/"+op.ID+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+mustRead(t, AdminTokenPath(ts.DataDir)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var events []string
	var last api.Operation
	for sc.Scan() {
		line := sc.Text()
		if ev, ok := strings.CutPrefix(line, "event: "); ok {
			events = append(events, ev)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			if err := json.Unmarshal([]byte(data), &last); err != nil {
				t.Fatalf("event data %q: %v", data, err)
			}
		}
	}
	if len(events) < 2 || events[len(events)-1] != "done" || last.State != "succeeded" || !last.CheckDone {
		t.Fatalf("events %v, last state %+v", events, last)
	}
	resp2, err := http.Get(ts.URL + "/api/v1/ops/" + op.ID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 401 {
		t.Fatalf("event stream without credentials: %d, want 401", resp2.StatusCode)
	}
}
