//go:build !amd64

package storage

import "hash/crc32"

// useFold: the carry-less multiplication code is amd64 only (crc_amd64.s).
const useFold = false

// crcUpdate is crc32.Update(crc, castagnoli, p).
func crcUpdate(crc uint32, p []byte) uint32 { return crc32.Update(crc, castagnoli, p) }
