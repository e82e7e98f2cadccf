//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// mountSmallDisk mounts a file system of size bytes at dir for the test: ext4 on a loop
// device where it can (the file system tagpipe's data usually lives on: delayed
// allocation, fallocate), else a tmpfs; the test is skipped when neither can be mounted
// (not root). The mount is detached lazily at cleanup, so processes killed after it do
// not keep it busy.
func mountSmallDisk(t *testing.T, dir, image string, size int64) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small file system as a disk that fills up")
	}
	ext4 := func() error {
		f, err := os.Create(image)
		if err != nil {
			return err
		}
		err = f.Truncate(size) // sparse: the file system's blocks are taken as it fills
		f.Close()
		if err != nil {
			return err
		}
		if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", image).CombinedOutput(); err != nil {
			return fmt.Errorf("mkfs.ext4: %v %s", err, out)
		}
		if out, err := exec.Command("mount", "-o", "loop", image, dir).CombinedOutput(); err != nil {
			return fmt.Errorf("mount -o loop: %v %s", err, out)
		}
		return nil
	}
	if err := ext4(); err == nil {
		t.Logf("data dir on a %d MiB ext4 loop device", size>>20)
	} else if out, err2 := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err2 == nil {
		t.Logf("data dir on a %d MiB tmpfs (no ext4 loop device: %v)", size>>20, err)
	} else {
		t.Skipf("cannot mount a small file system at %s: ext4: %v; tmpfs: %v %s", dir, err, err2, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
}

// fill allocates path's blocks until the file system has none left, and returns the
// bytes allocated. fallocate takes real blocks at once; written data would sit in ext4's
// delayed allocation, which reserves more than it keeps and frees the rest at writeback.
func fill(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var n int64
	for step := int64(64 << 20); step >= 4096; {
		err := syscall.Fallocate(int(f.Fd()), 0, n, step)
		switch {
		case err == nil:
			n += step
		case errors.Is(err, syscall.ENOSPC):
			step /= 2
		default:
			t.Fatalf("fallocate: %v", err)
		}
	}
	return n
}

// TestDiskFull runs broker, collector and streaming on a small file system and fills it
// while data flows: intake stops with a message in each log, nothing acknowledged is
// lost, streaming and the broker (after a kill -9) start on the full disk, and once
// space is freed every input event reaches dwd_events exactly once.
func TestDiskFull(t *testing.T) {
	c := newCluster(t)
	// The collector's file channel refuses puts below its min_free_bytes (256 MiB by
	// default), so the disk must have more than that free once the filler is gone.
	mountSmallDisk(t, c.data, filepath.Join(c.root, "disk.img"), 640<<20)
	for _, d := range []string{filepath.Join(c.data, "spool", "events"), filepath.Join(c.data, "staging")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	in := loadInputs(t, c, 20000)
	c.startAll()
	ingest, broker, stream := c.procs["ingest"], c.procs["broker"], c.procs["stream"]
	for _, topic := range []string{"events", "probe"} {
		if out, err := c.tagpipe(time.Minute, "topics", "create", "--topic", topic, "--partitions", "6"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}

	// The ratings reach the topic on a disk with room; streaming, stopped meanwhile, will
	// have all of them to store once the disk is full.
	stream.stop()
	c.drop("movielens-ratings.csv", in.ratings)
	waitFor(t, "ratings.csv in the topic", 3*time.Minute, 50*time.Millisecond, func() (bool, string, error) {
		n, err := c.endOffsets("events")
		if err != nil {
			return false, err.Error(), nil
		}
		return n >= int64(in.ratingLines), fmt.Sprintf("%d of %d lines", n, in.ratingLines), nil
	})

	// A consumer group's committed offsets: the broker rewrites offsets.log at start.
	commits := kadm.Offsets{}
	commits.Add(kadm.Offset{Topic: "events", Partition: 0, At: 1234, LeaderEpoch: -1})
	commitCtx, cancelCommit := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelCommit()
	if err := c.adm.CommitAllOffsets(commitCtx, "diskfull", commits); err != nil {
		t.Fatal(err)
	}

	// The Taobao log is written now and renamed in once the disk is full (a rename needs
	// no space).
	staged := filepath.Join(c.data, "staging", "taobao-behaviour.log")
	if err := os.WriteFile(staged, in.taobao, 0o644); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(c.data, "filler")
	t.Logf("disk full after %d MiB of filler", fill(t, filler)>>20)
	if err := os.Rename(staged, filepath.Join(c.data, "spool", "events", "taobao-behaviour.log")); err != nil {
		t.Fatal(err)
	}
	stream.run()
	stream.waitReady(90 * time.Second)

	// Produces with acks=all fail with a storage error instead of being acknowledged;
	// the few that still fit a partly written page are acknowledged and must survive.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.broker), kgo.DefaultProduceTopic("probe"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.RecordRetries(0),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var acked []string
	var refused error
	val := strings.Repeat("p", 1000)
	for i := 0; i < 5000 && refused == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v := fmt.Sprintf("%05d %s", i, val)
		err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v), Partition: 0}).FirstErr()
		cancel()
		if err != nil {
			refused = err
			break
		}
		acked = append(acked, v)
	}
	if !errors.Is(refused, kerr.KafkaStorageError) {
		t.Fatalf("produce on a full disk: %d acknowledged, then %v; want KAFKA_STORAGE_ERROR", len(acked), refused)
	}
	t.Logf("produce on the full disk: %d records acknowledged, then %v", len(acked), refused)

	// Each process says why intake stopped, and none of them exits.
	waitFor(t, "a full-disk message in each log", time.Minute, 200*time.Millisecond, func() (bool, string, error) {
		var missing []string
		for _, p := range []*proc{broker, ingest, stream} {
			if p.exited() {
				return false, "", fmt.Errorf("%s exited on the full disk:\n%s", p.name, tail(p.logPath, 20))
			}
			b, _ := os.ReadFile(p.logPath)
			if !strings.Contains(string(b), "no space left on device") && !strings.Contains(string(b), "bytes free") {
				missing = append(missing, p.name)
			}
		}
		return len(missing) == 0, fmt.Sprintf("no message yet from %v", missing), nil
	})

	// A crash while the disk is full: the broker must start again on it.
	broker.kill9()
	broker.run()
	broker.waitReady(90 * time.Second)
	fetched, err := c.adm.FetchOffsets(commitCtx, "diskfull")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup("events", 0); !ok || o.At != 1234 {
		t.Fatalf("group offset after the restart on the full disk: %+v (found %v), want 1234", o, ok)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	t.Log("filler removed")
	drainAndCheck(t, c, in, "dwd_events after the disk was full")

	// Every acknowledged probe record is in the topic, in order.
	cc, err := kgo.NewClient(kgo.SeedBrokers(c.broker),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"probe": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var got []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(got) < len(acked) {
		fs := cc.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of the %d acknowledged probe records: %v", len(got), len(acked), err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i := range acked {
		if got[i] != acked[i] {
			t.Fatalf("probe record %d: %.12q, want %.12q", i, got[i], acked[i])
		}
	}
	c.stopAll()
}
