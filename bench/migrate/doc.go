// Package migrate benchmarks R2M's sync link (package migrate, run as the
// `r2m migrate run` worker process): a full synchronization of a
// standalone source holding 1,000,000 mixed keys into a 3-master cluster,
// then a stream phase with the source written as fast as this machine
// allows. It reports RDB keys/s, commands/s applied while streaming, the
// steady-state lag, and the worker's peak memory and spool disk.
//
// Run it with:
//
//	go test -run '^$' -bench Migrate -benchtime 1x -timeout 30m ./bench/migrate/
//
// Flags (after -args): -keys (default 1000000), -stream (60s), -writers
// (4 pipelined writer connections), -pipeline (100 commands per round
// trip), -rate (source writes per second; 0, the default, writes as fast as
// the writers go).
//
// The package has no production code; it must never be imported.
package migrate
