package rdb

import "hash/crc64"

// The CRC64 that Redis uses for RDB files and DUMP payloads is the "Jones"
// polynomial 0xad93d23594c935a9, reflected (0x95ac9329ac4bc9b5), with init 0
// and no final xor (redis src/crc64.c). Go's hash/crc64 inverts the CRC on
// entry and exit, so feeding it the inverse of Redis's state and inverting the
// result gives Redis's value.
var jonesTable = crc64.MakeTable(0x95AC9329AC4BC9B5)

// CRC64 continues the Redis CRC64 crc over p. CRC64(0, []byte("123456789"))
// is 0xe9c6d914c4b8d9ca.
func CRC64(crc uint64, p []byte) uint64 {
	return ^crc64.Update(^crc, jonesTable, p)
}
