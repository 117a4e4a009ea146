package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/r2m-go/r2m/api"
)

// isTerminal reports whether w is a terminal, where progress is drawn as a
// bar; elsewhere it is printed as plain lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressLine renders an operation's state in one line.
func progressLine(op *api.Operation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", op.ID, op.State)
	for _, st := range op.Steps {
		if st.State == "running" {
			fmt.Fprintf(&b, " [%s]", st.Name)
		}
	}
	p := op.Progress
	if p.SlotsTotal > 0 {
		fmt.Fprintf(&b, " slots %d/%d keys %d %.0f keys/s", p.SlotsDone, p.SlotsTotal, p.KeysMoved, p.KeysPerSec)
		if p.ETA != "" {
			fmt.Fprintf(&b, " eta %s", p.ETA)
		}
	}
	return b.String()
}

// bar draws a 30-character progress bar.
func bar(done, total int) string {
	if total <= 0 {
		return ""
	}
	n := done * 30 / total
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", 30-n) + fmt.Sprintf("] %3d%% ", done*100/total)
}

// waitOp follows an operation until it ends, drawing progress on w, and
// returns its final state. The error is non-nil when the operation did not
// succeed, so --wait gives a non-zero exit code.
func waitOp(ctx context.Context, c *api.Client, id string, w io.Writer) (*api.Operation, error) {
	term := isTerminal(w)
	last := ""
	op, err := c.WaitOp(ctx, id, 500*time.Millisecond, func(op *api.Operation) {
		line := progressLine(op)
		if term {
			fmt.Fprintf(w, "\r\033[K%s%s", bar(op.Progress.SlotsDone, op.Progress.SlotsTotal), line)
			return
		}
		if line != last {
			fmt.Fprintln(w, line)
			last = line
		}
	})
	if term {
		fmt.Fprintln(w)
	}
	if err != nil {
		return op, err
	}
	return op, opOutcome(op)
}

// opOutcome turns a finished operation into an error unless it succeeded
// with a clean check.
func opOutcome(op *api.Operation) error {
	switch {
	case op.State == "failed":
		return fmt.Errorf("operation %s failed: %s", op.ID, op.Error)
	case op.State == "cancelled":
		return fmt.Errorf("operation %s was cancelled", op.ID)
	case len(op.CheckFindings) > 0:
		return fmt.Errorf("operation %s succeeded but the check after it found:\n  %s", op.ID, strings.Join(op.CheckFindings, "\n  "))
	}
	return nil
}
