package coordtest

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/r2m-go/r2m/coord"
)

// testWatchRapid writes 1,000 versions as fast as the server takes them
// while a watcher reads slowly. The watcher may skip versions (watches
// coalesce) but must never see one go backwards, and must end on the last.
func testWatchRapid(t *testing.T, h Harness) {
	ctx := testContext(t)
	url := h.Shared(t).URL(uniqueRoot(t))
	c := open(t, url, 0)
	writer := open(t, url, 0)
	if err := c.Create(ctx, "/hot", []byte("0")); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := c.Watch(wctx, "/hot")
	first := nextNode(t, ch, "the initial state", func(n *coord.Node) bool { return n != nil })
	if first.Version != 0 || string(first.Data) != "0" {
		t.Fatalf("first event = %+v, want version 0 with data 0", first)
	}

	const updates = 1000
	done := make(chan error, 1)
	go func() {
		for i := 1; i <= updates; i++ {
			if _, err := writer.Set(ctx, "/hot", []byte(strconv.Itoa(i)), int64(i-1)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()

	var (
		events  int
		lastVer = first.Version
		lastRev = first.Revision
	)
	deadline := time.NewTimer(testTimeout / 2)
	defer deadline.Stop()
	for lastVer < updates {
		select {
		case ev := <-ch:
			if ev.Err != nil || ev.Node == nil {
				t.Fatalf("watch event %+v: want a node state", ev)
			}
			n := ev.Node
			if n.Version <= lastVer || n.Revision <= lastRev {
				t.Fatalf("watch went from version %d (rev %d) to %d (rev %d); versions must rise and not repeat", lastVer, lastRev, n.Version, n.Revision)
			}
			if string(n.Data) != strconv.FormatInt(n.Version, 10) {
				t.Fatalf("event for version %d carries data %q; want the data of that version", n.Version, n.Data)
			}
			lastVer, lastRev = n.Version, n.Revision
			events++
			if events%50 == 0 {
				time.Sleep(time.Millisecond) // a deliberately slow consumer, to force coalescing
			}
		case <-deadline.C:
			t.Fatalf("watch stopped at version %d of %d", lastVer, updates)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	t.Logf("%d updates arrived as %d watch events", updates, events)
	// Nothing further may arrive: the last state was delivered exactly once.
	select {
	case ev := <-ch:
		t.Fatalf("extra watch event after the final version: %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}

func testWatchCreateDelete(t *testing.T, h Harness) {
	ctx := testContext(t)
	c := open(t, h.Shared(t).URL(uniqueRoot(t)), 0)
	ch := c.Watch(ctx, "/later")
	nextNode(t, ch, "absence", func(n *coord.Node) bool { return n == nil })
	if err := c.Create(ctx, "/later", []byte("born")); err != nil {
		t.Fatal(err)
	}
	born := nextNode(t, ch, "creation", func(n *coord.Node) bool { return n != nil })
	if string(born.Data) != "born" || born.Path != "/later" {
		t.Fatalf("created node = %+v", born)
	}
	if err := c.Delete(ctx, "/later", coord.AnyVersion); err != nil {
		t.Fatal(err)
	}
	nextNode(t, ch, "deletion", func(n *coord.Node) bool { return n == nil })
	if err := c.CreateEphemeral(ctx, "/later", []byte("again")); err != nil {
		t.Fatal(err)
	}
	again := nextNode(t, ch, "re-creation", func(n *coord.Node) bool { return n != nil })
	if again.Revision <= born.Revision || !again.Ephemeral {
		t.Fatalf("re-created node = %+v; want an ephemeral with a revision above %d", again, born.Revision)
	}
}

func testWatchChildren(t *testing.T, h Harness) {
	ctx := testContext(t)
	c := open(t, h.Shared(t).URL(uniqueRoot(t)), 0)
	ch := c.WatchChildren(ctx, "/dir")
	next := func(what string, ok func(coord.ChildrenEvent) bool) coord.ChildrenEvent {
		t.Helper()
		timer := time.NewTimer(testTimeout / 2)
		defer timer.Stop()
		for {
			select {
			case ev := <-ch:
				if ev.Err != nil {
					t.Fatalf("children watch ended waiting for %s: %v", what, ev.Err)
				}
				if ok(ev) {
					return ev
				}
			case <-timer.C:
				t.Fatalf("no children event with %s", what)
			}
		}
	}
	next("a missing node", func(ev coord.ChildrenEvent) bool { return !ev.Exists && len(ev.Children) == 0 })
	if err := c.Create(ctx, "/dir/a", nil); err != nil {
		t.Fatal(err)
	}
	next("[a]", func(ev coord.ChildrenEvent) bool { return ev.Exists && slices.Equal(ev.Children, []string{"a"}) })
	for _, p := range []string{"/dir/b", "/dir/c", "/dir/a/grandchild", "/dir-sibling/x"} {
		if err := c.Create(ctx, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CreateEphemeral(ctx, "/dir/e", nil); err != nil {
		t.Fatal(err)
	}
	next("[a b c e]", func(ev coord.ChildrenEvent) bool {
		return slices.Equal(ev.Children, []string{"a", "b", "c", "e"})
	})
	if err := c.Delete(ctx, "/dir/b", coord.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(ctx, "/dir/c", []byte("data changes are not membership changes"), 0); err != nil {
		t.Fatal(err)
	}
	ev := next("[a c e]", func(ev coord.ChildrenEvent) bool { return !slices.Contains(ev.Children, "b") })
	if !slices.Equal(ev.Children, []string{"a", "c", "e"}) {
		t.Fatalf("children after deleting b = %v, want [a c e]; grandchildren and siblings must not appear", ev.Children)
	}
}

func testWatchCancel(t *testing.T, h Harness) {
	ctx := testContext(t)
	c := open(t, h.Shared(t).URL(uniqueRoot(t)), 0)
	wctx, cancel := context.WithCancel(ctx)
	ch := c.Watch(wctx, "/x")
	cch := c.WatchChildren(wctx, "/")
	<-ch
	<-cch
	cancel()
	for name, last := range map[string]func() error{
		"Watch":         func() error { return lastErr(t, ch) },
		"WatchChildren": func() error { return lastErr(t, cch) },
	} {
		if err := last(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s after cancel: final error %v, want context.Canceled", name, err)
		}
	}
	// An invalid path ends the watch at once with the reason.
	if err := lastErr(t, c.Watch(ctx, "bad")); !errors.Is(err, coord.ErrInvalidPath) {
		t.Fatalf("Watch(bad) final error %v, want ErrInvalidPath", err)
	}
}

// lastErr drains a watch channel and returns the Err of its last event.
func lastErr[E interface {
	coord.NodeEvent | coord.ChildrenEvent
}](t *testing.T, ch <-chan E) error {
	t.Helper()
	var last error
	timer := time.NewTimer(testTimeout / 2)
	defer timer.Stop()
	for {
		select {
		case ev, open := <-ch:
			if !open {
				return last
			}
			switch e := any(ev).(type) {
			case coord.NodeEvent:
				last = e.Err
			case coord.ChildrenEvent:
				last = e.Err
			}
		case <-timer.C:
			t.Fatalf("watch channel not closed within %v", testTimeout/2)
		}
	}
}
