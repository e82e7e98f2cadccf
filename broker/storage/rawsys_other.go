//go:build !linux

package storage

import "os"

func writeAt(f *os.File, b []byte, off int64) (int, error) { return f.WriteAt(b, off) }
