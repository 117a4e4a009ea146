package agent

// DieWithTestBinary makes the instances an agent starts die with the test
// binary (PR_SET_PDEATHSIG), so that a test run that crashes or times out
// leaves no redis-server behind. The agent still starts them in their own
// session, and a second agent in the same test binary still adopts them.
func DieWithTestBinary(o *Options) { o.dieWithParent = true }
