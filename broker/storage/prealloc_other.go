//go:build !linux

package storage

import "os"

func preallocate(*os.File, int64, int64) error { return errUnsupported }

func inMemoryFS(*os.File) bool { return false }
