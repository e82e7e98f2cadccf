package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tagpipe/tagpipe/broker/storage"
)

// dump-log: kafka-dump-log.sh for the built-in broker's partition files (whose index
// and snapshot encodings are tagpipe's own, broker/FORMAT.md, so Kafka's tool cannot
// read them). It reads files only: run it on a stopped broker's data, or on closed
// segments of a running one.
func init() {
	register(func(a *app) *cobra.Command {
		var o storage.DumpOptions
		var files []string
		var topic string
		var partition int
		cmd := &cobra.Command{
			Use:   "dump-log [FILE...]",
			Short: "Print partition files of the built-in broker: batches, records, indexes, snapshots (like kafka-dump-log.sh)",
			Long: `Print the built-in broker's partition files (.log, .index, .timeindex, .txnindex,
.snapshot) as kafka-dump-log.sh prints Kafka's: batch headers, with --deep-iteration every
record, with --print-data-log keys and payloads too. Name files (--files or arguments) or a
partition (--topic T --partition P: every file in <data_dir>/broker/T-P).`,
			Example: `  tagpipe dump-log --topic events --partition 0 --print-data-log
  tagpipe dump-log --files tagpipe-data/broker/events-0/00000000000000000000.index --index-sanity-check`,
			RunE: func(cmd *cobra.Command, args []string) error {
				files = append(files, args...)
				if topic != "" {
					dir := a.cfg.Path("broker", topic+"-"+strconv.Itoa(partition))
					found, err := partitionFiles(dir)
					if err != nil {
						return err
					}
					files = append(files, found...)
				}
				if len(files) == 0 {
					return errors.New("name files (--files or arguments) or a partition (--topic and --partition)")
				}
				var errs []error
				for _, f := range files {
					if err := storage.DumpFile(cmd.OutOrStdout(), f, o); err != nil {
						errs = append(errs, err)
					}
				}
				return errors.Join(errs...)
			},
		}
		f := cmd.Flags()
		f.StringSliceVar(&files, "files", nil, "partition files to dump, comma-separated")
		f.StringVar(&topic, "topic", "", "dump every file of this topic's partition in the data dir")
		f.IntVar(&partition, "partition", 0, "the partition, with --topic")
		f.BoolVar(&o.DeepIteration, "deep-iteration", false, "print every record of each batch (decompressed)")
		f.BoolVar(&o.PrintData, "print-data-log", false, "print records with their keys and payloads (implies --deep-iteration)")
		f.Int64Var(&o.MaxBytes, "max-bytes", 0, "read at most this many bytes of a .log (0: all)")
		f.BoolVar(&o.IndexSanityCheck, "index-sanity-check", false, "check index files against their .log and print the verdict")
		f.BoolVar(&o.VerifyIndexOnly, "verify-index-only", false, "check index files without printing their entries")
		return cmd
	})
}

// partitionExts are the partition files dump-log reads, in the order it prints a base
// offset's files.
var partitionExts = []string{".log", ".index", ".timeindex", ".txnindex", ".snapshot"}

// partitionFiles lists a partition directory's segment, index and snapshot files by base
// offset, each segment's .log first.
func partitionFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no partition directory %s (are the topic, the partition and --data-dir the broker's?)", dir)
	} else if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if slices.Contains(partitionExts, filepath.Ext(e.Name())) {
			out = append(out, e.Name())
		}
	}
	key := func(name string) (string, int) {
		ext := filepath.Ext(name)
		return strings.TrimSuffix(name, ext), slices.Index(partitionExts, ext)
	}
	slices.SortFunc(out, func(x, y string) int {
		bx, ex := key(x)
		by, ey := key(y)
		return cmp.Or(cmp.Compare(bx, by), cmp.Compare(ex, ey))
	})
	for i, n := range out {
		out[i] = filepath.Join(dir, n)
	}
	return out, nil
}
