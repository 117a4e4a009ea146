package agent_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/r2m-go/r2m/agent"
	"github.com/r2m-go/r2m/coord"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

// Environment of the helper process that TestSurvivesAgentKill starts.
const (
	helperURL  = "R2M_AGENT_HELPER_URL"
	helperDir  = "R2M_AGENT_HELPER_DIR"
	helperHost = "R2M_AGENT_HELPER_HOST"
)

// TestHelperAgentProcess is not a test of its own: it is the body of the
// agent process that TestSurvivesAgentKill starts (the os/exec
// helper-process pattern) and kills. Without the helper environment it
// returns at once.
func TestHelperAgentProcess(t *testing.T) {
	url := os.Getenv(helperURL)
	if url == "" {
		return
	}
	c, err := coord.OpenConfig(context.Background(), coord.Config{URL: url, SessionTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	p, err := testenv.RedisServerPath()
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{
		Host: os.Getenv(helperHost), BindAddr: "127.0.0.1", DataDir: os.Getenv(helperDir),
		RedisServerPath: p, Coordinator: c,
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, nil)),
		ProbeInterval: 50 * time.Millisecond, ReportInterval: 300 * time.Millisecond, CoordTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Runs until the parent test kills this process.
	t.Fatal(a.Run(context.Background()))
}

// TestSurvivesAgentKill: instances outlive an agent process killed with
// SIGKILL (they run in their own session, no longer anyone's child once the
// agent is gone); a new agent adopts them, waits out the dead agent's live
// record, and restarts an adopted instance that dies, which it can only
// notice by polling.
func TestSurvivesAgentKill(t *testing.T) {
	backends(t, func(t *testing.T, url func(string) string) {
		ctx := testCtx(t)
		dir := newDataDir(t)
		root := uniqueRoot()
		f := newFixture(t, url(root), 0)
		ports := freePorts(t, 2)
		f.setDesired(t, "host-a", 1, instance(ports[0]), instance(ports[1]))

		var out bytes.Buffer
		helper := exec.Command(os.Args[0], "-test.run=^TestHelperAgentProcess$", "-test.count=1")
		helper.Env = append(os.Environ(), helperURL+"="+url(root), helperDir+"="+dir, helperHost+"=host-a",
			"TMPDIR="+t.TempDir()) // testenv.Main's scratch dir is left behind by SIGKILL
		helper.Stdout, helper.Stderr = &out, &out
		helper.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := helper.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = helper.Process.Kill()
			_ = helper.Wait()
			if t.Failed() {
				t.Logf("helper agent output:\n%s", out.String())
			}
		})
		act := f.waitActual(t, "host-a", "the helper agent's instances running", allRunning(1, ports...))
		pids := []int{status(act, ports[0]).PID, status(act, ports[1]).PID}
		for _, pid := range pids {
			if sid := sessionOf(t, pid); sid != pid {
				t.Fatalf("instance pid %d is in session %d; want its own session", pid, sid)
			}
		}

		if err := helper.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = helper.Wait()
		for i, p := range ports {
			if pid := onlyPID(t, p); pid != pids[i] {
				t.Fatalf("port %d runs pid %d after the agent was killed; want %d", p, pid, pids[i])
			}
			if err := pingPort(ctx, p, ""); err != nil {
				t.Fatalf("instance on %d does not answer after the agent was killed: %v", p, err)
			}
			if ppid := parentOf(t, pids[i]); ppid == os.Getpid() {
				t.Fatalf("instance pid %d is a child of the test binary; the test would not cover adoption of non-children", pids[i])
			}
		}

		f.start(t, f.options("host-a", dir))
		act = f.waitActual(t, "host-a", "both adopted by the new agent", func(a *meta.ActualState) bool {
			return allRunning(1, ports...)(a) && a.UpdatedAt.After(act.UpdatedAt) &&
				status(a, ports[0]).PID == pids[0] && status(a, ports[1]).PID == pids[1]
		})
		waitFor(t, "the new agent's live record, once the killed agent's session expired", func() (bool, string) {
			n, err := f.c.Get(ctx, f.st.AgentLive("host-a").Path())
			if err != nil {
				return false, err.Error()
			}
			return n.Owner == f.c.SessionID(), "owned by " + n.Owner
		})

		killPID(t, pids[0]) // not our child: only polling can notice
		f.waitActual(t, "host-a", "the adopted instance restarted", func(a *meta.ActualState) bool {
			s := status(a, ports[0])
			return s != nil && s.State == agent.StateRunning && s.PID != pids[0] && s.Restarts == 1
		})
		onlyPID(t, ports[0])
		if pid := onlyPID(t, ports[1]); pid != pids[1] {
			t.Fatalf("port %d runs %d; want %d", ports[1], pid, pids[1])
		}
		if !strings.Contains(f.logs.String(), "held by another session") {
			t.Error("the new agent never saw the killed agent's live record; the test did not cover waiting for it")
		}
	})
}

// statField returns field n (1-based, as in proc(5)) of /proc/<pid>/stat.
func statField(t *testing.T, pid, n int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	v, err := strconv.Atoi(f[n-3])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sessionOf(t *testing.T, pid int) int { return statField(t, pid, 6) }
func parentOf(t *testing.T, pid int) int  { return statField(t, pid, 4) }
