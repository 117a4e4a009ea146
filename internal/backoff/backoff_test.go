package backoff

import (
	"context"
	"testing"
	"time"
)

func TestNextGrowsWithinBounds(t *testing.T) {
	b := Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	wantCeil := []time.Duration{10, 20, 40, 80, 80, 80}
	for i, c := range wantCeil {
		c *= time.Millisecond
		got := b.Next()
		if got < c/2 || got > c {
			t.Fatalf("attempt %d: Next() = %v, want within [%v, %v]", i, got, c/2, c)
		}
	}
	b.Reset()
	if got := b.Next(); got > 10*time.Millisecond {
		t.Fatalf("after Reset, Next() = %v, want ≤ 10ms", got)
	}
}

func TestWaitReturnsWhenContextEnds(t *testing.T) {
	b := Backoff{Min: time.Hour, Max: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Wait(ctx); err != context.Canceled {
		t.Fatalf("Wait on a cancelled context = %v, want context.Canceled", err)
	}
}
