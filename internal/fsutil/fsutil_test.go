package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// WriteFile replaces the file's contents and leaves no temporary file; a failed sync
// keeps the old contents and removes the temporary file; the sync function sees the
// file and then its directory.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, data := range []string{"first", "second, longer", "3"} {
		if err := WriteFile(path, []byte(data)); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); string(got) != data {
			t.Fatalf("contents %q, want %q", got, data)
		}
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left behind: %v", err)
	}

	var synced []string
	failing := func(f *os.File) error {
		synced = append(synced, f.Name())
		return errors.New("disk on fire")
	}
	if err := WriteFileSync(path, []byte("lost"), failing); err == nil {
		t.Fatal("a failed sync was not reported")
	}
	if got, _ := os.ReadFile(path); string(got) != "3" {
		t.Fatalf("after a failed sync: %q, want the old contents", got)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left after a failed sync: %v", err)
	}
	synced = nil
	if err := WriteFileSync(path, []byte("4"), func(f *os.File) error { synced = append(synced, f.Name()); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 2 || synced[0] != path+".tmp" || synced[1] != dir {
		t.Fatalf("synced %v, want the file then its directory", synced)
	}
}

// A failed directory fsync comes after the rename: the new contents are in place and the
// error says so (ErrNotSynced), so callers do not undo a change readers already see.
func TestWriteFileDirSyncFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	dirFails := func(f *os.File) error {
		if st, err := f.Stat(); err == nil && st.IsDir() {
			return errors.New("input/output error")
		}
		return f.Sync()
	}
	err := WriteFileSync(path, []byte("new"), dirFails)
	if !errors.Is(err, ErrNotSynced) {
		t.Fatalf("error %v, want ErrNotSynced", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "new" {
		t.Fatalf("contents %q, want the new ones", got)
	}
}

// TestMkdirAllSyncsNewNames: MkdirAll fsyncs the parent of each directory it makes and
// nothing for directories that exist; a failed fsync is an error.
func TestMkdirAllSyncsNewNames(t *testing.T) {
	root := t.TempDir()
	var synced []string
	record := func(d string) error { synced = append(synced, d); return nil }
	dir := filepath.Join(root, "a", "b", "c")
	if err := MkdirAllSync(dir, record); err != nil {
		t.Fatal(err)
	}
	want := []string{root, filepath.Join(root, "a"), filepath.Join(root, "a", "b")}
	if fmt.Sprint(synced) != fmt.Sprint(want) {
		t.Fatalf("synced %v, want %v", synced, want)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("%s not made: %v", dir, err)
	}
	synced = nil
	if err := MkdirAllSync(dir, record); err != nil || synced != nil {
		t.Fatalf("existing directory: synced %v, %v", synced, err)
	}
	if err := MkdirAllSync(filepath.Join(root, "x"), func(string) error { return errors.New("disk gone") }); err == nil {
		t.Fatal("a failed directory fsync was not reported")
	}
	file := filepath.Join(root, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := MkdirAll(file); err == nil {
		t.Fatal("MkdirAll over a file succeeded")
	}
}
