package rdb_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/r2m-go/r2m/internal/testenv"
	"github.com/r2m-go/r2m/rdb"
	"github.com/r2m-go/r2m/repl"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func dbClient(t *testing.T, s *testenv.RedisServer, db int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, DB: db, Protocol: 2, MaxRetries: -1, ReadTimeout: 10 * time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// goldenExpireAt is a fixed absolute expiry an hour or more ahead.
var goldenExpireAt = time.Now().Add(2*time.Hour).UnixMilli() / 1000 * 1000

// loadEveryType fills a Redis 7.0 server with every type in every encoding
// 7.0 writes, switching the encoding thresholds between keys.
func loadEveryType(t *testing.T, ctx context.Context, s *testenv.RedisServer) {
	t.Helper()
	c := dbClient(t, s, 0)
	do := func(args ...any) {
		t.Helper()
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return string(b)
	}

	// Strings: integer encodings, short, empty, binary, LZF, big.
	for k, v := range map[string]string{
		"str:int": "12345", "str:neg": "-7", "str:int8": "100", "str:int32": "2000000000",
		"str:bigint": "12345678901234", "str:short": "hello", "str:empty": "",
		"str:binary": "\x00\xff\r\n\x00", "str:lzf": strings.Repeat("abc", 100),
		"str:random": random(1 << 20), "str:compressible": strings.Repeat("redis rdb ", 100_000),
		strings.Repeat("long-compressible-key-", 4): "v",
	} {
		do("SET", k, v)
	}
	do("PEXPIREAT", "str:short", goldenExpireAt)
	do("PEXPIREAT", "str:random", goldenExpireAt+1)

	// Lists: one listpack node, many nodes, compressed nodes, plain nodes,
	// big entries, every listpack integer width.
	do("RPUSH", "list:small", "a", "b", "c", "1", "2", "-5", "1000000", "x")
	do("PEXPIREAT", "list:small", goldenExpireAt+2)
	big := []any{"RPUSH", "list:big"}
	for i := range 2000 {
		big = append(big, "element-"+strconv.Itoa(i))
	}
	do(big...)
	do("CONFIG", "SET", "list-compress-depth", "1")
	comp := []any{"RPUSH", "list:compressed"}
	for i := range 3000 {
		comp = append(comp, fmt.Sprintf("compressible text number %05d", i))
	}
	do(comp...)
	do("CONFIG", "SET", "list-compress-depth", "0")
	do("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1000")
	do("RPUSH", "list:plain", "small", strings.Repeat("P", 5000), "small2", random(3000))
	do("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1073741824")
	do("RPUSH", "list:bigentries", strings.Repeat("m", 200), random(20000), "tail")
	ints := []any{"RPUSH", "list:ints"}
	for _, v := range []int64{0, 127, 128, -1, 4095, -4096, 4096, 32767, -32768, 32768, 8388607, -8388608,
		8388608, 2147483647, -2147483648, 2147483648, math.MaxInt64, math.MinInt64} {
		ints = append(ints, strconv.FormatInt(v, 10))
	}
	do(ints...)

	// Sets: intsets of 16/32/64-bit members, hashtable sets.
	do("SADD", "set:int16", "1", "2", "3", "-4")
	do("SADD", "set:int64", "1", "-100", "70000", "5000000000")
	do("SADD", "set:strings", "a", "b", "c", "1.5")
	many := []any{"SADD", "set:manyints"}
	for i := range 600 {
		many = append(many, strconv.Itoa(i*7))
	}
	do(many...)

	// Sorted sets: listpack (with inf and fractional scores) and skiplist.
	do("ZADD", "zset:small", "1", "a", "2.5", "b", "-3", "c", "+inf", "d", "-inf", "e", "1e300", "f", "0.1", "g")
	zbig := []any{"ZADD", "zset:big"}
	for i := range 200 {
		zbig = append(zbig, float64(i)/3, "member-"+strconv.Itoa(i))
	}
	do(zbig...)
	do("ZADD", "zset:longmember", "1", strings.Repeat("L", 100), "2", "short")

	// Hashes: listpack and hashtable.
	do("HSET", "hash:small", "f1", "v1", "f2", "2", "f3", "-3", "f4", "")
	do("PEXPIREAT", "hash:small", goldenExpireAt+3)
	hbig := []any{"HSET", "hash:big"}
	for i := range 600 {
		hbig = append(hbig, "field-"+strconv.Itoa(i), "value-"+strconv.Itoa(i))
	}
	do(hbig...)
	do("HSET", "hash:longval", "f", strings.Repeat("V", 100), "g", "1")

	// Streams: several nodes, same-field and different-field entries,
	// deletions, consumer groups with PEL, consumers, claims.
	do("CONFIG", "SET", "stream-node-max-entries", "10")
	var ids []string
	for i := range 45 {
		args := []any{"XADD", "stream:s1", fmt.Sprintf("%d-%d", 1_700_000_000_000+i/3, i%3)}
		if i%4 == 3 {
			args = append(args, "other", strconv.Itoa(i), "n", "x")
		} else {
			args = append(args, "f1", "v"+strconv.Itoa(i), "f2", strconv.Itoa(i*1000))
		}
		id, err := c.Do(ctx, args...).Text()
		must(t, err)
		ids = append(ids, id)
	}
	do("XDEL", "stream:s1", ids[0], ids[5], ids[20])
	do("XGROUP", "CREATE", "stream:s1", "g1", "0")
	do("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "5", "STREAMS", "stream:s1", ">")
	do("XREADGROUP", "GROUP", "g1", "bob", "COUNT", "3", "STREAMS", "stream:s1", ">")
	do("XACK", "stream:s1", "g1", ids[1])
	do("XCLAIM", "stream:s1", "g1", "bob", "0", ids[2])
	do("XGROUP", "CREATE", "stream:s1", "g2", "$")
	do("XGROUP", "CREATECONSUMER", "stream:s1", "g2", "carol")
	do("XADD", "stream:empty", "5-1", "a", "1")
	do("XDEL", "stream:empty", "5-1")
	do("XGROUP", "CREATE", "stream:empty", "eg", "0")
	do("XADD", "stream:plain", "*", "k", "v")
	do("CONFIG", "SET", "stream-node-max-entries", "100")

	// Other databases and a function library.
	must(t, dbClient(t, s, 1).Set(ctx, "db1:key", "one", 0).Err())
	c5 := dbClient(t, s, 5)
	must(t, c5.HSet(ctx, "db5:hash", "a", "1", "b", "2").Err())
	must(t, c5.PExpireAt(ctx, "db5:hash", time.UnixMilli(goldenExpireAt+4)).Err())
	do("FUNCTION", "LOAD", "#!lua name=goldenlib\nredis.register_function('golden', function(keys, args) return 1 end)")
}

// goldenDBs are the databases loadEveryType writes.
var goldenDBs = []int{0, 1, 5}

// rdbFromSave runs SAVE and returns the file.
func rdbFromSave(t *testing.T, ctx context.Context, s *testenv.RedisServer) []byte {
	t.Helper()
	must(t, dbClient(t, s, 0).Save(ctx).Err())
	b, err := os.ReadFile(filepath.Join(s.Dir, "dump.rdb"))
	must(t, err)
	return b
}

// TestRedis70Golden parses an RDB that Redis 7.0 wrote, holding every type
// in every encoding 7.0 has, and checks each key against the server: the
// raw value bytes with a footer equal DUMP byte for byte, the encoding
// matches OBJECT ENCODING, the decoded value and the expiry equal what the
// server returns.
func TestRedis70Golden(t *testing.T) {
	ctx := ctxFor(t, 90*time.Second)
	src := testenv.StartRedis(t, testenv.RedisOptions{})
	loadEveryType(t, ctx, src)
	data := rdbFromSave(t, ctx, src)
	p, err := parseRDB(data, rdb.Options{Validate: true})
	must(t, err)
	checkAgainstServer(t, ctx, src, p)
}

// TestRedis70GoldenFromReplication: the RDB a source sends to a replica
// (through package repl, both framings) parses to the same checks.
func TestRedis70GoldenFromReplication(t *testing.T) {
	for _, diskless := range []string{"yes", "no"} {
		t.Run("repl-diskless-sync="+diskless, func(t *testing.T) {
			ctx := ctxFor(t, 90*time.Second)
			src := testenv.StartRedis(t, testenv.RedisOptions{Config: []string{"repl-diskless-sync " + diskless}})
			loadEveryType(t, ctx, src)
			conn, err := repl.Dial(ctx, src.Addr, repl.Options{})
			must(t, err)
			defer conn.Close()
			var spool bytes.Buffer
			_, err = spool.ReadFrom(conn.RDB())
			must(t, err)
			p, err := parseRDB(spool.Bytes(), rdb.Options{Validate: true})
			must(t, err)
			if p.aux["repl-id"] != conn.ReplID() || p.aux["repl-offset"] != strconv.FormatInt(conn.InitialOffset(), 10) {
				t.Errorf("AUX repl-id %q repl-offset %q; the link has %q at %d", p.aux["repl-id"], p.aux["repl-offset"], conn.ReplID(), conn.InitialOffset())
			}
			checkAgainstServer(t, ctx, src, p)
		})
	}
}

func checkAgainstServer(t *testing.T, ctx context.Context, s *testenv.RedisServer, p *parsed) {
	t.Helper()
	if p.version != 10 {
		t.Fatalf("Redis 7.0 wrote RDB version %d, want 10", p.version)
	}
	if p.aux["redis-ver"] == "" || p.aux["redis-bits"] != "64" {
		t.Errorf("AUX fields %v lack redis-ver or redis-bits 64", p.aux)
	}
	// First DUMP every key (reads could move a hashtable's rehashing on).
	for _, k := range p.keys {
		got, err := dbClient(t, s, k.DB).Dump(ctx, k.Key).Result()
		must(t, err)
		if want := k.Dump(); got != string(want) {
			t.Errorf("db%d %q (%s): our payload differs from DUMP (%d vs %d bytes)", k.DB, k.Key, k.Type, len(want), len(got))
		}
	}
	seen := map[rdb.Type]bool{}
	perDB := map[int]int{}
	for _, k := range p.keys {
		seen[k.Type] = true
		perDB[k.DB]++
		c := dbClient(t, s, k.DB)
		enc, err := c.ObjectEncoding(ctx, k.Key).Result()
		must(t, err)
		if want, ok := encodingType[k.Type.Kind().String()+"/"+enc]; !ok || want != k.Type {
			t.Errorf("%q: type %s, but OBJECT ENCODING says %s", k.Key, k.Type, enc)
		}
		exp, err := c.Do(ctx, "PEXPIRETIME", k.Key).Int64()
		must(t, err)
		if want := k.ExpireAt; exp != want {
			t.Errorf("%q: ExpireAt %d, PEXPIRETIME %d", k.Key, want, exp)
		}
		compareWithServer(t, ctx, c, k.Key, decode(t, k))
	}
	for _, db := range goldenDBs {
		n, err := dbClient(t, s, db).DBSize(ctx).Result()
		must(t, err)
		if int64(perDB[db]) != n {
			t.Errorf("db%d: %d keys parsed, DBSIZE %d", db, perDB[db], n)
		}
	}
	for _, typ := range []rdb.Type{rdb.TypeString, rdb.TypeSet, rdb.TypeHash, rdb.TypeZSet2, rdb.TypeSetIntset,
		rdb.TypeHashListpack, rdb.TypeZSetListpack, rdb.TypeListQuicklist2, rdb.TypeStreamListpacks2} {
		if !seen[typ] {
			t.Errorf("no key of type %s: the data misses an encoding", typ)
		}
	}
	if len(p.functions) != 1 || !strings.HasPrefix(p.functions[0], "#!lua name=goldenlib") {
		t.Errorf("functions = %q, want goldenlib", p.functions)
	}
}

// encodingType maps a Redis 7.0 "kind/OBJECT ENCODING" to the type byte
// that 7.0 writes for it.
var encodingType = map[string]rdb.Type{
	"string/int": rdb.TypeString, "string/embstr": rdb.TypeString, "string/raw": rdb.TypeString,
	"list/quicklist": rdb.TypeListQuicklist2,
	"set/intset":     rdb.TypeSetIntset, "set/hashtable": rdb.TypeSet,
	"zset/listpack": rdb.TypeZSetListpack, "zset/skiplist": rdb.TypeZSet2,
	"hash/listpack": rdb.TypeHashListpack, "hash/hashtable": rdb.TypeHash,
	"stream/stream": rdb.TypeStreamListpacks2,
}

// compareWithServer checks that v is what the server holds at key.
func compareWithServer(t *testing.T, ctx context.Context, c *redis.Client, key string, v rdb.Value) {
	t.Helper()
	typ, err := c.Type(ctx, key).Result()
	must(t, err)
	if typ != v.Kind().String() {
		t.Fatalf("%q: decoded a %s, server has a %s", key, v.Kind(), typ)
	}
	switch v := v.(type) {
	case rdb.String:
		got, err := c.Get(ctx, key).Result()
		must(t, err)
		if got != string(v) {
			t.Errorf("%q: decoded %d bytes, server has %d (or different bytes)", key, len(v), len(got))
		}
	case rdb.List:
		got, err := c.LRange(ctx, key, 0, -1).Result()
		must(t, err)
		if !slices.Equal(got, []string(v)) {
			t.Errorf("%q: decoded list of %d differs from the server's %d", key, len(v), len(got))
		}
	case rdb.Set:
		got, err := c.SMembers(ctx, key).Result()
		must(t, err)
		g, w := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(v))
		if !slices.Equal(g, w) {
			t.Errorf("%q: decoded set %q, server has %q", key, w, g)
		}
	case rdb.ZSet:
		got, err := c.ZRangeWithScores(ctx, key, 0, -1).Result()
		must(t, err)
		want := map[string]float64{}
		for _, m := range v {
			want[m.Member] = m.Score
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d members decoded, server has %d", key, len(want), len(got))
		}
		for _, z := range got {
			if w, ok := want[z.Member.(string)]; !ok || w != z.Score {
				t.Errorf("%q: member %q score %v on the server, decoded %v (%v)", key, z.Member, z.Score, w, ok)
			}
		}
	case rdb.Hash:
		got, err := c.HGetAll(ctx, key).Result()
		must(t, err)
		want := map[string]string{}
		for _, f := range v {
			want[f.Field] = f.Value
			if f.ExpireAt != 0 {
				t.Errorf("%q: field %q has a TTL on a 7.0 server", key, f.Field)
			}
		}
		if !mapsEqual(got, want) {
			t.Errorf("%q: decoded hash %v, server has %v", key, want, got)
		}
	case *rdb.Stream:
		compareStream(t, ctx, c, key, v)
	default:
		t.Errorf("%q: unexpected value %T", key, v)
	}
}

func compareStream(t *testing.T, ctx context.Context, c *redis.Client, key string, v *rdb.Stream) {
	t.Helper()
	msgs, err := c.XRange(ctx, key, "-", "+").Result()
	must(t, err)
	if len(msgs) != len(v.Entries) {
		t.Fatalf("%q: %d entries decoded, server has %d", key, len(v.Entries), len(msgs))
	}
	for i, m := range msgs {
		e := v.Entries[i]
		got := map[string]string{}
		for k, val := range m.Values {
			got[k] = val.(string)
		}
		want := map[string]string{}
		for j := 0; j+1 < len(e.Fields); j += 2 {
			want[e.Fields[j]] = e.Fields[j+1]
		}
		if m.ID != e.ID.String() || !mapsEqual(got, want) {
			t.Errorf("%q entry %d: decoded %s %v, server %s %v", key, i, e.ID, want, m.ID, got)
		}
	}
	info, err := c.XInfoStreamFull(ctx, key, 0).Result()
	must(t, err)
	if uint64(info.Length) != v.Length || info.LastGeneratedID != v.LastID.String() ||
		info.MaxDeletedEntryID != v.MaxDeletedID.String() || uint64(info.EntriesAdded) != v.EntriesAdded ||
		info.RecordedFirstEntryID != v.FirstID.String() {
		t.Errorf("%q: decoded length %d last %s maxdel %s added %d first %s; server %d %s %s %d %s", key,
			v.Length, v.LastID, v.MaxDeletedID, v.EntriesAdded, v.FirstID,
			info.Length, info.LastGeneratedID, info.MaxDeletedEntryID, info.EntriesAdded, info.RecordedFirstEntryID)
	}
	if len(info.Groups) != len(v.Groups) {
		t.Fatalf("%q: %d groups decoded, server has %d", key, len(v.Groups), len(info.Groups))
	}
	entriesRead := groupsEntriesRead(t, ctx, c, key)
	for i, g := range info.Groups {
		w := v.Groups[i]
		if g.Name != w.Name || g.LastDeliveredID != w.LastID.String() || entriesRead[i] != w.EntriesRead {
			t.Errorf("%q group %d: decoded %s last %s read %d; server %s %s %d", key, i, w.Name, w.LastID, w.EntriesRead,
				g.Name, g.LastDeliveredID, entriesRead[i])
		}
		if len(g.Pending) != len(w.Pending) {
			t.Fatalf("%q group %s: %d pending decoded, server has %d", key, w.Name, len(w.Pending), len(g.Pending))
		}
		owner := map[rdb.StreamID]string{}
		for _, cons := range w.Consumers {
			for _, id := range cons.Pending {
				owner[id] = cons.Name
			}
		}
		for j, pe := range g.Pending {
			wp := w.Pending[j]
			if pe.ID != wp.ID.String() || pe.DeliveryTime.UnixMilli() != wp.DeliveryTime ||
				uint64(pe.DeliveryCount) != wp.DeliveryCount || pe.Consumer != owner[wp.ID] {
				t.Errorf("%q group %s pending %d: decoded %s at %d x%d by %s; server %s at %d x%d by %s", key, w.Name, j,
					wp.ID, wp.DeliveryTime, wp.DeliveryCount, owner[wp.ID], pe.ID, pe.DeliveryTime.UnixMilli(), pe.DeliveryCount, pe.Consumer)
			}
		}
		if len(g.Consumers) != len(w.Consumers) {
			t.Fatalf("%q group %s: %d consumers decoded, server has %d", key, w.Name, len(w.Consumers), len(g.Consumers))
		}
		for j, gc := range g.Consumers {
			wc := w.Consumers[j]
			if gc.Name != wc.Name || gc.SeenTime.UnixMilli() != wc.SeenTime || int(gc.PelCount) != len(wc.Pending) {
				t.Errorf("%q group %s consumer %d: decoded %s seen %d pel %d; server %s %d %d", key, w.Name, j,
					wc.Name, wc.SeenTime, len(wc.Pending), gc.Name, gc.SeenTime.UnixMilli(), gc.PelCount)
			}
		}
	}
}

// TestRedis70RestoreAndConvert restores every value of the golden RDB on a
// second server: the raw payload as it is, then converted for older RDB
// versions. The raw payloads restore with the same encoding and, except for
// hashtables (whose order depends on each server's hash seed), DUMP back
// byte for byte; converted payloads restore to the same content.
func TestRedis70RestoreAndConvert(t *testing.T) {
	ctx := ctxFor(t, 90*time.Second)
	src := testenv.StartRedis(t, testenv.RedisOptions{})
	loadEveryType(t, ctx, src)
	p, err := parseRDB(rdbFromSave(t, ctx, src), rdb.Options{})
	must(t, err)
	dst := testenv.StartRedis(t, testenv.RedisOptions{})

	for _, k := range p.keys {
		c := dbClient(t, dst, k.DB)
		payload := k.Dump()
		args := []any{"RESTORE", k.Key, max(k.ExpireAt, 0), payload, "ABSTTL"}
		must(t, c.Do(ctx, args...).Err())
		if k.Type != rdb.TypeSet && k.Type != rdb.TypeHash {
			got, err := c.Dump(ctx, k.Key).Result()
			must(t, err)
			if got != string(payload) {
				t.Errorf("%q (%s): DUMP after RESTORE differs from the payload", k.Key, k.Type)
			}
		}
		enc, err := c.ObjectEncoding(ctx, k.Key).Result()
		must(t, err)
		srcEnc, err := dbClient(t, src, k.DB).ObjectEncoding(ctx, k.Key).Result()
		must(t, err)
		if enc != srcEnc {
			t.Errorf("%q: restored with encoding %s, source has %s", k.Key, enc, srcEnc)
		}
		compareWithServer(t, ctx, c, k.Key, decode(t, k))
	}

	// Converted payloads for RDB 9 (Redis 5.0-6.2) and RDB 7 (3.2), restored
	// on 7.0 under new names: the content is the same.
	for _, target := range []int{9, 7} {
		for _, k := range p.keys {
			payload, err := k.DumpFor(target)
			if k.Type.Kind() == rdb.KindStream && target < 9 {
				if err == nil {
					t.Errorf("%q: a stream converted for RDB %d", k.Key, target)
				}
				continue
			}
			must(t, err)
			typ, _, ver, err := rdb.ParsePayload(payload)
			must(t, err)
			if ver != target || typ.MinVersion() > target {
				t.Errorf("%q for RDB %d: payload type %s (needs RDB %d), footer %d", k.Key, target, typ, typ.MinVersion(), ver)
			}
			name := fmt.Sprintf("v%d:%s", target, k.Key)
			c := dbClient(t, dst, k.DB)
			must(t, c.Do(ctx, "RESTORE", name, 0, payload).Err())
			want := decode(t, k)
			if s, ok := want.(*rdb.Stream); ok {
				checkDowngradedStream(t, ctx, c, name, s)
				continue
			}
			compareWithServer(t, ctx, c, name, want)
		}
	}
}

// checkDowngradedStream compares a stream restored from a type-15 payload:
// entries, groups, PEL and consumers survive; the v2 metadata is Redis's
// own derivation.
func checkDowngradedStream(t *testing.T, ctx context.Context, c *redis.Client, key string, want *rdb.Stream) {
	t.Helper()
	got, err := c.Dump(ctx, key).Result()
	must(t, err)
	typ, raw, _, err := rdb.ParsePayload([]byte(got))
	must(t, err)
	v, err := rdb.DecodeValue(typ, raw)
	must(t, err)
	s := v.(*rdb.Stream)
	if !slices.EqualFunc(s.Entries, want.Entries, func(a, b rdb.StreamEntry) bool {
		return a.ID == b.ID && slices.Equal(a.Fields, b.Fields)
	}) || s.Length != want.Length || s.LastID != want.LastID || len(s.Groups) != len(want.Groups) {
		t.Fatalf("%q: restored stream %+v, want %+v", key, s, want)
	}
	for i, g := range s.Groups {
		w := want.Groups[i]
		if g.Name != w.Name || g.LastID != w.LastID || !slices.Equal(g.Pending, w.Pending) || len(g.Consumers) != len(w.Consumers) {
			t.Errorf("%q group %d: restored %+v, want %+v", key, i, g, w)
			continue
		}
		for j, gc := range g.Consumers {
			if wc := w.Consumers[j]; gc.Name != wc.Name || gc.SeenTime != wc.SeenTime || !slices.Equal(gc.Pending, wc.Pending) {
				t.Errorf("%q group %s consumer %d: restored %+v, want %+v", key, g.Name, j, gc, wc)
			}
		}
	}
}

// TestRedis70QuicklistForms shows that the golden data has packed, plain and
// LZF-compressed quicklist nodes.
func TestRedis70QuicklistForms(t *testing.T) {
	ctx := ctxFor(t, 60*time.Second)
	src := testenv.StartRedis(t, testenv.RedisOptions{})
	loadEveryType(t, ctx, src)
	p, err := parseRDB(rdbFromSave(t, ctx, src), rdb.Options{})
	must(t, err)
	forms := map[string]bool{}
	for _, k := range p.keys {
		if k.Type != rdb.TypeListQuicklist2 {
			continue
		}
		containers, compressed, err := rdb.QuicklistContainers(k.Value)
		must(t, err)
		for i, c := range containers {
			forms[fmt.Sprintf("container %d compressed %v", c, compressed[i])] = true
		}
	}
	for _, f := range []string{"container 2 compressed false", "container 2 compressed true", "container 1 compressed false"} {
		if !forms[f] {
			t.Errorf("no quicklist node with %s; have %v", f, forms)
		}
	}
}

// TestRedis70LRUAndLFU: with an LRU policy every key carries IDLE, with an
// LFU policy FREQ, and the values agree with OBJECT IDLETIME and OBJECT FREQ.
func TestRedis70LRUAndLFU(t *testing.T) {
	ctx := ctxFor(t, 60*time.Second)
	s := testenv.StartRedis(t, testenv.RedisOptions{})
	c := dbClient(t, s, 0)
	for i := range 20 {
		must(t, c.Set(ctx, "k"+strconv.Itoa(i), i, 0).Err())
	}
	for range 30 { // make k0's LFU counter grow
		must(t, c.Get(ctx, "k0").Err())
	}

	must(t, c.ConfigSet(ctx, "maxmemory-policy", "allkeys-lru").Err())
	p, err := parseRDB(rdbFromSave(t, ctx, s), rdb.Options{})
	must(t, err)
	for _, k := range p.keys {
		idle, err := c.ObjectIdleTime(ctx, k.Key).Result()
		must(t, err)
		if k.Idle < 0 || k.Freq != -1 || math.Abs(idle.Seconds()-float64(k.Idle)) > 2 {
			t.Errorf("LRU %q: Idle %d Freq %d, OBJECT IDLETIME %v", k.Key, k.Idle, k.Freq, idle)
		}
	}

	must(t, c.ConfigSet(ctx, "maxmemory-policy", "allkeys-lfu").Err())
	for range 30 {
		must(t, c.Get(ctx, "k0").Err())
	}
	p, err = parseRDB(rdbFromSave(t, ctx, s), rdb.Options{})
	must(t, err)
	for _, k := range p.keys {
		freq, err := c.ObjectFreq(ctx, k.Key).Result()
		must(t, err)
		if k.Freq < 0 || k.Idle != -1 || int64(k.Freq) != freq {
			t.Errorf("LFU %q: Freq %d Idle %d, OBJECT FREQ %d", k.Key, k.Freq, k.Idle, freq)
		}
	}
	if k := p.key(0, "k0"); k == nil || k.Freq <= p.key(0, "k1").Freq {
		t.Errorf("k0, read 30 times, has no higher LFU counter than k1")
	}
}

// groupsEntriesRead returns each group's entries-read from XINFO STREAM
// FULL, with -1 for the nil that means unknown (go-redis reports it as 0).
func groupsEntriesRead(t *testing.T, ctx context.Context, c *redis.Client, key string) []int64 {
	t.Helper()
	reply, err := c.Do(ctx, "XINFO", "STREAM", key, "FULL").Slice()
	must(t, err)
	var out []int64
	for i := 0; i+1 < len(reply); i += 2 {
		if reply[i] != "groups" {
			continue
		}
		groups, _ := reply[i+1].([]any)
		for _, g := range groups {
			fields, _ := g.([]any)
			read := int64(-1)
			for j := 0; j+1 < len(fields); j += 2 {
				if fields[j] == "entries-read" && fields[j+1] != nil {
					read = fields[j+1].(int64)
				}
			}
			out = append(out, read)
		}
	}
	return out
}
