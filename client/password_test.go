package client_test

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"

	"github.com/r2m-go/r2m/client"
	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/meta"
)

// TestPasswordFromCoordinator connects to a cluster whose password only the
// coordinator holds (the credentials record), and checks that the password
// never reaches the client's log, at debug level, through New, a rebuild
// (which logs what it builds from) and Close.
func TestPasswordFromCoordinator(t *testing.T) {
	var r [8]byte
	_, _ = rand.Read(r[:])
	password := "pw-" + hex.EncodeToString(r[:])
	rc := testenv.StartRedisCluster(t, testenv.ClusterOptions{Masters: 3, Password: password})
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := testContext(t)
		e := newEnv(t, b.shared(t)(uniqueRoot(t)), "", rc, meta.ClientConfig{})
		logs := &syncBuffer{}
		onEv, evs := eventChan()
		opts := e.options(onEv)
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c, err := client.New(ctx, opts)
		must(t, err)
		must(t, c.Do(ctx, c.B().Set().Key("pw:k").Value("v").Build()).Error())
		_, _, err = e.st.App(e.app).Update(ctx, func(a *meta.App) error {
			a.Client.ClientCache, a.ConfigVersion = true, 2
			return nil
		})
		must(t, err)
		waitEvent(t, evs, "config v2", func(ev client.Event) bool {
			return ev.Type == client.EventConfigChanged && ev.ConfigVersion == 2 && ev.Rebuilt
		})
		if v, err := c.Do(ctx, c.B().Get().Key("pw:k").Build()).ToString(); err != nil || v != "v" {
			t.Fatalf("GET on the rebuilt client (authenticated with the password from the coordinator): %q, %v", v, err)
		}
		must(t, c.Close())
		out := logs.String()
		if strings.Contains(out, password) {
			t.Fatalf("the password appears in the client's log:\n%s", out)
		}
		if !strings.Contains(out, "password=true") {
			t.Fatalf("the log never described a spec, so this test proves nothing:\n%s", out)
		}
	})
}
