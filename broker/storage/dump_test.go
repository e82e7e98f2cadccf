package storage

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gzipped is b (a buildBatch batch) with its records really gzip-compressed.
func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	z, err := compressRecords(codecGzip, b[BatchHeaderSize:], false)
	if err != nil {
		t.Fatal(err)
	}
	out := append(append([]byte(nil), b[:BatchHeaderSize]...), z...)
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(len(out)-batchLogOverhead))
	binary.BigEndian.PutUint16(out[offAttributes:], codecGzip)
	binary.BigEndian.PutUint32(out[offCRC:], crcOf(out[offAttributes:]))
	return out
}

func dump(t *testing.T, path string, o DumpOptions) (string, error) {
	t.Helper()
	var buf bytes.Buffer
	err := DumpFile(&buf, path, o)
	return buf.String(), err
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("dump lacks %q:\n%s", w, out)
		}
	}
}

// TestDumpFile: kafka-dump-log.sh's view of every file of a partition — batches with
// their headers, records (decompressed) with keys and payloads, transaction markers,
// both indexes with a sanity check, aborted transactions and producer snapshots.
func TestDumpFile(t *testing.T) {
	noSync(t)
	dir := t.TempDir()
	o := testOptions(&fakeClock{ms: 5000})
	o.IndexIntervalBytes = 1
	l := mustOpen(t, dir, o)
	mustAppend(t, l, buildBatch(plain(2, 4, 1000)))
	mustAppend(t, l, gzipped(t, buildBatch(plain(3, 2, 2000))))
	mustAppend(t, l, buildBatch(batchSpec{records: 2, valueSize: 1, baseTs: 3000, pid: 7, epoch: 1, seq: 0}))
	mustAppend(t, l, txnBatch(9, 0, 0, 1))
	if _, err := l.AppendMarker(9, 0, false, 3); err != nil {
		t.Fatal(err)
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, segmentName(0, ""))

	out, err := dump(t, seg+".log", DumpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "Dumping "+seg+".log\nLog starting offset: 0\n",
		"baseOffset: 0 lastOffset: 1 count: 2 baseSequence: -1 lastSequence: -1 producerId: -1 producerEpoch: -1 partitionLeaderEpoch: 0 isTransactional: false isControl: false position: 0 CreateTime: 1001 size: ",
		"baseOffset: 2 lastOffset: 4 count: 3 ", "compresscodec: gzip crcValid: true",
		"baseOffset: 5 lastOffset: 6 count: 2 baseSequence: 0 lastSequence: 1 producerId: 7 producerEpoch: 1 ",
		"baseOffset: 7 lastOffset: 7 count: 1 baseSequence: 0 lastSequence: 0 producerId: 9 producerEpoch: 0 partitionLeaderEpoch: 0 isTransactional: true isControl: false",
		"baseOffset: 8 lastOffset: 8 count: 1 baseSequence: -1 lastSequence: -1 producerId: 9 producerEpoch: 0 partitionLeaderEpoch: 0 isTransactional: true isControl: true")
	if strings.Contains(out, "| offset") {
		t.Errorf("records without --deep-iteration:\n%s", out)
	}

	out, err = dump(t, seg+".log", DumpOptions{PrintData: true})
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out,
		"| offset: 0 CreateTime: 1000 keySize: 2 valueSize: 4 sequence: -1 headerKeys: [] key: k0 payload: abcd\n",
		"| offset: 4 CreateTime: 2002 keySize: 2 valueSize: 2 sequence: -1 headerKeys: [] key: k2 payload: cd\n",
		"| offset: 6 CreateTime: 3001 keySize: 2 valueSize: 1 sequence: 1 headerKeys: [] key: k1 payload: b\n",
		"| offset: 8 CreateTime: 5000 keySize: 4 valueSize: 6 sequence: -1 headerKeys: [] endTxnMarker: ABORT coordinatorEpoch: 3\n")

	out, err = dump(t, seg+".index", DumpOptions{IndexSanityCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "offset: 2 position: ", "offset: 8 position: ", seg[len(dir)+1:]+".index passed the sanity check.")
	out, err = dump(t, seg+".timeindex", DumpOptions{VerifyIndexOnly: true})
	if err != nil || strings.Contains(out, "timestamp:") {
		t.Fatalf("verify only: %v\n%s", err, out)
	}
	wantLines(t, out, ".timeindex passed the sanity check.")
	out, _ = dump(t, seg+".timeindex", DumpOptions{})
	wantLines(t, out, "timestamp: 2002 offset: 2\n", "timestamp: 5000 offset: 8\n")
	out, err = dump(t, seg+".txnindex", DumpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "version: 0 producerId: 9 firstOffset: 7 lastOffset: 8 lastStableOffset: 9\n")
	snaps, _ := filepath.Glob(filepath.Join(dir, "*.snapshot"))
	if len(snaps) == 0 {
		t.Fatal("no producer snapshot")
	}
	out, err = dump(t, snaps[len(snaps)-1], DumpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "producerId: 7 producerEpoch: 1 coordinatorEpoch: -1 currentTxnFirstOffset: -1 lastTimestamp: 3001",
		"[firstSequence: 0 lastSequence: 1 firstOffset: 5 lastOffset: 6 maxTimestamp: 3001]",
		"producerId: 9 producerEpoch: 0 coordinatorEpoch: 3 currentTxnFirstOffset: -1")

	// --max-bytes cuts inside the second batch: the first is dumped, no error.
	first := buildBatch(plain(2, 4, 1000))
	out, err = dump(t, seg+".log", DumpOptions{MaxBytes: int64(len(first) + 10)})
	if err != nil || strings.Count(out, "baseOffset:") != 1 {
		t.Fatalf("max bytes: %v\n%s", err, out)
	}

	// A torn tail: the batches before it, then what is wrong and where.
	b, _ := os.ReadFile(seg + ".log")
	torn := filepath.Join(t.TempDir(), segmentName(0, ".log"))
	os.WriteFile(torn, b[:len(b)-5], 0o644)
	out, err = dump(t, torn, DumpOptions{})
	if err == nil || strings.Count(out, "baseOffset:") != 4 || !strings.Contains(out, "invalid bytes at the end of") {
		t.Fatalf("torn tail: %v\n%s", err, out)
	}
	// A bad index entry fails the sanity check.
	idx, _ := os.ReadFile(seg + ".index")
	binary.BigEndian.PutUint32(idx[4:], 3) // position 3: inside the first batch
	os.WriteFile(seg+".index", idx, 0o644)
	out, err = dump(t, seg+".index", DumpOptions{VerifyIndexOnly: true})
	if err == nil || !strings.Contains(out, "failed the sanity check") {
		t.Fatalf("bad index: %v\n%s", err, out)
	}
	if _, err := dump(t, filepath.Join(dir, "topics.json"), DumpOptions{}); err == nil {
		t.Fatal("a file that is not a partition file was dumped")
	}
}

func TestHeaderKeysAndPrintable(t *testing.T) {
	var h []byte
	h = binary.AppendVarint(h, 2)
	for _, kv := range [][2]string{{"trace", "x"}, {"src", ""}} {
		h = binary.AppendVarint(h, int64(len(kv[0])))
		h = append(h, kv[0]...)
		h = binary.AppendVarint(h, int64(len(kv[1])))
		h = append(h, kv[1]...)
	}
	if got := strings.Join(headerKeys(h), ","); got != "trace,src" {
		t.Fatalf("headerKeys = %q", got)
	}
	if got := strings.Join(headerKeys(h[:len(h)-3]), ","); got != "trace,…" {
		t.Fatalf("headerKeys of a cut header = %q", got)
	}
	if got := printable([]byte("a\nb")); got != `"a\nb"` {
		t.Fatalf("printable = %s", got)
	}
	if got := printable([]byte("héllo")); got != "héllo" {
		t.Fatalf("printable = %s", got)
	}
}
