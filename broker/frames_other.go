//go:build !linux

package broker

func allocFrame(c int) []byte { return make([]byte, c) }

func adviseHuge([]byte) {}

func freeFrame([]byte) {}
