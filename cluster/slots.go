package cluster

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// NumSlots is the number of hash slots in a Redis Cluster.
const NumSlots = 16384

// SlotRange is an inclusive range of slots.
type SlotRange struct {
	Start, End int
}

// Len returns the number of slots in r.
func (r SlotRange) Len() int { return r.End - r.Start + 1 }

func (r SlotRange) String() string {
	if r.Start == r.End {
		return strconv.Itoa(r.Start)
	}
	return fmt.Sprintf("%d-%d", r.Start, r.End)
}

// Ranges compresses a list of slots into sorted inclusive ranges.
func Ranges(slots []int) []SlotRange {
	s := slices.Clone(slots)
	slices.Sort(s)
	s = slices.Compact(s)
	var out []SlotRange
	for _, x := range s {
		if n := len(out); n > 0 && out[n-1].End+1 == x {
			out[n-1].End = x
			continue
		}
		out = append(out, SlotRange{x, x})
	}
	return out
}

// Expand lists every slot of the ranges in order.
func Expand(rs []SlotRange) []int {
	var out []int
	for _, r := range rs {
		for s := r.Start; s <= r.End; s++ {
			out = append(out, s)
		}
	}
	return out
}

// FormatRanges prints ranges the way redis-cli does ("0-99,200").
func FormatRanges(rs []SlotRange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// KeySlot returns the hash slot of key, honouring {hash tags}, as Redis
// computes it.
func KeySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % NumSlots)
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021), the variant Redis Cluster
// uses for key slots.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
