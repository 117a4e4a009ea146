package migrate

import (
	"strconv"
	"strings"
)

// numSlots is the number of hash slots in a Redis Cluster.
const numSlots = 16384

// crcTable is CRC-16/XMODEM (polynomial 0x1021), the checksum Redis Cluster
// hashes keys with.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

func crc16(s string) uint16 {
	var c uint16
	for i := 0; i < len(s); i++ {
		c = c<<8 ^ crcTable[byte(c>>8)^s[i]]
	}
	return c
}

// keySlot returns the hash slot of key, honouring a {hash tag}.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) % numSlots)
}

// slotTags returns, for every slot, a short string that hashes to it, so a
// checkpoint key "{tag}" can be placed in any slot.
func slotTags() []string {
	tags := make([]string, numSlots)
	left := numSlots
	for i := 0; left > 0; i++ {
		s := strconv.FormatInt(int64(i), 36)
		if sl := int(crc16(s) % numSlots); tags[sl] == "" {
			tags[sl] = s
			left--
		}
	}
	return tags
}

// SlotRange is an inclusive range of hash slots.
type SlotRange struct {
	Start int `json:"start"`
	End   int `json:"end"`
}

// String returns "start-end", or "start" for a single slot; it is the ID of
// a cluster source shard.
func (r SlotRange) String() string {
	if r.Start == r.End {
		return strconv.Itoa(r.Start)
	}
	return strconv.Itoa(r.Start) + "-" + strconv.Itoa(r.End)
}
