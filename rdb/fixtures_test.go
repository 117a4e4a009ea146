package rdb_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/r2m-go/r2m/rdb"
)

// parsed is everything an RDB file held.
type parsed struct {
	version   int
	aux       map[string]string
	keys      []*rdb.Key
	functions []string
	slots     []rdb.SlotInfo
	modAux    []*rdb.ModuleAux
	dbs       []int // SELECTDB order
}

func (p *parsed) key(db int, name string) *rdb.Key {
	for _, k := range p.keys {
		if k.DB == db && k.Key == name {
			return k
		}
	}
	return nil
}

// parseRDB parses all of data with the given options; it returns what was
// parsed before an error, and the error.
func parseRDB(data []byte, opts rdb.Options) (*parsed, error) {
	out := &parsed{aux: map[string]string{}}
	p, err := rdb.NewParser(bytes.NewReader(data), opts)
	if err != nil {
		return out, err
	}
	out.version = p.Version()
	for {
		rec, err := p.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		switch r := rec.(type) {
		case *rdb.Aux:
			out.aux[r.Key] = r.Value
		case *rdb.Key:
			out.keys = append(out.keys, r)
		case *rdb.Function:
			out.functions = append(out.functions, r.Code)
		case *rdb.SlotInfo:
			out.slots = append(out.slots, *r)
		case *rdb.ModuleAux:
			out.modAux = append(out.modAux, r)
		case *rdb.SelectDB:
			out.dbs = append(out.dbs, r.DB)
		}
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCRC64CheckValue(t *testing.T) {
	if got := rdb.CRC64(0, []byte("123456789")); got != 0xe9c6d914c4b8d9ca {
		t.Fatalf("CRC64(123456789) = %016x, want e9c6d914c4b8d9ca", got)
	}
	// Incremental use gives the same value as one call.
	if got := rdb.CRC64(rdb.CRC64(0, []byte("1234")), []byte("56789")); got != 0xe9c6d914c4b8d9ca {
		t.Fatalf("incremental CRC64 = %016x, want e9c6d914c4b8d9ca", got)
	}
}

// TestFixturesParse parses every fixture file, decoding every value, and
// checks the facts each file was made to show.
func TestFixturesParse(t *testing.T) {
	files, err := filepath.Glob("testdata/*.rdb")
	if err != nil || len(files) < 40 {
		t.Fatalf("fixtures: %d files, %v", len(files), err)
	}
	failing := map[string]error{
		"future_v19.rdb":        rdb.ErrUnsupportedVersion,
		"invalid_chksum_v8.rdb": rdb.ErrChecksum,
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			data := readFixture(t, name)
			p, err := parseRDB(data, rdb.Options{Validate: true})
			if want, ok := failing[name]; ok {
				if !errors.Is(err, want) {
					t.Fatalf("parse: %v, want %v", err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			for _, k := range p.keys {
				checkPayloadRoundTrip(t, k)
			}
			if check := fixtureFacts[name]; check != nil {
				check(t, p)
			}
		})
	}
}

// checkPayloadRoundTrip: the key's DUMP payload splits back into its parts
// and decodes to the same value.
func checkPayloadRoundTrip(t *testing.T, k *rdb.Key) {
	t.Helper()
	typ, raw, ver, err := rdb.ParsePayload(k.Dump())
	if err != nil || typ != k.Type || ver != k.Version || !bytes.Equal(raw, k.Value) {
		t.Fatalf("key %q: ParsePayload(Dump()) = %v, %d bytes, v%d, %v; want %v, %d bytes, v%d",
			k.Key, typ, len(raw), ver, err, k.Type, len(k.Value), k.Version)
	}
}

var fixtureFacts = map[string]func(*testing.T, *parsed){
	"empty.rdb": func(t *testing.T, p *parsed) {
		if len(p.keys) != 0 || p.version != 11 {
			t.Fatalf("empty.rdb: %d keys, version %d; want 0 keys, version 11", len(p.keys), p.version)
		}
	},
	"cluster_slot_info.rdb": func(t *testing.T, p *parsed) {
		if len(p.slots) != 1 || p.slots[0] != (rdb.SlotInfo{Slot: 7638, Keys: 1, Expires: 0}) {
			t.Fatalf("SLOT_INFO records = %+v, want one {7638 1 0}", p.slots)
		}
		wantString(t, p, 0, "abc", "abc")
	},
	"function.rdb": func(t *testing.T, p *parsed) {
		if len(p.functions) != 1 || !strings.HasPrefix(p.functions[0], "#!lua name=mylib") {
			t.Fatalf("functions = %q, want one library mylib", p.functions)
		}
	},
	"function2.rdb": func(t *testing.T, p *parsed) {
		if len(p.functions) != 2 || len(p.keys) != 10 {
			t.Fatalf("%d functions and %d keys, want 2 and 10", len(p.functions), len(p.keys))
		}
	},
	"mem_policy_lfu.rdb": func(t *testing.T, p *parsed) {
		k := p.key(0, "abcdefghijk")
		if k == nil || k.Freq != 5 || k.Idle != -1 {
			t.Fatalf("LFU key = %+v, want Freq 5 and Idle -1", k)
		}
	},
	"mem_policy_lru.rdb": func(t *testing.T, p *parsed) {
		k := p.key(0, "abcdefghijk")
		if k == nil || k.Idle != 24 || k.Freq != -1 {
			t.Fatalf("LRU key = %+v, want Idle 24 and Freq -1", k)
		}
	},
	"set_expired_v11.rdb": func(t *testing.T, p *parsed) {
		if k := p.key(0, "mykey"); k == nil || k.ExpireAt != 1692540290000 {
			t.Fatalf("mykey = %+v, want ExpireAt 1692540290000", k)
		}
	},
	"set_not_expired_v11.rdb": func(t *testing.T, p *parsed) {
		if k := p.key(0, "mykey"); k == nil || k.ExpireAt != 3692539827000 {
			t.Fatalf("mykey = %+v, want ExpireAt 3692539827000", k)
		}
	},
	"string_lzf.rdb": func(t *testing.T, p *parsed) {
		wantString(t, p, 0, "xxxxxxxxxxxxxxxxxxxxxxxxxx", strings.Repeat("A", 64))
		wantString(t, p, 0, strings.Repeat("y", 50), strings.Repeat("B", 116))
	},
	"string_int_encoded.rdb": func(t *testing.T, p *parsed) {
		if len(p.keys) != 57 {
			t.Fatalf("%d keys, want 57", len(p.keys))
		}
		for _, k := range p.keys { // every key is "str::<n>" holding n
			wantString(t, p, 0, k.Key, strings.TrimPrefix(k.Key, "str::"))
		}
	},
	"redis_ent_opcode_ram_lru.rdb": func(t *testing.T, p *parsed) {
		for _, kv := range [][2]string{{"a", "b"}, {"e", "f"}, {"c", "d"}} {
			wantString(t, p, 0, kv[0], kv[1])
		}
	},
	"module_aux_v12.rdb": func(t *testing.T, p *parsed) {
		if len(p.modAux) != 2 || p.modAux[0].When != 1 || p.modAux[1].When != 2 {
			t.Fatalf("module aux = %+v, want one before and one after the keyspace", p.modAux)
		}
		v := decode(t, p.key(0, "mykey"))
		m, ok := v.(*rdb.Module)
		if !ok || rdb.ModuleName(m.ID) != "test__rdb" || len(m.Fields) != 4 || m.Fields[2].Float != 1.5 {
			t.Fatalf("mykey = %#v, want a test__rdb module value with float 1.5", v)
		}
	},
	"script.rdb": func(t *testing.T, p *parsed) {
		if p.aux["lua"] != "return 'Hello from Lua!'" {
			t.Fatalf("lua AUX = %q", p.aux["lua"])
		}
	},
	"misc_with_stream.rdb": func(t *testing.T, p *parsed) {
		v := decode(t, p.key(0, "stream1"))
		s, ok := v.(*rdb.Stream)
		if !ok || len(s.Entries) == 0 || s.Entries[0].ID != (rdb.StreamID{Ms: 1}) {
			t.Fatalf("stream1 = %#v, want entries from 1-0", v)
		}
	},
}

func decode(t *testing.T, k *rdb.Key) rdb.Value {
	t.Helper()
	if k == nil {
		t.Fatal("key missing")
	}
	v, err := k.Decode()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantString(t *testing.T, p *parsed, db int, key, want string) {
	t.Helper()
	k := p.key(db, key)
	if k == nil {
		t.Fatalf("key %q missing in db %d", key, db)
	}
	if v := decode(t, k); v != rdb.String(want) {
		t.Fatalf("key %q = %#v, want %q", key, v, want)
	}
}

// jsonFor pairs each expected-contents file with its dump.
var jsonFor = map[string]string{
	"hash_data.json":                   "hash_v3.rdb",
	"plain_hash_data.json":             "hash_v3.rdb",
	"hash_ex_v12_data.json":            "hash_with_expire_v12.rdb",
	"hash_lp_ex_v12_data.json":         "hash_lp_with_hexpire_v12.rdb",
	"hash_lp_v11_data.json":            "hash_lp_v11.rdb",
	"hash_zl_v6_data.json":             "hash_zl_v6.rdb",
	"hash_zm_v2_data.json":             "hash_zm_v2.rdb",
	"module_aux_data.json":             "module_aux.rdb",
	"module_data.json":                 "module.rdb",
	"multiple_dbs_data.json":           "multiple_dbs.rdb",
	"multiple_lists_strings_data.json": "multiple_lists_strings.rdb",
	"plain_list_v6_data.json":          "plain_list_v6.rdb",
	"plain_set_v6_data.json":           "plain_set_v6.rdb",
	"plain_zset_2_v11_data.json":       "plain_zset_2_v11.rdb",
	"plain_zset_v6_data.json":          "plain_zset_v6.rdb",
	"quicklist_data.json":              "quicklist.rdb",
	"set_is_v11_data.json":             "set_is_v11.rdb",
	"set_lp_v11_data.json":             "set_lp_v11.rdb",
	"single_key_data.json":             "single_key.rdb",
	"single_list_data.json":            "quicklist2_v11.rdb",
	"stream_data.json":                 "stream_v11.rdb",
	"ziplist_data.json":                "ziplist_v3.rdb",
	"zset_lp_v11_data.json":            "zset_lp_v11.rdb",
	"zset_zl_v6_data.json":             "zset_zl_v6.rdb",
}

// TestFixturesMatchJSON compares every dump that has expected contents with
// them: keys, values and AUX fields.
func TestFixturesMatchJSON(t *testing.T) {
	jsons, _ := filepath.Glob("testdata/*_data.json")
	if len(jsons) != len(jsonFor) {
		t.Fatalf("%d *_data.json files, %d paired: pair every file", len(jsons), len(jsonFor))
	}
	for js, dump := range jsonFor {
		t.Run(js, func(t *testing.T) {
			dbs := loadExpected(t, js)
			p, err := parseRDB(readFixture(t, dump), rdb.Options{Validate: true})
			if err != nil {
				t.Fatalf("parse %s: %v", dump, err)
			}
			total := 0
			for i, want := range dbs {
				db := 0 // one object: the file's only database, whatever its number
				if len(p.dbs) > 0 {
					db = p.dbs[i]
				}
				for name, raw := range want {
					if name == "__aux__" {
						var aux map[string]string
						if err := json.Unmarshal(raw, &aux); err != nil {
							t.Fatal(err)
						}
						for k, v := range aux {
							if p.aux[k] != v {
								t.Errorf("AUX %s = %q, want %q", k, p.aux[k], v)
							}
						}
						continue
					}
					total++
					k := p.key(db, name)
					if k == nil {
						t.Fatalf("key %q missing from db %d", name, db)
					}
					compareJSON(t, name, decode(t, k), raw)
				}
			}
			if len(p.keys) != total {
				t.Fatalf("%s holds %d keys, %s lists %d", dump, len(p.keys), js, total)
			}
		})
	}
}

// loadExpected reads a JSON fragment: members of one object, or an array of
// objects (one per database).
func loadExpected(t *testing.T, name string) []map[string]json.RawMessage {
	t.Helper()
	text := strings.TrimSpace(string(readFixture(t, name)))
	var dbs []map[string]json.RawMessage
	if strings.HasPrefix(text, "[") {
		if err := json.Unmarshal([]byte(text), &dbs); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return dbs
	}
	var one map[string]json.RawMessage
	if err := json.Unmarshal([]byte("{"+text+"}"), &one); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return []map[string]json.RawMessage{one}
}

func compareJSON(t *testing.T, key string, got rdb.Value, raw json.RawMessage) {
	t.Helper()
	switch v := got.(type) {
	case rdb.String:
		var want string
		mustUnmarshal(t, raw, &want)
		if string(v) != want {
			t.Errorf("%s = %q, want %q", key, v, want)
		}
	case *rdb.Module:
		var want string
		mustUnmarshal(t, raw, &want)
		if v.String() != want {
			t.Errorf("%s = %q, want %q", key, v.String(), want)
		}
	case rdb.List:
		var want []string
		mustUnmarshal(t, raw, &want)
		if !slices.Equal([]string(v), want) {
			t.Errorf("%s = %q, want %q", key, v, want)
		}
	case rdb.Set:
		var want []string
		mustUnmarshal(t, raw, &want)
		g := slices.Clone([]string(v))
		sort.Strings(g)
		sort.Strings(want)
		if !slices.Equal(g, want) {
			t.Errorf("%s = %q, want %q", key, g, want)
		}
	case rdb.Hash:
		var want map[string]string
		mustUnmarshal(t, raw, &want)
		g := map[string]string{}
		for _, f := range v {
			g[f.Field] = f.Value
		}
		if !mapsEqual(g, want) {
			t.Errorf("%s = %v, want %v", key, g, want)
		}
	case rdb.ZSet:
		var want map[string]string
		mustUnmarshal(t, raw, &want)
		if len(v) != len(want) {
			t.Errorf("%s has %d members, want %d", key, len(v), len(want))
		}
		for _, m := range v {
			w, err := strconv.ParseFloat(want[m.Member], 64)
			if err != nil || !(w == m.Score || math.IsNaN(w) && math.IsNaN(m.Score)) {
				t.Errorf("%s member %q score %v, want %q", key, m.Member, m.Score, want[m.Member])
			}
		}
	case *rdb.Stream:
		var want struct {
			Entries []struct {
				ID    string            `json:"id"`
				Items map[string]string `json:"items"`
			} `json:"entries"`
		}
		mustUnmarshal(t, raw, &want)
		if len(v.Entries) != len(want.Entries) {
			t.Fatalf("%s has %d entries, want %d", key, len(v.Entries), len(want.Entries))
		}
		for i, e := range v.Entries {
			items := map[string]string{}
			for j := 0; j+1 < len(e.Fields); j += 2 {
				items[e.Fields[j]] = e.Fields[j+1]
			}
			if e.ID.String() != want.Entries[i].ID || !mapsEqual(items, want.Entries[i].Items) {
				t.Errorf("%s entry %d = %s %v, want %s %v", key, i, e.ID, items, want.Entries[i].ID, want.Entries[i].Items)
			}
		}
	default:
		t.Errorf("%s: unexpected value %T", key, got)
	}
}

func mustUnmarshal(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestFixtureErrors: the two bad fixtures fail with errors that say what is
// wrong, and where.
func TestFixtureErrors(t *testing.T) {
	_, err := parseRDB(readFixture(t, "future_v19.rdb"), rdb.Options{})
	// The fixture's header is REDIS0099, whatever its name says.
	if !errors.Is(err, rdb.ErrUnsupportedVersion) || !strings.Contains(err.Error(), "unsupported RDB version 99") {
		t.Errorf("future_v19.rdb: %v, want unsupported RDB version 99", err)
	}
	v19 := append([]byte("REDIS0019"), readFixture(t, "future_v19.rdb")[9:]...)
	if _, err := parseRDB(v19, rdb.Options{}); !errors.Is(err, rdb.ErrUnsupportedVersion) ||
		!strings.Contains(err.Error(), "unsupported RDB version 19") {
		t.Errorf("REDIS0019: %v, want unsupported RDB version 19", err)
	}

	data := readFixture(t, "invalid_chksum_v8.rdb")
	p, err := parseRDB(data, rdb.Options{})
	var re *rdb.Error
	if !errors.Is(err, rdb.ErrChecksum) || !errors.As(err, &re) {
		t.Fatalf("invalid_chksum_v8.rdb: %v, want a checksum error", err)
	}
	computed := rdb.CRC64(0, data[:len(data)-8])
	stored := data[len(data)-8:]
	wantMsg := "expected " + strconv.FormatUint(computed, 16)
	if re.Offset != int64(len(data)-8) || !strings.Contains(err.Error(), wantMsg) || !strings.Contains(err.Error(), "got b477e446e98e5402") {
		t.Errorf("checksum error %q (offset %d): want offset %d, %q and the trailer %x", err, re.Offset, len(data)-8, wantMsg, stored)
	}
	// The keys before the trailer were all delivered.
	if len(p.keys) != 3 {
		t.Errorf("%d keys before the checksum error, want 3", len(p.keys))
	}
}
