package sqlguard

import (
	"encoding/binary"
	"math/bits"
)

// xxh3 is XXH3_64bits_withSeed of xxHash 0.8 (the xxhash.h pg_query_go v5
// compiles), ported from its scalar code paths. pg_query hashes its
// fingerprint stream with it; fingerprint.go rebuilds that stream in Go.
// TestParseMatchesPgQuery checks the result against pg_query's own.
func xxh3(b []byte, seed uint64) uint64 {
	n := len(b)
	switch {
	case n <= 16:
		return xxh3Len0To16(b, seed)
	case n <= 128:
		acc := uint64(n) * xxhPrime64_1
		if n > 32 {
			if n > 64 {
				if n > 96 {
					acc += xxh3Mix16(b[48:], xxh3Secret[96:], seed)
					acc += xxh3Mix16(b[n-64:], xxh3Secret[112:], seed)
				}
				acc += xxh3Mix16(b[32:], xxh3Secret[64:], seed)
				acc += xxh3Mix16(b[n-48:], xxh3Secret[80:], seed)
			}
			acc += xxh3Mix16(b[16:], xxh3Secret[32:], seed)
			acc += xxh3Mix16(b[n-32:], xxh3Secret[48:], seed)
		}
		acc += xxh3Mix16(b, xxh3Secret[:], seed)
		acc += xxh3Mix16(b[n-16:], xxh3Secret[16:], seed)
		return xxh3Avalanche(acc)
	case n <= 240:
		acc := uint64(n) * xxhPrime64_1
		for i := 0; i < 8; i++ {
			acc += xxh3Mix16(b[16*i:], xxh3Secret[16*i:], seed)
		}
		acc = xxh3Avalanche(acc)
		for i := 8; i < n/16; i++ {
			acc += xxh3Mix16(b[16*i:], xxh3Secret[16*(i-8)+3:], seed)
		}
		acc += xxh3Mix16(b[n-16:], xxh3Secret[136-17:], seed)
		return xxh3Avalanche(acc)
	}
	secret := &xxh3Secret
	var custom [192]byte
	if seed != 0 {
		for i := 0; i < len(custom); i += 16 {
			binary.LittleEndian.PutUint64(custom[i:], binary.LittleEndian.Uint64(xxh3Secret[i:])+seed)
			binary.LittleEndian.PutUint64(custom[i+8:], binary.LittleEndian.Uint64(xxh3Secret[i+8:])-seed)
		}
		secret = &custom
	}
	return xxh3Long(b, secret[:])
}

const (
	xxhPrime32_1 = 0x9E3779B1
	xxhPrime32_2 = 0x85EBCA77
	xxhPrime32_3 = 0xC2B2AE3D
	xxhPrime64_1 = 0x9E3779B185EBCA87
	xxhPrime64_2 = 0xC2B2AE3D27D4EB4F
	xxhPrime64_3 = 0x165667B19E3779F9
	xxhPrime64_4 = 0x85EBCA77C2B2AE63
	xxhPrime64_5 = 0x27D4EB2F165667C5
)

var xxh3Secret = [192]byte{
	0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
	0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
	0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
	0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
	0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
	0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
	0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
	0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
	0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
	0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
	0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
	0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
}

func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

func xxh3MulFold(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func xxh3Avalanche(h uint64) uint64 {
	h ^= h >> 37
	h *= 0x165667919E3779F9
	return h ^ h>>32
}

func xxh64Avalanche(h uint64) uint64 {
	h ^= h >> 33
	h *= xxhPrime64_2
	h ^= h >> 29
	h *= xxhPrime64_3
	return h ^ h>>32
}

func xxh3Mix16(b, secret []byte, seed uint64) uint64 {
	return xxh3MulFold(le64(b)^(le64(secret)+seed), le64(b[8:])^(le64(secret[8:])-seed))
}

func xxh3Len0To16(b []byte, seed uint64) uint64 {
	n := len(b)
	s := xxh3Secret[:]
	switch {
	case n > 8:
		lo := le64(b) ^ ((le64(s[24:]) ^ le64(s[32:])) + seed)
		hi := le64(b[n-8:]) ^ ((le64(s[40:]) ^ le64(s[48:])) - seed)
		return xxh3Avalanche(uint64(n) + bits.ReverseBytes64(lo) + hi + xxh3MulFold(lo, hi))
	case n >= 4:
		seed ^= uint64(bits.ReverseBytes32(uint32(seed))) << 32
		in := uint64(le32(b[n-4:])) + uint64(le32(b))<<32
		h := in ^ ((le64(s[8:]) ^ le64(s[16:])) - seed)
		h ^= bits.RotateLeft64(h, 49) ^ bits.RotateLeft64(h, 24)
		h *= 0x9FB21C651E98DF25
		h ^= (h >> 35) + uint64(n)
		h *= 0x9FB21C651E98DF25
		return h ^ h>>28
	case n > 0:
		c := uint32(b[0])<<16 | uint32(b[n>>1])<<24 | uint32(b[n-1]) | uint32(n)<<8
		return xxh64Avalanche(uint64(c) ^ (uint64(le32(s)^le32(s[4:])) + seed))
	}
	return xxh64Avalanche(seed ^ le64(s[56:]) ^ le64(s[64:]))
}

func xxh3Long(b, secret []byte) uint64 {
	acc := [8]uint64{xxhPrime32_3, xxhPrime64_1, xxhPrime64_2, xxhPrime64_3, xxhPrime64_4, xxhPrime32_2, xxhPrime64_5, xxhPrime32_1}
	n := len(b)
	const stripe = 64
	perBlock := (len(secret) - stripe) / 8
	blockLen := stripe * perBlock
	blocks := (n - 1) / blockLen
	for i := 0; i < blocks; i++ {
		for s := 0; s < perBlock; s++ {
			xxh3Accumulate(&acc, b[i*blockLen+s*stripe:], secret[s*8:])
		}
		// scramble
		for j := range acc {
			a := acc[j]
			a ^= a >> 47
			a ^= le64(secret[len(secret)-stripe+8*j:])
			acc[j] = a * xxhPrime32_1
		}
	}
	stripes := ((n - 1) - blockLen*blocks) / stripe
	for s := 0; s < stripes; s++ {
		xxh3Accumulate(&acc, b[blocks*blockLen+s*stripe:], secret[s*8:])
	}
	xxh3Accumulate(&acc, b[n-stripe:], secret[len(secret)-stripe-7:])
	h := uint64(n) * xxhPrime64_1
	for i := 0; i < 4; i++ {
		h += xxh3MulFold(acc[2*i]^le64(secret[11+16*i:]), acc[2*i+1]^le64(secret[11+16*i+8:]))
	}
	return xxh3Avalanche(h)
}

func xxh3Accumulate(acc *[8]uint64, in, secret []byte) {
	for i := 0; i < 8; i++ {
		v := le64(in[8*i:])
		k := v ^ le64(secret[8*i:])
		acc[i^1] += v
		acc[i] += (k & 0xFFFFFFFF) * (k >> 32)
	}
}
