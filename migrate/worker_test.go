package migrate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/r2m-go/r2m/migrate"
)

// workerEnv carries a worker's configuration (JSON) when the test binary
// re-executes itself as a link worker, so that a test can kill -9 a real
// process.
const workerEnv = "R2M_MIGRATE_TEST_WORKER"

type workerConfig struct {
	ID        string           `json:"id"`
	Source    migrate.Endpoint `json:"source"`
	Target    migrate.Endpoint `json:"target"`
	SpoolDir  string           `json:"spool_dir"`
	StateDir  string           `json:"state_dir"`
	Mode      migrate.Mode     `json:"mode"`
	RateLimit int              `json:"rate_limit"`
	StatsFile string           `json:"stats_file"`
	// SaveInterval is how often applied offsets are saved (0: default).
	SaveInterval time.Duration `json:"save_interval"`
}

func isWorker() bool { return os.Getenv(workerEnv) != "" }

// runWorker runs a link until SIGTERM (or a kill -9), writing its stats to
// StatsFile every 50 ms.
func runWorker() {
	var cfg workerConfig
	if err := json.Unmarshal([]byte(os.Getenv(workerEnv)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(2)
	}
	state, err := migrate.NewFileState(cfg.StateDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(2)
	}
	l, err := migrate.New(migrate.Options{
		ID: cfg.ID, Source: cfg.Source, Target: cfg.Target, SpoolDir: cfg.SpoolDir, State: state,
		Mode: cfg.Mode, RateLimit: cfg.RateLimit, ProgressEvery: 50 * time.Millisecond, SaveInterval: cfg.SaveInterval,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Progress: func(st migrate.Stats) {
			b, _ := json.Marshal(st)
			tmp := cfg.StatsFile + ".tmp"
			if os.WriteFile(tmp, b, 0o644) == nil {
				_ = os.Rename(tmp, cfg.StatsFile)
			}
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := l.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}
