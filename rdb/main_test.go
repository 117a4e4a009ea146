package rdb_test

import (
	"testing"

	"github.com/r2m-go/r2m/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
