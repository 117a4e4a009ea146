package client

// SetTestHook makes New call f at each stage ("session", "app", "resolved",
// "built", "registered"), so that tests can end New's context at a chosen
// point.
func SetTestHook(o *Options, f func(stage string)) { o.testHook = f }

// Stages of New, in order, for tests.
var Stages = []string{"session", "app", "resolved", "built", "registered"}

// SessionCount returns the number of coordinator sessions the process holds.
func SessionCount() int {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return len(registry.sessions)
}

// RecordPath returns the path of the client's registration record.
func RecordPath(c *Client) string { return "/apps/" + c.k.opts.App + "/clients/" + c.k.id }

// CreationSite returns the file:line New recorded.
func CreationSite(c *Client) string { return c.k.site }

// SlowCreate makes attempts to create the registration record wait out
// their deadline whenever slow returns true; a create that succeeded then
// reports a timeout, as when its reply is lost.
func SlowCreate(o *Options, slow func(result error) bool) { o.testSlowCreate = slow }
