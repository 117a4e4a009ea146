// Package reshard benchmarks R2M's slot mover against
// `redis-cli --cluster reshard` on one dataset in one run, and measures the
// latency a move adds to a foreground GET/SET workload.
//
// Run it with:
//
//	go test -run '^$' -bench Reshard -benchtime 1x -timeout 30m ./bench/reshard/
//
// Flags (after -args): -keys (default 1000000), -slots (4096), -value (32
// bytes), -fg-rate (foreground ops per second, 2000); for R2M's mover
// -batch, -parallel, -round, -migrates-per-node, -max-batch-time and
// -skip-scan (zero values mean the cluster package's defaults), and
// -in-process to run the mover inside the benchmark process instead of a
// child process of its own.
package reshard
