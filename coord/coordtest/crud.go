package coordtest

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/r2m-go/r2m/coord"
)

func testCRUD(t *testing.T, h Harness) {
	ctx := testContext(t)
	c := open(t, h.Shared(t).URL(uniqueRoot(t)), 0)

	// Create makes missing ancestors.
	if err := c.Create(ctx, "/a/b/c", []byte("v0")); err != nil {
		t.Fatalf("Create /a/b/c: %v", err)
	}
	for _, p := range []string{"/a", "/a/b"} {
		n, err := c.Get(ctx, p)
		if err != nil || len(n.Data) != 0 || n.Ephemeral {
			t.Fatalf("Get %s (made by Create) = %+v, %v; want an empty persistent node", p, n, err)
		}
	}
	n, err := c.Get(ctx, "/a/b/c")
	if err != nil {
		t.Fatal(err)
	}
	if string(n.Data) != "v0" || n.Version != 0 || n.Path != "/a/b/c" || n.Ephemeral || n.Revision <= 0 {
		t.Fatalf("Get after Create = %+v; want data v0, version 0, path /a/b/c, persistent, revision > 0", n)
	}

	// Binary data survives.
	bin := []byte{0, 1, 2, 0xff, '\n', 0}
	v, err := c.Set(ctx, "/a/b/c", bin, 0)
	if err != nil || v != 1 {
		t.Fatalf("Set version 0 = %d, %v; want 1, nil", v, err)
	}
	n2, err := c.Get(ctx, "/a/b/c")
	if err != nil || !bytes.Equal(n2.Data, bin) || n2.Version != 1 || n2.Revision <= n.Revision {
		t.Fatalf("Get after Set = %+v, %v; want the binary data, version 1, a higher revision than %d", n2, err, n.Revision)
	}
	if v, err := c.Set(ctx, "/a/b/c", []byte("any"), coord.AnyVersion); err != nil || v != 2 {
		t.Fatalf("Set AnyVersion = %d, %v; want 2, nil", v, err)
	}

	for _, name := range []string{"z", "x", "y"} {
		if err := c.Create(ctx, "/a/b/"+name, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Create(ctx, "/a/b/y/deeper", nil); err != nil {
		t.Fatal(err)
	}
	kids, err := c.Children(ctx, "/a/b")
	if want := []string{"c", "x", "y", "z"}; err != nil || !slices.Equal(kids, want) {
		t.Fatalf("Children /a/b = %v, %v; want %v (direct children only, sorted)", kids, err, want)
	}
	if kids, err := c.Children(ctx, "/a/b/x"); err != nil || len(kids) != 0 {
		t.Fatalf("Children of a leaf = %v, %v; want none", kids, err)
	}
	if root, err := c.Children(ctx, "/"); err != nil || !slices.Equal(root, []string{"a"}) {
		t.Fatalf("Children / = %v, %v; want [a]", root, err)
	}

	if err := c.Delete(ctx, "/a/b/c", 2); err != nil {
		t.Fatalf("Delete with the current version: %v", err)
	}
	_, err = c.Get(ctx, "/a/b/c")
	mustIs(t, "Get after Delete", err, coord.ErrNotFound)
	if err := c.Delete(ctx, "/a/b/x", coord.AnyVersion); err != nil {
		t.Fatalf("Delete AnyVersion: %v", err)
	}
	// Re-creating a deleted node starts a new life at version 0, with a
	// higher revision than anything before.
	if err := c.Create(ctx, "/a/b/c", []byte("again")); err != nil {
		t.Fatal(err)
	}
	if n3, err := c.Get(ctx, "/a/b/c"); err != nil || n3.Version != 0 || n3.Revision <= n2.Revision {
		t.Fatalf("re-created node = %+v, %v; want version 0 and revision above %d", n3, err, n2.Revision)
	}
}

func testErrors(t *testing.T, h Harness) {
	ctx := testContext(t)
	c := open(t, h.Shared(t).URL(uniqueRoot(t)), 0)
	if err := c.Create(ctx, "/n", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, "/n/child", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateEphemeral(ctx, "/eph", nil); err != nil {
		t.Fatal(err)
	}
	_, setMissing := c.Set(ctx, "/missing", nil, coord.AnyVersion)
	_, setStale := c.Set(ctx, "/n", nil, 7)
	_, getMissing := c.Get(ctx, "/missing")
	_, kidsMissing := c.Children(ctx, "/missing")
	_, badVersion := c.Set(ctx, "/n", nil, -2)
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"Get missing", getMissing, coord.ErrNotFound},
		{"Children missing", kidsMissing, coord.ErrNotFound},
		{"Set missing", setMissing, coord.ErrNotFound},
		{"Delete missing", c.Delete(ctx, "/missing", coord.AnyVersion), coord.ErrNotFound},
		{"Create existing", c.Create(ctx, "/n", nil), coord.ErrExists},
		{"CreateEphemeral existing", c.CreateEphemeral(ctx, "/n", nil), coord.ErrExists},
		{"Set stale version", setStale, coord.ErrVersionConflict},
		{"Delete stale version", c.Delete(ctx, "/n/child", 3), coord.ErrVersionConflict},
		{"Delete with children", c.Delete(ctx, "/n", coord.AnyVersion), coord.ErrNotEmpty},
		{"Create under ephemeral", c.Create(ctx, "/eph/child", nil), coord.ErrEphemeralParent},
		{"relative path", c.Create(ctx, "n", nil), coord.ErrInvalidPath},
		{"trailing slash", c.Create(ctx, "/n/", nil), coord.ErrInvalidPath},
		{"empty segment", c.Create(ctx, "/n//x", nil), coord.ErrInvalidPath},
		{"dot-dot", c.Create(ctx, "/n/../x", nil), coord.ErrInvalidPath},
		{"newline", c.Create(ctx, "/n/a\nb", nil), coord.ErrInvalidPath},
		{"delete root", c.Delete(ctx, "/", coord.AnyVersion), coord.ErrInvalidPath},
	}
	for _, tc := range cases {
		mustIs(t, tc.name, tc.err, tc.want)
		var oe *coord.Error
		if !errors.As(tc.err, &oe) || oe.Path == "" || oe.Op == "" {
			t.Errorf("%s: error %v is not a *coord.Error naming the operation and path", tc.name, tc.err)
		}
	}
	if badVersion == nil {
		t.Error("Set with version -2: got nil error, want a complaint about the version")
	}
	// A failed Set changed nothing.
	if n, err := c.Get(ctx, "/n"); err != nil || string(n.Data) != "x" || n.Version != 0 {
		t.Fatalf("after failed writes Get /n = %+v, %v; want data x at version 0", n, err)
	}
}

// testCASConcurrent has writers increment one counter by read-modify-CAS.
// With fencing by version no increment may be lost, and some CAS attempts
// must have conflicted, or the test proved nothing.
func testCASConcurrent(t *testing.T, h Harness) {
	ctx := testContext(t)
	url := h.Shared(t).URL(uniqueRoot(t))
	c := open(t, url, 0)
	if err := c.Create(ctx, "/counter", []byte("0")); err != nil {
		t.Fatal(err)
	}
	const writers, increments = 8, 40
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		// Half the writers share c; half have their own session.
		wc := c
		if w%2 == 1 {
			wc = open(t, url, 0)
		}
		wg.Go(func() {
			for range increments {
				for {
					n, err := wc.Get(ctx, "/counter")
					if err != nil {
						errs <- err
						return
					}
					v, _ := strconv.Atoi(string(n.Data))
					_, err = wc.Set(ctx, "/counter", []byte(strconv.Itoa(v+1)), n.Version)
					if errors.Is(err, coord.ErrVersionConflict) {
						conflicts.Add(1)
						continue
					}
					if err != nil {
						errs <- err
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n, err := c.Get(ctx, "/counter")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(n.Data), strconv.Itoa(writers*increments); got != want {
		t.Fatalf("counter = %s, want %s: a CAS let a lost update through", got, want)
	}
	if n.Version != writers*increments {
		t.Fatalf("counter version = %d, want %d", n.Version, writers*increments)
	}
	if conflicts.Load() == 0 {
		t.Fatalf("no CAS conflicts among %d concurrent writers; the test did not exercise fencing", writers)
	}
	t.Logf("%d increments, %d version conflicts retried", writers*increments, conflicts.Load())
}

func testRoots(t *testing.T, h Harness) {
	ctx := testContext(t)
	s := h.Shared(t)
	a := open(t, s.URL(uniqueRoot(t)), 0)
	b := open(t, s.URL(uniqueRoot(t)), 0)
	if err := a.Create(ctx, "/only-in-a", nil); err != nil {
		t.Fatal(err)
	}
	_, err := b.Get(ctx, "/only-in-a")
	mustIs(t, "Get of another root's node", err, coord.ErrNotFound)
	if kids, err := b.Children(ctx, "/"); err != nil || len(kids) != 0 {
		t.Fatalf("Children / of a fresh root = %v, %v; want none", kids, err)
	}
}

func testEphemeralClose(t *testing.T, h Harness) {
	ctx := testContext(t)
	url := h.Shared(t).URL(uniqueRoot(t))
	observer := open(t, url, 0)
	c, err := coord.OpenConfig(ctx, coord.Config{URL: url, CloseTimeout: closeBound})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateEphemeral(ctx, "/clients/one", []byte("me")); err != nil {
		t.Fatal(err)
	}
	n, err := observer.Get(ctx, "/clients/one")
	if err != nil || !n.Ephemeral || n.Owner == "" || n.Owner != c.SessionID() {
		t.Fatalf("observer Get = %+v, %v; want an ephemeral owned by session %s", n, err, c.SessionID())
	}
	if n.Owner == observer.SessionID() {
		t.Fatalf("two sessions share ID %s", n.Owner)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close confirmed the delete: no waiting for the session to time out.
	_, err = observer.Get(ctx, "/clients/one")
	mustIs(t, "observer Get right after Close", err, coord.ErrNotFound)
	if _, err := observer.Get(ctx, "/clients"); err != nil {
		t.Fatalf("the persistent parent should remain: %v", err)
	}
	err = c.CreateEphemeral(ctx, "/clients/two", nil)
	mustIs(t, "CreateEphemeral after Close", err, coord.ErrClosed)
	_, err = c.Get(ctx, "/clients")
	mustIs(t, "Get after Close", err, coord.ErrClosed)
}

func testEphemeralSet(t *testing.T, h Harness) {
	ctx := testContext(t)
	url := h.Shared(t).URL(uniqueRoot(t))
	observer := open(t, url, 0)
	c, err := coord.OpenConfig(ctx, coord.Config{URL: url, CloseTimeout: closeBound})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateEphemeral(ctx, "/e", []byte("1")); err != nil {
		t.Fatal(err)
	}
	// Another session updates the ephemeral (a heartbeat written by the
	// owner looks the same): it stays owned by the first session.
	if _, err := observer.Set(ctx, "/e", []byte("2"), 0); err != nil {
		t.Fatal(err)
	}
	if n, err := observer.Get(ctx, "/e"); err != nil || !n.Ephemeral || n.Owner != c.SessionID() {
		t.Fatalf("after Set, node = %+v, %v; want still ephemeral, owned by %s", n, err, c.SessionID())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = observer.Get(ctx, "/e")
	mustIs(t, "Get after the owner closed", err, coord.ErrNotFound)
}
