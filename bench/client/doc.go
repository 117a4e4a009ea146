// Package clientbench holds the benchmarks of the R2M Go client (package
// client), run against real servers started by internal/testenv:
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 30m ./bench/client/
//
// BenchmarkThroughput compares GET and SET at pipeline depth 1 and 16 with
// 50 concurrent workers for the R2M client, raw rueidis, raw go-redis and
// redis-benchmark, in one run against the same cluster, and prints the
// ratios. BenchmarkHotKey compares a read-heavy hot-key workload with and
// without client-side caching. BenchmarkNewClose measures New+Close with and
// without an already-shared coordinator session. BenchmarkPropagation
// measures, for 1,000 clients, the time from the compare-and-set of a
// topology record to each client's topology event, in one process and
// across four. docs/client.md reports the numbers.
//
// The code is in _test.go files because testenv may only be imported from
// tests.
package clientbench
