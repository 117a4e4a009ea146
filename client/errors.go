package client

import (
	"errors"
	"fmt"

	"github.com/redis/rueidis"
)

// Errors that callers branch on with errors.Is.
var (
	// ErrClosed is returned by commands issued after Close has begun. It
	// wraps rueidis.ErrClosing, so code written for rueidis recognises it.
	ErrClosed = fmt.Errorf("client: closed: %w", rueidis.ErrClosing)
	// ErrNoCluster: the app record names no active cluster, or the cluster's
	// topology record lists no nodes, so there is nothing to connect to.
	ErrNoCluster = errors.New("client: no cluster to connect to")
)
