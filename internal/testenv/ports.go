package testenv

import (
	"fmt"
	"net"
	"strconv"
)

// FreePort returns a loopback TCP port that was free a moment ago. Callers
// that bind it later must tolerate losing the race and retry with a new port;
// the starters in this package do.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testenv: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePortWithBus returns a port p such that p and p+10000 (the Redis Cluster
// bus port) are both free.
func freePortWithBus() (int, error) {
	for range 100 {
		p, err := FreePort()
		if err != nil {
			return 0, err
		}
		if p+10000 > 65535 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+10000)))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, fmt.Errorf("testenv: no port p with p and p+10000 both free after 100 tries")
}
