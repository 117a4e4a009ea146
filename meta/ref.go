package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/r2m-go/r2m/coord"
)

// Errors about record contents.
var (
	// ErrNewerSchema: the record was written by a newer R2M whose schema
	// this reader does not know. Upgrade the reader.
	ErrNewerSchema = errors.New("meta: record has a newer schema version than this program knows")
	// ErrBadRecord: the node's data is not a valid record of its type.
	ErrBadRecord = errors.New("meta: malformed record")
	// ErrTooManyConflicts: Update gave up after losing the compare-and-set
	// race too many times in a row.
	ErrTooManyConflicts = errors.New("meta: too many concurrent updates")
)

// maxUpdateAttempts bounds an Update's read-modify-write loop. Losing this
// many races in a row means the record is under heavy contention, and the
// caller should hear about it rather than spin.
const maxUpdateAttempts = 32

// Ref names one record of type T. A Ref made from an invalid name carries
// the error, and every method returns it.
type Ref[T any] struct {
	c      *coord.Coordinator
	path   string
	schema int
	err    error
}

func newRef[T any](c *coord.Coordinator, schema int, path string, err error) Ref[T] {
	return Ref[T]{c: c, path: path, schema: schema, err: err}
}

// Path returns the record's coordinator path.
func (r Ref[T]) Path() string { return r.path }

// Err returns the error in the name the Ref was made from, if any.
func (r Ref[T]) Err() error { return r.err }

func (r Ref[T]) encode(v *T) ([]byte, error) {
	rec, ok := any(v).(record)
	if !ok {
		return nil, fmt.Errorf("meta: %T does not embed meta.Header", v)
	}
	rec.header().V = r.schema
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("meta: encode %s: %w", r.path, err)
	}
	return b, nil
}

func (r Ref[T]) decode(data []byte) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("%w at %s: %v", ErrBadRecord, r.path, err)
	}
	rec, ok := any(v).(record)
	if !ok {
		return nil, fmt.Errorf("meta: %T does not embed meta.Header", v)
	}
	switch got := rec.header().V; {
	case got == 0:
		return nil, fmt.Errorf("%w at %s: no schema version (\"v\")", ErrBadRecord, r.path)
	case got > r.schema:
		return nil, fmt.Errorf("%w: %s has v%d, this program knows v%d", ErrNewerSchema, r.path, got, r.schema)
	}
	return v, nil
}

// errPlaceholder marks an empty node: one that coord created as the
// ancestor of another (writing /agents/h/desired before /agents/h, say).
// It holds no record, so readers see it as missing, and the first write of
// the record replaces it.
var errPlaceholder = fmt.Errorf("%w (an empty placeholder)", coord.ErrNotFound)

// Get reads the record and the node version to pass to Set. An empty
// placeholder node reads as missing (coord.ErrNotFound).
func (r Ref[T]) Get(ctx context.Context) (*T, int64, error) {
	if r.err != nil {
		return nil, 0, r.err
	}
	n, err := r.c.Get(ctx, r.path)
	if err != nil {
		return nil, 0, err
	}
	if len(n.Data) == 0 {
		return nil, n.Version, &coord.Error{Op: "get", Path: r.path, Err: errPlaceholder}
	}
	v, err := r.decode(n.Data)
	if err != nil {
		return nil, 0, err
	}
	return v, n.Version, nil
}

// Create writes a new record; it fails with coord.ErrExists if there is one.
func (r Ref[T]) Create(ctx context.Context, v *T) error {
	return r.create(ctx, v, false)
}

// CreateEphemeral writes a new record owned by the coordinator session.
func (r Ref[T]) CreateEphemeral(ctx context.Context, v *T) error {
	return r.create(ctx, v, true)
}

func (r Ref[T]) create(ctx context.Context, v *T, ephemeral bool) error {
	if r.err != nil {
		return r.err
	}
	b, err := r.encode(v)
	if err != nil {
		return err
	}
	if ephemeral {
		return r.c.CreateEphemeral(ctx, r.path, b)
	}
	err = r.c.Create(ctx, r.path, b)
	if errors.Is(err, coord.ErrExists) {
		// Fill an empty placeholder in place; anything else really exists.
		n, gerr := r.c.Get(ctx, r.path)
		if gerr == nil && len(n.Data) == 0 {
			if _, serr := r.c.Set(ctx, r.path, b, n.Version); serr == nil {
				return nil
			} else if !errors.Is(serr, coord.ErrVersionConflict) {
				return serr
			}
		}
	}
	return err
}

// Set writes the record if the node is still at version (compare-and-set)
// and returns the new version. Use coord.AnyVersion only for records that a
// single writer owns.
func (r Ref[T]) Set(ctx context.Context, v *T, version int64) (int64, error) {
	if r.err != nil {
		return 0, r.err
	}
	b, err := r.encode(v)
	if err != nil {
		return 0, err
	}
	return r.c.Set(ctx, r.path, b, version)
}

