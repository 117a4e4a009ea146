package migrate_test

import (
	"testing"

	"github.com/r2m-go/r2m/internal/testenv"
)

func TestMain(m *testing.M) {
	if isWorker() {
		runWorker() // the kill -9 tests re-execute this binary as a link worker
		return
	}
	testenv.Main(m)
}
