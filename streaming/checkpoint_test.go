package streaming

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestCheckpointFormatFrozen pins the on-disk encodings documented in FORMAT.md.
func TestCheckpointFormatFrozen(t *testing.T) {
	dir := t.TempDir()
	cp, err := openCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.close()
	p := plan{BatchID: 42, BatchTime: time.Date(2024, 5, 1, 12, 0, 5, 0, time.UTC),
		Ranges: Ranges{{Topic: "events", Partition: 0, From: 1000, Until: 1250}}}
	if err := cp.writePlan(p); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "offsets", "00000000000000000042.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "batch_id": 42,
  "batch_time": "2024-05-01T12:00:05Z",
  "ranges": [
    {
      "topic": "events",
      "partition": 0,
      "from": 1000,
      "until": 1250
    }
  ]
}`
	if string(got) != want {
		t.Fatalf("plan encoding changed:\n%s", got)
	}
	// Topic ids, when the broker gives them, follow the ranges; a plan without them (a
	// broker without topic ids, or written before them) is encoded as above and reads
	// back with none.
	if rp, ok, err := cp.readPlan(42); err != nil || !ok || rp.TopicIDs != nil {
		t.Fatalf("plan without topic ids read back as %+v (ok %v, err %v)", rp, ok, err)
	}
	p.BatchID = 43
	p.TopicIDs = map[string]string{"events": "P65OeUqpZybkk98fjXG3TA"}
	if err := cp.writePlan(p); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(filepath.Join(dir, "offsets", "00000000000000000043.json"))
	want = `{
  "batch_id": 43,
  "batch_time": "2024-05-01T12:00:05Z",
  "ranges": [
    {
      "topic": "events",
      "partition": 0,
      "from": 1000,
      "until": 1250
    }
  ],
  "topic_ids": {
    "events": "P65OeUqpZybkk98fjXG3TA"
  }
}`
	if string(got) != want {
		t.Fatalf("plan encoding changed:\n%s", got)
	}
	if rp, ok, err := cp.readPlan(43); err != nil || !ok || rp.TopicIDs["events"] != "P65OeUqpZybkk98fjXG3TA" {
		t.Fatalf("plan with topic ids read back as %+v (ok %v, err %v)", rp, ok, err)
	}
	os.Remove(filepath.Join(dir, "offsets", "00000000000000000043.json"))
	if err := cp.writeCommit(commitInfo{BatchID: 42, CommittedAt: time.Date(2024, 5, 1, 12, 0, 5, 912e6, time.UTC), Records: 250}); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(filepath.Join(dir, "commits", "00000000000000000042.json"))
	if string(got) != `{"batch_id":42,"committed_at":"2024-05-01T12:00:05.912Z","records":250}` {
		t.Fatalf("commit encoding changed: %s", got)
	}
	if enc := p.Ranges.Encode(); enc != `[{"topic":"events","partition":0,"from":1000,"until":1250}]` {
		t.Fatalf("ranges property encoding changed: %s", enc)
	}
	// A torn temp file from a crash is removed on open; the published files stay.
	cp.close()
	os.WriteFile(filepath.Join(dir, "offsets", "00000000000000000043.json.tmp"), []byte("{"), 0o644)
	cp2, err := openCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cp2.close()
	if _, err := os.Stat(filepath.Join(dir, "offsets", "00000000000000000043.json.tmp")); !os.IsNotExist(err) {
		t.Fatal("temp file survived")
	}
	prog, ok, err := ReadProgress(dir)
	if err != nil || !ok || prog.LastBatch != 42 || prog.Ends[TopicPartition{"events", 0}] != 1250 {
		t.Fatalf("progress %+v %v %v", prog, ok, err)
	}
}

// A checkpoint whose state directory is missing (a full disk kept it from being made)
// has no saved state: a failed first batch restores the initial state and is retried,
// instead of stopping the engine.
func TestCheckpointWithoutStateDir(t *testing.T) {
	dir := t.TempDir()
	cp, err := openCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.close()
	if err := os.Remove(filepath.Join(dir, "state")); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, err := cp.readState(0); ok || err != nil {
		t.Fatalf("readState without a state dir: ok=%v err=%v; want no state, no error", ok, err)
	}
}

// Opening a checkpoint syncs its directory (the names of offsets/, state/ and commits/
// it may just have made) and the parent (its own name): the batch files' fsyncs cover
// only their own directory, so a power cut could otherwise take a fresh job's
// committed batches away with the directories holding them.
func TestCheckpointSyncsItsDirectories(t *testing.T) {
	var synced []string
	orig := syncDir
	syncDir = func(d string) error { synced = append(synced, d); return orig(d) }
	t.Cleanup(func() { syncDir = orig })
	dir := filepath.Join(t.TempDir(), "job")
	cp, err := openCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.close()
	if !slices.Contains(synced, dir) || !slices.Contains(synced, filepath.Dir(dir)) {
		t.Fatalf("synced %q, want %q and its parent", synced, dir)
	}
}
