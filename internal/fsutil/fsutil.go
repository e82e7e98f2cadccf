// Package fsutil holds the file-system habits the rooms share.
package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data so that a crash or power cut leaves either the old
// file or the new one, whole: data goes to path+".tmp", which is synced and renamed over
// path, and the directory is synced so the rename itself is durable. A failed write
// removes the temporary file (on a full disk it would only take more space); one left
// by a crash is overwritten by the next WriteFile.
func WriteFile(path string, data []byte) error {
	return WriteFileSync(path, data, (*os.File).Sync)
}

// WriteFileSync is WriteFile with the fsync of the file and of its directory done by
// sync (tests count or skip fsyncs through it).
func WriteFileSync(path string, data []byte, sync func(*os.File) error) (err error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("cannot create %q: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %q: %w", tmp, err)
	}
	if err := sync(f); err != nil {
		f.Close()
		return fmt.Errorf("cannot sync %q: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot rename %q to %q: %w", tmp, path, err)
	}
	if err := SyncDirSync(filepath.Dir(path), sync); err != nil {
		return fmt.Errorf("%w: %w", ErrNotSynced, err)
	}
	return nil
}

// ErrNotSynced is in the error of a WriteFile that put the new file in place but could
// not fsync its directory: readers see the new contents, but a power cut may bring the
// old file back. Callers that undo their change on an error must not undo it then.
var ErrNotSynced = errors.New("file replaced, its directory not synced")

// SyncDir fsyncs directory dir, so that the names created, renamed or removed in it
// survive a power cut (a file's own fsync does not cover its name).
func SyncDir(dir string) error { return SyncDirSync(dir, (*os.File).Sync) }

// SyncDirSync is SyncDir with the fsync done by sync (tests record or fail it).
func SyncDirSync(dir string, sync func(*os.File) error) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot open directory %q: %w", dir, err)
	}
	err = sync(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot sync directory %q: %w", dir, err)
	}
	return nil
}

// MkdirAll makes dir and any missing parents, as os.MkdirAll does, and fsyncs the
// parent of every directory it makes, so that the new names survive a power cut: the
// fsyncs of files written inside a directory cover the entries in it, not its own name.
// Directories that exist are left alone (whoever made them synced them).
func MkdirAll(dir string) error { return MkdirAllSync(dir, SyncDir) }

// MkdirAllSync is MkdirAll with the directory fsync done by syncDir (tests record or
// fail it).
func MkdirAllSync(dir string, syncDir func(string) error) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("cannot create directory %q: a file of that name exists", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := MkdirAllSync(parent, syncDir); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil // made meanwhile by someone else, who syncs it
		}
		return fmt.Errorf("cannot create directory %q: %w", dir, err)
	}
	return syncDir(parent)
}
