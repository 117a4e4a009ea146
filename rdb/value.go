package rdb

import (
	"fmt"
	"strconv"
)

// Value is the decoded view of a value: String, List, Set, ZSet, Hash,
// *Stream or *Module. Integers stored in compact encodings come out as their
// decimal text, as Redis returns them.
type Value interface{ Kind() Kind }

// String is a string value.
type String string

// List is a list, head first.
type List []string

// Set is a set's members in the order the encoding stores them.
type Set []string

// ZSet is a sorted set's members in the order the encoding stores them
// (ascending for listpacks and ziplists, descending for type 5).
type ZSet []ZMember

// ZMember is one member of a sorted set.
type ZMember struct {
	Member string
	Score  float64
}

// Hash is a hash's fields in the order the encoding stores them.
type Hash []HashField

// HashField is one field of a hash. ExpireAt is the field's absolute expiry
// in Unix milliseconds (Redis 7.4 hash field TTLs), or 0 for none.
type HashField struct {
	Field, Value string
	ExpireAt     int64
}

func (String) Kind() Kind  { return KindString }
func (List) Kind() Kind    { return KindList }
func (Set) Kind() Kind     { return KindSet }
func (ZSet) Kind() Kind    { return KindZSet }
func (Hash) Kind() Kind    { return KindHash }
func (*Stream) Kind() Kind { return KindStream }
func (*Module) Kind() Kind { return KindModule }

// StreamID is a stream entry ID.
type StreamID struct{ Ms, Seq uint64 }

func (id StreamID) String() string {
	return strconv.FormatUint(id.Ms, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// Stream is a stream with its consumer groups. Fields that an older stream
// encoding does not store are -1 (EntriesRead, ActiveTime) or zero (FirstID,
// MaxDeletedID, EntriesAdded); Redis derives them when it loads such a value.
type Stream struct {
	Entries      []StreamEntry
	Length       uint64
	LastID       StreamID
	FirstID      StreamID // type 19 and 21
	MaxDeletedID StreamID // type 19 and 21
	EntriesAdded uint64   // type 19 and 21
	Groups       []StreamGroup
}

// StreamEntry is one entry; Fields alternates names and values.
type StreamEntry struct {
	ID     StreamID
	Fields []string
}

// StreamGroup is a consumer group.
type StreamGroup struct {
	Name        string
	LastID      StreamID
	EntriesRead int64 // -1 when not stored (type 15) or unknown
	Pending     []StreamPending
	Consumers   []StreamConsumer
}

// StreamPending is an entry of a group's pending entries list.
type StreamPending struct {
	ID            StreamID
	DeliveryTime  int64 // Unix ms
	DeliveryCount uint64
}

// StreamConsumer is a consumer of a group and the IDs pending for it.
type StreamConsumer struct {
	Name       string
	SeenTime   int64 // Unix ms
	ActiveTime int64 // Unix ms; -1 when not stored (before type 21)
	Pending    []StreamID
}

// Module is a module value, kept in the module's own serialization. It can
// only be restored on a server that loads the module.
type Module struct {
	// ID holds the module type's name and encoding version; see
	// [ModuleName] and [ModuleEncVer].
	ID uint64
	// Fields are the annotated values the module wrote.
	Fields []ModuleField
	// Size is the serialized size of the value in bytes.
	Size int
}

// ModuleField is one annotated value of a module: Op is 1 (signed) or 2
// (unsigned integer, in Uint), 3 (float) or 4 (double, in Float), or 5
// (string, in String).
type ModuleField struct {
	Op     int
	Uint   uint64
	Float  float64
	String []byte
}

// String describes the value the way librdb's JSON output does.
func (m *Module) String() string {
	return fmt.Sprintf("<Content of Module '%s'. Occupies a serialized size of %d bytes>", ModuleName(m.ID), m.Size)
}

const moduleCharset = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// ModuleName returns the 9-character type name encoded in a module id (the
// top 54 bits, 6 bits a character; redis module.c moduleTypeNameByID).
func ModuleName(id uint64) string {
	var name [9]byte
	id >>= 10
	for j := 8; j >= 0; j-- {
		name[j] = moduleCharset[id&63]
		id >>= 6
	}
	return string(name[:])
}

// ModuleEncVer returns the encoding version in a module id (the low 10 bits).
func ModuleEncVer(id uint64) int { return int(id & 1023) }
