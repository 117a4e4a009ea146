package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// spool is an append-only byte log on disk, written by one goroutine (the
// source reader) and read by another (the replayer), which waits for more
// bytes when it catches up. It is a list of segment files; a segment the
// reader has passed is deleted, so the disk holds only what is not yet
// replayed. The spool is a buffer, not a durable log: after a crash the link
// re-reads from the source what it had not applied.
type spool struct {
	dir, name string
	segBytes  int64

	mu     sync.Mutex
	segs   []*segment    // live segments, oldest first
	wf     *os.File      // the last segment, open for writing
	done   bool          // the writer finished (finish was called)
	err    error         // why the writer finished; nil means a clean end
	notify chan struct{} // closed and replaced on every append and on finish
	disk   int64         // bytes of live segments
	total  int64         // bytes ever written (flushed)

	// Buffered spools (the stream) collect small writes in buf and write
	// them out when it is full or every flushEvery, from the flusher
	// goroutine, which finish stops and waits for. One write system call
	// per replicated command would cost the reader most of its time.
	buf      []byte
	stop     chan struct{} // closed by finish: the flusher returns
	flusherW sync.WaitGroup
}

// Buffering of stream spools.
const (
	flushEvery = 2 * time.Millisecond
	flushBytes = 256 << 10
)

type segment struct {
	path   string
	size   int64
	sealed bool // no more bytes will be appended
}

func newSpool(dir, name string, segBytes int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("migrate: spool: %w", err)
	}
	s := &spool{dir: dir, name: name, segBytes: segBytes, notify: make(chan struct{})}
	if err := s.rotate(); err != nil {
		return nil, err
	}
	return s, nil
}

// rotate seals the current segment and opens a new one. Callers hold mu
// (or own s exclusively).
func (s *spool) rotate() error {
	if s.wf != nil {
		if err := s.wf.Close(); err != nil {
			return fmt.Errorf("migrate: spool: %w", err)
		}
		s.segs[len(s.segs)-1].sealed = true
	}
	p := filepath.Join(s.dir, fmt.Sprintf("%s.%012d", s.name, s.total))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("migrate: spool: %w", err)
	}
	s.wf = f
	s.segs = append(s.segs, &segment{path: p})
	return nil
}

// buffered makes Write collect bytes in memory; readers see them within
// flushEvery.
func (s *spool) buffered() {
	s.stop = make(chan struct{})
	s.flusherW.Go(func() {
		tk := time.NewTicker(flushEvery)
		defer tk.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tk.C:
				s.mu.Lock()
				if len(s.buf) > 0 && !s.done {
					_ = s.flushLocked() // an error is kept in the file's state and returned by the next Write
				}
				s.mu.Unlock()
			}
		}
	})
}

// Write appends p. Only the writer goroutine calls it.
func (s *spool) Write(p []byte) (int, error) {
	if s.stop != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.done {
			return 0, fmt.Errorf("migrate: spool: write after finish")
		}
		s.buf = append(s.buf, p...)
		if len(s.buf) >= flushBytes {
			if err := s.flushLocked(); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appendLocked(p)
}

func (s *spool) flushLocked() error {
	_, err := s.appendLocked(s.buf)
	s.buf = s.buf[:0]
	return err
}

// appendLocked writes p to the current segment. Callers hold mu.
func (s *spool) appendLocked(p []byte) (int, error) {
	n, err := s.wf.Write(p)
	s.segs[len(s.segs)-1].size += int64(n)
	s.disk += int64(n)
	s.total += int64(n)
	if err == nil && s.segBytes > 0 && s.segs[len(s.segs)-1].size >= s.segBytes {
		err = s.rotate()
	}
	close(s.notify)
	s.notify = make(chan struct{})
	if err != nil {
		return n, fmt.Errorf("migrate: spool: %w", err)
	}
	return n, nil
}

// finish marks the end of what will be written; readers get err (io.EOF
// when err is nil) after the last byte.
func (s *spool) finish(err error) {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	if len(s.buf) > 0 && s.wf != nil {
		if ferr := s.flushLocked(); ferr != nil && err == nil {
			err = ferr
		}
	}
	defer func() {
		if s.stop != nil {
			close(s.stop)
			s.flusherW.Wait()
		}
	}()
	defer s.mu.Unlock()
	s.done, s.err = true, err
	if s.wf != nil {
		_ = s.wf.Close() // nothing more is written; a failed close changes no data read back
		s.wf = nil
		s.segs[len(s.segs)-1].sealed = true
	}
	close(s.notify)
	s.notify = make(chan struct{})
}

// stopped reports whether the writer ended the spool with an error.
func (s *spool) stopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done && s.err != nil
}

// remove finishes the spool and deletes its files.
func (s *spool) remove() error {
	s.finish(errors.New("migrate: spool removed"))
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, sg := range s.segs {
		if err := os.Remove(sg.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	s.segs, s.disk = nil, 0
	return errors.Join(errs...)
}

// diskBytes returns the bytes the spool holds on disk.
func (s *spool) diskBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.disk
}

// written returns every byte ever appended, buffered ones included.
func (s *spool) written() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total + int64(len(s.buf))
}

// spoolReader reads a spool from its start, blocking for bytes that have
// not arrived yet. Reads return ctx's error once ctx ends.
type spoolReader struct {
	s   *spool
	ctx context.Context
	f   *os.File
	seg *segment
	pos int64 // within seg
}

func (s *spool) reader(ctx context.Context) *spoolReader { return &spoolReader{s: s, ctx: ctx} }

// Close closes the reader's file.
func (r *spoolReader) Close() error {
	if r.f != nil {
		err := r.f.Close()
		r.f = nil
		return err
	}
	return nil
}

// Read implements io.Reader.
func (r *spoolReader) Read(p []byte) (int, error) {
	for {
		s := r.s
		s.mu.Lock()
		if r.seg == nil {
			if len(s.segs) == 0 {
				err := s.err
				s.mu.Unlock()
				return 0, orEOF(err)
			}
			r.seg = s.segs[0]
			r.pos = 0
		}
		seg, size, sealed := r.seg, r.seg.size, r.seg.sealed
		done, werr, ch := s.done, s.err, s.notify
		s.mu.Unlock()
		if r.pos < size {
			if r.f == nil {
				f, err := os.Open(seg.path)
				if err != nil {
					return 0, fmt.Errorf("migrate: spool: %w", err)
				}
				r.f = f
			}
			n, err := r.f.ReadAt(p[:min(int64(len(p)), size-r.pos)], r.pos)
			r.pos += int64(n)
			if n > 0 {
				return n, nil
			}
			if err != nil {
				return 0, fmt.Errorf("migrate: spool: %w", err)
			}
			continue
		}
		if sealed {
			if r.advance(seg) {
				continue
			}
		}
		if done {
			return 0, orEOF(werr)
		}
		select {
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		case <-ch:
		}
	}
}

// advance drops a fully read, sealed segment and moves to the next one.
func (r *spoolReader) advance(seg *segment) bool {
	if r.f != nil {
		_ = r.f.Close() // read-only handle
		r.f = nil
	}
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, sg := range s.segs {
		if sg == seg {
			_ = os.Remove(sg.path) // best effort: a leftover file is reclaimed when the spool is removed
			s.disk -= sg.size
			s.segs = append(s.segs[:i:i], s.segs[i+1:]...)
			if i < len(s.segs) {
				r.seg, r.pos = s.segs[i], 0
				return true
			}
			break
		}
	}
	r.seg = nil
	return false
}

func orEOF(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
}
