package rdb

import "strconv"

// Type is the type byte that precedes a key in an RDB file and leads a DUMP
// payload: it names both the data type and its serialized encoding.
type Type byte

// Value types, as defined by Redis's rdb.h (7.4 and librdb). 6 and 8 are not
// valid: 6 was the module type of the 4.0 release candidates, which no GA
// Redis loads, and 8 was never assigned.
const (
	TypeString            Type = 0
	TypeList              Type = 1
	TypeSet               Type = 2
	TypeZSet              Type = 3 // scores as ASCII strings
	TypeHash              Type = 4
	TypeZSet2             Type = 5 // scores as binary doubles (RDB 8+)
	TypeModulePreGA       Type = 6 // rejected, as Redis does
	TypeModule2           Type = 7
	TypeHashZipmap        Type = 9
	TypeListZiplist       Type = 10
	TypeSetIntset         Type = 11
	TypeZSetZiplist       Type = 12
	TypeHashZiplist       Type = 13
	TypeListQuicklist     Type = 14
	TypeStreamListpacks   Type = 15
	TypeHashListpack      Type = 16
	TypeZSetListpack      Type = 17
	TypeListQuicklist2    Type = 18
	TypeStreamListpacks2  Type = 19
	TypeSetListpack       Type = 20
	TypeStreamListpacks3  Type = 21
	TypeHashMetadataPreGA Type = 22 // hash with field TTLs, absolute TTLs (7.4 RC)
	TypeHashListpackExPre Type = 23 // listpack hash with field TTLs (7.4 RC)
	TypeHashMetadata      Type = 24 // hash with field TTLs, TTLs relative to a minimum
	TypeHashListpackEx    Type = 25 // listpack hash with field TTLs, with a minimum TTL prefix
)

// Opcodes that are not value types.
const (
	opRAMLRU    = 107 // Redis Enterprise: an LRU hint before a key; ignored like librdb does
	opSlotInfo  = 244 // RDB 12, cluster mode: slot, keys in slot, expires in slot
	opFunction2 = 245 // a function library: its source code
	opFunction  = 246 // 7.0-rc1/rc2 function format; Redis 7.0 GA refuses it too
	opModuleAux = 247
	opIdle      = 248
	opFreq      = 249
	opAux       = 250
	opResizeDB  = 251
	opExpireMs  = 252
	opExpire    = 253
	opSelectDB  = 254
	opEOF       = 255
)

// MaxVersion is the newest RDB format version this package reads (Redis 7.4
// to 8.4 write 12).
const MaxVersion = 12

var typeNames = map[Type]string{
	TypeString:            "string",
	TypeList:              "list",
	TypeSet:               "set",
	TypeZSet:              "zset",
	TypeHash:              "hash",
	TypeZSet2:             "zset-2",
	TypeModulePreGA:       "module-pre-ga",
	TypeModule2:           "module-2",
	TypeHashZipmap:        "hash-zipmap",
	TypeListZiplist:       "list-ziplist",
	TypeSetIntset:         "set-intset",
	TypeZSetZiplist:       "zset-ziplist",
	TypeHashZiplist:       "hash-ziplist",
	TypeListQuicklist:     "list-quicklist",
	TypeStreamListpacks:   "stream-listpacks",
	TypeHashListpack:      "hash-listpack",
	TypeZSetListpack:      "zset-listpack",
	TypeListQuicklist2:    "list-quicklist-2",
	TypeStreamListpacks2:  "stream-listpacks-2",
	TypeSetListpack:       "set-listpack",
	TypeStreamListpacks3:  "stream-listpacks-3",
	TypeHashMetadataPreGA: "hash-metadata-pre-ga",
	TypeHashListpackExPre: "hash-listpack-ex-pre-ga",
	TypeHashMetadata:      "hash-metadata",
	TypeHashListpackEx:    "hash-listpack-ex",
}

// String names the type and its encoding, e.g. "list-quicklist-2".
func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "type-" + strconv.Itoa(int(t))
}

// Valid reports whether t is a value type this package can parse.
func (t Type) Valid() bool {
	_, ok := typeNames[t]
	return ok && t != TypeModulePreGA
}

// Kind is the Redis data type of a value, whatever its encoding.
type Kind int

// Kinds, one per Redis data type.
const (
	KindString Kind = iota + 1
	KindList
	KindSet
	KindZSet
	KindHash
	KindStream
	KindModule
)

var kindNames = [...]string{"", "string", "list", "set", "zset", "hash", "stream", "module"}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind-" + strconv.Itoa(int(k))
}

// Kind returns the data type a value of type t holds, or 0 for an invalid t.
func (t Type) Kind() Kind {
	switch t {
	case TypeString:
		return KindString
	case TypeList, TypeListZiplist, TypeListQuicklist, TypeListQuicklist2:
		return KindList
	case TypeSet, TypeSetIntset, TypeSetListpack:
		return KindSet
	case TypeZSet, TypeZSet2, TypeZSetZiplist, TypeZSetListpack:
		return KindZSet
	case TypeHash, TypeHashZipmap, TypeHashZiplist, TypeHashListpack,
		TypeHashMetadataPreGA, TypeHashListpackExPre, TypeHashMetadata, TypeHashListpackEx:
		return KindHash
	case TypeStreamListpacks, TypeStreamListpacks2, TypeStreamListpacks3:
		return KindStream
	case TypeModule2:
		return KindModule
	}
	return 0
}

// MinVersion returns the oldest RDB format version whose loader knows type
// t, or 0 for an invalid t. A DUMP payload of type t can be restored only on
// a server whose RDB version is at least this; [Convert] rewrites values for
// older targets. Where the exact version is unsure (the small encodings of
// Redis 2.x) the value errs high, which only causes a harmless conversion to
// a plain type.
func (t Type) MinVersion() int {
	switch t {
	case TypeString, TypeList, TypeSet, TypeZSet, TypeHash:
		return 1
	case TypeHashZipmap, TypeListZiplist, TypeSetIntset, TypeZSetZiplist:
		return 2
	case TypeHashZiplist:
		return 6
	case TypeListQuicklist:
		return 7
	case TypeZSet2, TypeModule2:
		return 8
	case TypeStreamListpacks:
		return 9
	case TypeHashListpack, TypeZSetListpack, TypeListQuicklist2, TypeStreamListpacks2:
		return 10
	case TypeSetListpack, TypeStreamListpacks3:
		return 11
	case TypeHashMetadataPreGA, TypeHashListpackExPre, TypeHashMetadata, TypeHashListpackEx:
		return 12
	}
	return 0
}
