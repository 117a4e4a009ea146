package rdb

// Module value opcodes (rdb.h RDB_MODULE_OPCODE_*).
const (
	moduleOpEOF    = 0
	moduleOpSint   = 1
	moduleOpUint   = 2
	moduleOpFloat  = 3
	moduleOpDouble = 4
	moduleOpString = 5
)

// Quicklist node containers (RDB_TYPE_LIST_QUICKLIST_2).
const (
	quicklistPlain  = 1
	quicklistPacked = 2
)

// skipValue consumes one value of type t, checking its framing (every
// length, count and nested string) but not the content of blobs such as
// listpacks: that is [DecodeValue]'s work.
func (r *reader) skipValue(t Type) error {
	switch t {
	case TypeString:
		return r.skipString()
	case TypeList, TypeSet:
		return r.skipStrings(1, 1, "elements")
	case TypeHash:
		return r.skipStrings(2, 2, "fields")
	case TypeZSet:
		n, err := r.readCount(2, "members")
		if err != nil {
			return err
		}
		for range n {
			if err := r.skipString(); err != nil {
				return err
			}
			if _, err := r.readStringDouble(); err != nil {
				return err
			}
		}
		return nil
	case TypeZSet2:
		n, err := r.readCount(9, "members")
		if err != nil {
			return err
		}
		for range n {
			if err := r.skipString(); err != nil {
				return err
			}
			if _, err := r.take(8); err != nil {
				return err
			}
		}
		return nil
	case TypeModule2:
		if _, err := r.readPlainLen("module id"); err != nil {
			return err
		}
		return r.skipModuleBody()
	case TypeHashZipmap, TypeListZiplist, TypeSetIntset, TypeZSetZiplist, TypeHashZiplist,
		TypeHashListpack, TypeZSetListpack, TypeSetListpack, TypeHashListpackExPre:
		return r.skipString()
	case TypeHashListpackEx:
		if _, err := r.take(8); err != nil { // minimum field expiry
			return err
		}
		return r.skipString()
	case TypeListQuicklist:
		return r.skipStrings(1, 1, "quicklist nodes")
	case TypeListQuicklist2:
		n, err := r.readCount(2, "quicklist nodes")
		if err != nil {
			return err
		}
		for range n {
			if _, err := r.quicklistContainer(); err != nil {
				return err
			}
			if err := r.skipString(); err != nil {
				return err
			}
		}
		return nil
	case TypeHashMetadataPreGA, TypeHashMetadata:
		if t == TypeHashMetadata {
			if _, err := r.take(8); err != nil {
				return err
			}
		}
		n, err := r.readCount(3, "fields")
		if err != nil {
			return err
		}
		for range n {
			if _, err := r.readPlainLen("field TTL"); err != nil {
				return err
			}
			if err := r.skipString(); err != nil {
				return err
			}
			if err := r.skipString(); err != nil {
				return err
			}
		}
		return nil
	case TypeStreamListpacks, TypeStreamListpacks2, TypeStreamListpacks3:
		return r.walkStream(t, nil)
	}
	return errAt(r.offset(), ErrCorrupt, "unknown value type %d", t)
}

// skipStrings consumes a count and count*per strings of at least minSize
// bytes per item.
func (r *reader) skipStrings(per, minSize int, what string) error {
	n, err := r.readCount(minSize, what)
	if err != nil {
		return err
	}
	for range n {
		for range per {
			if err := r.skipString(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *reader) quicklistContainer() (uint64, error) {
	at := r.offset()
	c, err := r.readPlainLen("quicklist container")
	if err != nil {
		return 0, err
	}
	if c != quicklistPlain && c != quicklistPacked {
		return 0, errAt(at, ErrCorrupt, "quicklist node container %d, want 1 (plain) or 2 (packed)", c)
	}
	return c, nil
}

// readStringDouble reads a double of a type-3 zset: a length byte and ASCII,
// with 253, 254 and 255 standing for NaN, +inf and -inf. It returns the
// ASCII (or "nan", "inf", "-inf").
func (r *reader) readStringDouble() ([]byte, error) {
	n, err := r.byte1()
	if err != nil {
		return nil, err
	}
	switch n {
	case 253:
		return []byte("nan"), nil
	case 254:
		return []byte("inf"), nil
	case 255:
		return []byte("-inf"), nil
	}
	return r.take(int(n))
}

// skipModuleBody consumes a module's opcode-annotated values through their
// EOF opcode (rdbLoadCheckModuleValue). Each iteration consumes at least one
// byte, so the loop ends with the input.
func (r *reader) skipModuleBody() error {
	for {
		_, err := r.moduleField(false)
		if err == errModuleEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
