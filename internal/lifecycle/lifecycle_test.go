package lifecycle

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	var wg sync.WaitGroup
	release := make(chan struct{})
	wg.Go(func() { <-release })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := Wait(ctx, &wg); err != context.DeadlineExceeded {
		t.Fatalf("Wait on a running goroutine = %v, want DeadlineExceeded", err)
	}
	close(release)
	if err := Wait(context.Background(), &wg); err != nil {
		t.Fatalf("Wait after the goroutine ended = %v, want nil", err)
	}
}