// Update reads the record, applies fn and writes it back with
// compare-and-set, retrying from a fresh read when another writer got in
// first. fn may run several times and must only change the value it is
// given. An error from fn stops the update and is returned as is. It returns
// the record as written and its new version.
func (r Ref[T]) Update(ctx context.Context, fn func(*T) error) (*T, int64, error) {
	return r.update(ctx, fn, false)
}

// Upsert is Update that starts from the zero value when the record does
// not exist, and creates it.
func (r Ref[T]) Upsert(ctx context.Context, fn func(*T) error) (*T, int64, error) {
	return r.update(ctx, fn, true)
}

func (r Ref[T]) update(ctx context.Context, fn func(*T) error, create bool) (*T, int64, error) {
	if r.err != nil {
		return nil, 0, r.err
	}
	for attempt := 0; attempt < maxUpdateAttempts; attempt++ {
		if attempt > 0 {
			// A short, growing pause lets the winner's write land.
			t := time.NewTimer(time.Duration(attempt) * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, 0, ctx.Err()
			case <-t.C:
			}
		}
		v, version, err := r.Get(ctx)
		missing := errors.Is(err, coord.ErrNotFound)
		placeholder := errors.Is(err, errPlaceholder)
		switch {
		case missing && create:
			v = new(T)
		case err != nil:
			return nil, 0, err
		}
		if err := fn(v); err != nil {
			return nil, 0, err
		}
		if missing && !placeholder {
			err = r.Create(ctx, v)
			if errors.Is(err, coord.ErrExists) {
				continue
			}
			return v, 0, err
		}
		nv, err := r.Set(ctx, v, version)
		if errors.Is(err, coord.ErrVersionConflict) || errors.Is(err, coord.ErrNotFound) && create {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		return v, nv, nil
	}
	return nil, 0, fmt.Errorf("%w: %s lost the compare-and-set %d times", ErrTooManyConflicts, r.path, maxUpdateAttempts)
}

// Delete removes the record if the node is still at version.
func (r Ref[T]) Delete(ctx context.Context, version int64) error {
	if r.err != nil {
		return r.err
	}
	return r.c.Delete(ctx, r.path, version)
}

// Event is one report of a record watch.
type Event[T any] struct {
	// Value is the record, or nil when it does not exist or does not decode.
	Value *T
	// Version is the node version, for a following Set.
	Version int64
	// Invalid is set when the node exists but is not a valid record (or has
	// a newer schema); the watch goes on.
	Invalid error
	// Err is set on the last event only, and says why the watch ended.
	Err error
}

// Watch reports the record: its current state first, then each change,
// level-triggered like coord.Coordinator.Watch. The channel ends with an
// event whose Err is set, then closes.
func (r Ref[T]) Watch(ctx context.Context) <-chan Event[T] {
	out := make(chan Event[T], 1)
	if r.err != nil {
		out <- Event[T]{Err: r.err}
		close(out)
		return out
	}
	in := r.c.Watch(ctx, r.path)
	// This goroutine decodes and holds at most one event, so coord's
	// coalescing still applies. It ends when in closes, which coord
	// guarantees once ctx ends or the coordinator closes; its final send
	// never blocks.
	go func() {
		for ev := range in {
			if ev.Err != nil {
				select { // replace an unread event: the ending matters more
				case <-out:
				default:
				}
				out <- Event[T]{Err: ev.Err}
				break
			}
			var e Event[T]
			if ev.Node != nil && len(ev.Node.Data) > 0 { // an empty placeholder reads as absent
				e.Version = ev.Node.Version
				e.Value, e.Invalid = r.decode(ev.Node.Data)
			}
			select {
			case out <- e:
			case <-ctx.Done():
			}
		}
		close(out)
	}()
	return out
}

// Dir names a directory of records, such as /apps or
// /apps/{app}/clients.
type Dir struct {
	c    *coord.Coordinator
	path string
	err  error
}

// Path returns the directory's coordinator path.
func (d Dir) Path() string { return d.path }

// Names lists the directory's children, sorted. A directory that does not
// exist yet is empty.
func (d Dir) Names(ctx context.Context) ([]string, error) {
	if d.err != nil {
		return nil, d.err
	}
	names, err := d.c.Children(ctx, d.path)
	if errors.Is(err, coord.ErrNotFound) {
		return []string{}, nil
	}
	return names, err
}

// Watch reports the directory's children, level-triggered, like
// coord.Coordinator.WatchChildren.
func (d Dir) Watch(ctx context.Context) <-chan coord.ChildrenEvent {
	if d.err != nil {
		out := make(chan coord.ChildrenEvent, 1)
		out <- coord.ChildrenEvent{Err: d.err}
		close(out)
		return out
	}
	return d.c.WatchChildren(ctx, d.path)
}
