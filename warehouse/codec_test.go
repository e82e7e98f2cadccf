package warehouse

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// TestCompressions writes the same rows with every codec: each file's column chunks
// carry the codec asked for, and the rows read back the same.
func TestCompressions(t *testing.T) {
	rec := events(3000, 3, 7)
	defer rec.Release()
	var want []string
	for _, name := range append(slices.Clone(Compressions), "UNCOMPRESSED") {
		t.Run(name, func(t *testing.T) {
			o := DefaultOptions()
			o.LockTimeout = 5 * time.Second
			o.Compression = name
			w, err := Open(t.TempDir(), o)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			snap := appendRec(t, createEvents(t, w, "ods_events"), rec, CommitOptions{})
			codec, _ := ParseCompression(name, 1)
			for _, f := range snap.Files {
				r, err := file.OpenParquetFile(snap.AbsPath(f), false)
				if err != nil {
					t.Fatal(err)
				}
				for g := range r.NumRowGroups() {
					rg := r.MetaData().RowGroup(g)
					for i := range rg.NumColumns() {
						cc, err := rg.ColumnChunk(i)
						if err != nil {
							t.Fatal(err)
						}
						if cc.Compression() != codec {
							t.Errorf("%s: column %s compressed with %v, want %v", f.Path, cc.PathInSchema(), cc.Compression(), codec)
						}
					}
				}
				r.Close()
			}
			rows := rowsOf(t, snap)
			if want == nil {
				want = rows
			} else if !slices.Equal(rows, want) {
				t.Fatalf("rows differ from the first codec's (%d vs %d)", len(rows), len(want))
			}
		})
	}
}

func TestParseCompressionErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		level int
		err   string
	}{
		{"lz4", 1, `unknown Parquet compression "lz4" (want one of zstd, snappy, gzip, brotli, lz4_raw, none)`},
		{"lzo", 1, "unknown Parquet compression"},
		{"zstd", 23, "compression level 23 out of range for zstd (1..22)"},
		{"gzip", 10, "out of range for gzip (1..9)"},
		{"brotli", 12, "out of range for brotli (1..11)"},
	} {
		if _, err := ParseCompression(c.name, c.level); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("ParseCompression(%q, %d) = %v, want %q", c.name, c.level, err, c.err)
		}
	}
	for _, ok := range []struct {
		name  string
		level int
		want  compress.Compression
	}{{"snappy", 99, compress.Codecs.Snappy}, {"Zstd", 22, compress.Codecs.Zstd}, {"none", 0, compress.Codecs.Uncompressed}} {
		if got, err := ParseCompression(ok.name, ok.level); err != nil || got != ok.want {
			t.Errorf("ParseCompression(%q, %d) = %v, %v", ok.name, ok.level, got, err)
		}
	}
	o := DefaultOptions()
	o.Compression = "lzo"
	if _, err := Open(t.TempDir(), o); err == nil || !strings.Contains(err.Error(), "unknown Parquet compression") {
		t.Fatalf("Open with lzo: %v", err)
	}
}
