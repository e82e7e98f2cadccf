//go:build !linux

package storage

import "errors"

func mapFile(string, int) ([]byte, error) { return nil, errors.ErrUnsupported }

func unmapFile([]byte) {}

func dropMappedPages([]byte) {}
