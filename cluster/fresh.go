package cluster

import "context"

// CheckNewNode reports whether addr can join a cluster: it must answer,
// run in cluster mode, know no other node, own no slot and hold no key.
// AddNode and Create make the same check; callers use this one to refuse
// a bad node while they only plan (a dry run), before anything changes.
func (e *Engine) CheckNewNode(ctx context.Context, addr string) error {
	return e.checkFresh(ctx, addr)
}
