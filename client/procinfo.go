package client

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// processInfo is what every registration record says about the process.
type processInfo struct {
	host  string
	pid   int
	start time.Time
}

// initTime stands in for the process start time where /proc cannot tell it.
var initTime = time.Now()

// procInfo is computed once per process and never changes afterwards.
var procInfo = sync.OnceValue(func() processInfo {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	start, ok := procStart()
	if !ok {
		start = initTime
	}
	return processInfo{host: host, pid: os.Getpid(), start: start.UTC().Truncate(time.Millisecond)}
})

// procStart reads the process start time from Linux's /proc: field 22 of
// /proc/self/stat is the start in clock ticks after boot, and "btime" in
// /proc/stat is the boot time. USER_HZ is 100 on every architecture Go
// supports on Linux.
func procStart() (time.Time, bool) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return time.Time{}, false
	}
	// The command name (field 2) is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return time.Time{}, false
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is field 3 (state), so field 22 is fields[19].
	if len(fields) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	all, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(all), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			const userHZ = 100
			return time.Unix(boot, 0).Add(time.Duration(ticks) * time.Second / userHZ), true
		}
	}
	return time.Time{}, false
}

// newID returns a fresh client id: 128 random bits in hex, a valid
// meta name.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// goid returns the id of the calling goroutine, parsed from the first line
// of its stack trace ("goroutine 123 [running]:"). Go offers no API for it on
// purpose; the client needs it for one thing only: Close must know whether
// it runs inside OnEvent, on the client's own event goroutine, because
// waiting for that goroutine from itself would never end. Close is rare, so
// the cost of a stack trace does not matter.
func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	s := strings.TrimPrefix(string(buf[:n]), "goroutine ")
	if i := strings.IndexByte(s, ' '); i > 0 {
		s = s[:i]
	}
	id, _ := strconv.ParseUint(s, 10, 64)
	return id
}
