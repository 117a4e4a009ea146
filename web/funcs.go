package web

import (
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// funcs are the helpers templates use.
var funcs = template.FuncMap{
	"bytes":   humanBytes,
	"ago":     ago,
	"when":    when,
	"json":    toJSON,
	"join":    strings.Join,
	"upper":   strings.ToUpper,
	"pct":     pct,
	"float":   formatFloat,
	"slots":   countSlots,
	"add":     func(a, b int) int { return a + b },
	"stateOf": stateClass,
	"short":   shortID,
	"cid":     clientID,
	"plural":  plural,
	"now":     time.Now,
	// seriesPath tells app.js where the monitoring history is (metrics.go).
	"seriesPath": func() string { return seriesPath },
}

// humanBytes prints a byte count in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// formatFloat prints a float compactly: no trailing zeros, two decimals
// below 10, one below 100, none above.
func formatFloat(v float64) string {
	prec := 2
	switch a := math.Abs(v); {
	case a >= 100:
		prec = 0
	case a >= 10:
		prec = 1
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if prec == 0 {
		return s
	}
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		s = "0"
	}
	return s
}

// ago prints how long ago t was, coarsely ("12s ago", "3m ago").
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// when prints a time in UTC, to the second.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// toJSON encodes v for a data attribute (html/template escapes it there).
func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// pct is done/total as a whole percentage.
func pct(done, total int) int {
	if total <= 0 {
		return 0
	}
	return done * 100 / total
}

// countSlots adds up slot ranges such as "0-5460" and "7".
func countSlots(ranges []string) int {
	n := 0
	for _, r := range ranges {
		if s, e, ok := parseRange(r); ok {
			n += e - s + 1
		}
	}
	return n
}

// parseRange reads "a-b" or "a" as an inclusive slot range.
func parseRange(r string) (start, end int, ok bool) {
	a, b, found := strings.Cut(strings.TrimSpace(r), "-")
	s, err := strconv.Atoi(a)
	if err != nil {
		return 0, 0, false
	}
	e := s
	if found {
		if e, err = strconv.Atoi(b); err != nil {
			return 0, 0, false
		}
	}
	if s < 0 || e >= numSlots || e < s {
		return 0, 0, false
	}
	return s, e, true
}

// stateClass maps an operation state, a health, or a migration link's
// state or shard phase to a CSS class.
func stateClass(s string) string {
	switch s {
	case "ok", "succeeded", "active", "clean", "streaming", "stream":
		return "good"
	case "running", "pending", "creating", "adopting", "degraded", "paused", "cancelling", "pfail", "full-sync", "rdb", "connecting":
		return "warn"
	case "fail", "failed", "cancelled", "unknown", "unreachable", "blocked":
		return "bad"
	}
	return "neutral"
}

// shortID shortens a Redis node ID for a table.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// clientID shortens a client registration ID (128 random bits in hex)
// for a table; the full ID is in the cell's title.
func clientID(id string) string {
	if len(id) > 14 {
		return id[:12] + "…"
	}
	return id
}

// plural picks the singular or plural word for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
