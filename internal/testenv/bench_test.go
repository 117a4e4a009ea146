package testenv

import "testing"

// Start-up cost of each server, for docs/benchmarks.md:
//
//	go test -run '^$' -bench Start -benchtime 5x ./internal/testenv/

func BenchmarkStartRedis(b *testing.B) {
	for b.Loop() {
		s, err := startRedis(b.TempDir(), RedisOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Stop(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func BenchmarkStartRedisCluster3x1(b *testing.B) {
	for b.Loop() {
		c, err := startRedisCluster(b.TempDir(), ClusterOptions{Masters: 3, Replicas: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := c.stop(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func BenchmarkStartZooKeeper(b *testing.B) {
	for b.Loop() {
		z, err := startZooKeeper(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := z.Stop(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func BenchmarkStartEtcd(b *testing.B) {
	for b.Loop() {
		e, err := startEtcd(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := e.close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
