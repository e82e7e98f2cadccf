package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type adminRunE = func(fn func(ctx context.Context, cl *kgo.Client, adm *kadm.Client, cmd *cobra.Command) error) func(*cobra.Command, []string) error

// resetSpec is one of kafka-consumer-groups.sh's --reset-offsets scenarios.
type resetSpec struct {
	toEarliest, toLatest, toCurrent  bool
	toDatetime, byDuration, fromFile string
	toOffset, shiftBy                int64
	changed                          func(string) bool
}

// scenarios counts the scenarios given (exactly one is needed).
func (r *resetSpec) scenarios() int {
	n := 0
	for _, b := range []bool{r.toEarliest, r.toLatest, r.toCurrent, r.toDatetime != "", r.byDuration != "", r.fromFile != "",
		r.changed("to-offset"), r.changed("shift-by")} {
		if b {
			n++
		}
	}
	return n
}

// isoDuration is ISO 8601's PnDTnHnMnS, as kafka-consumer-groups.sh's --by-duration takes.
var isoDuration = regexp.MustCompile(`^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// parseResetDuration reads --by-duration: ISO 8601 (P1DT2H, PT30M) or a Go duration (26h).
func parseResetDuration(s string) (time.Duration, error) {
	if m := isoDuration.FindStringSubmatch(strings.ToUpper(s)); m != nil && s != "P" && !strings.HasSuffix(strings.ToUpper(s), "T") {
		var d time.Duration
		for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
			if m[i+1] != "" {
				n, _ := strconv.ParseInt(m[i+1], 10, 64)
				d += time.Duration(n) * unit
			}
		}
		if m[4] != "" {
			f, _ := strconv.ParseFloat(m[4], 64)
			d += time.Duration(f * float64(time.Second))
		}
		return d, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad --by-duration %q: want ISO 8601 (PnDTnHnMnS, e.g. P1DT2H) or a duration such as 26h", s)
	}
	return d, nil
}

// parseTopicPartitions reads --topic values: "t" (every partition) or "t:0,2".
func parseTopicPartitions(vals []string) (map[string][]int32, error) {
	out := map[string][]int32{}
	for _, v := range vals {
		t, ps, ok := strings.Cut(v, ":")
		if t == "" {
			return nil, fmt.Errorf("bad --topic %q: want TOPIC or TOPIC:P,P", v)
		}
		if _, seen := out[t]; !seen {
			out[t] = nil
		}
		if !ok {
			continue
		}
		for p := range strings.SplitSeq(ps, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("bad partition %q in --topic %q", p, v)
			}
			out[t] = append(out[t], int32(n))
		}
	}
	return out, nil
}

// readResetFile reads --from-file: CSV lines topic,partition,offset (what --export prints
// for one group), which are the offsets of single, or group,topic,partition,offset (what
// it prints for several), as kafka-consumer-groups.sh reads them. The result is keyed by
// group.
func readResetFile(r io.Reader, single string) (map[string]kadm.Offsets, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, err
	}
	out := map[string]kadm.Offsets{}
	for i, rec := range recs {
		group := single
		switch {
		case len(rec) == 4:
			group, rec = rec[0], rec[1:]
		case len(rec) != 3:
			return nil, fmt.Errorf("line %d: want topic,partition,offset or group,topic,partition,offset, got %d fields", i+1, len(rec))
		case single == "":
			return nil, fmt.Errorf("line %d: with several groups each line must start with its group (group,topic,partition,offset)", i+1)
		}
		p, err1 := strconv.ParseInt(rec[1], 10, 32)
		o, err2 := strconv.ParseInt(rec[2], 10, 64)
		if err1 != nil || err2 != nil || p < 0 || o < 0 {
			return nil, fmt.Errorf("line %d: bad partition or offset in %q", i+1, strings.Join(rec, ","))
		}
		offs := out[group]
		if offs == nil {
			offs = kadm.Offsets{}
			out[group] = offs
		}
		offs.Add(kadm.Offset{Topic: rec[0], Partition: int32(p), At: o, LeaderEpoch: -1})
	}
	return out, nil
}

// resetPlan is one group's reset: the offsets it has committed and those it would get.
type resetPlan struct {
	group           string
	committed, next kadm.Offsets
}

// planReset works out the new offsets of one group: of the partitions topicArgs selects
// (default: those of fromFile, else every topic the group committed), by spec's scenario.
func planReset(ctx context.Context, adm *kadm.Client, group string, topicArgs []string, spec *resetSpec, fromFile kadm.Offsets) (resetPlan, error) {
	plan := resetPlan{group: group}
	selected, err := parseTopicPartitions(topicArgs)
	if err != nil {
		return plan, err
	}
	if spec.fromFile != "" && len(topicArgs) == 0 {
		for t, ps := range fromFile {
			for p := range ps {
				selected[t] = append(selected[t], p)
			}
		}
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return plan, fmt.Errorf("cannot fetch offsets of %q: %w", group, err)
	}
	plan.committed = committed.Offsets()
	if len(selected) == 0 && spec.fromFile == "" {
		for _, t := range committed.Offsets().TopicsSet().Topics() {
			selected[t] = nil
		}
	}
	if len(selected) == 0 {
		if spec.fromFile != "" {
			return plan, fmt.Errorf("--from-file %s has no offsets of group %q", spec.fromFile, group)
		}
		return plan, fmt.Errorf("group %q has no committed offsets; name a --topic", group)
	}
	topics := make([]string, 0, len(selected))
	for t := range selected {
		topics = append(topics, t)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return plan, err
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return plan, err
	}
	if err := ends.Error(); err != nil {
		return plan, missingTopic(err, strings.Join(topics, ", "))
	}
	var byTime kadm.ListedOffsets
	if spec.toDatetime != "" || spec.byDuration != "" {
		var ts time.Time
		if spec.toDatetime != "" {
			if ts, err = parseKafkaDatetime(spec.toDatetime); err != nil {
				return plan, fmt.Errorf("bad --to-datetime %q: %w", spec.toDatetime, err)
			}
		} else {
			d, err := parseResetDuration(spec.byDuration)
			if err != nil {
				return plan, err
			}
			ts = time.Now().Add(-d)
		}
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, ts.UnixMilli(), topics...); err != nil {
			return plan, err
		}
	}
	next := kadm.Offsets{}
	ends.Each(func(e kadm.ListedOffset) {
		if ps := selected[e.Topic]; len(ps) > 0 && !slices.Contains(ps, e.Partition) {
			return
		}
		s, _ := starts.Lookup(e.Topic, e.Partition)
		cur, has := committed.Lookup(e.Topic, e.Partition)
		clamp := func(o int64) int64 { return min(max(o, s.Offset), e.Offset) }
		var at int64
		switch {
		case spec.toEarliest:
			at = s.Offset
		case spec.toLatest:
			at = e.Offset
		case spec.toCurrent:
			if !has || cur.At < 0 {
				return // nothing committed: nothing to keep
			}
			at = cur.At
		case spec.changed("to-offset"):
			at = clamp(spec.toOffset)
		case byTime != nil:
			at = e.Offset
			if o, ok := byTime.Lookup(e.Topic, e.Partition); ok && o.Offset >= 0 {
				at = o.Offset
			}
		case spec.fromFile != "":
			o, ok := fromFile.Lookup(e.Topic, e.Partition)
			if !ok {
				return
			}
			at = clamp(o.At)
		default: // --shift-by
			base := s.Offset
			if has && cur.At >= 0 {
				base = cur.At
			}
			at = clamp(base + spec.shiftBy)
		}
		next.Add(kadm.Offset{Topic: e.Topic, Partition: e.Partition, At: at, LeaderEpoch: -1})
	})
	var unknown []string
	for t, ps := range selected {
		for _, p := range ps {
			if _, ok := ends.Lookup(t, p); !ok {
				unknown = append(unknown, fmt.Sprintf("%s:%d", t, p))
			}
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return plan, fmt.Errorf("no such partition: %s", strings.Join(unknown, ", "))
	}
	plan.next = next
	return plan, nil
}

// printResetPlans prints the plans as kafka-consumer-groups.sh does: a table with a GROUP
// column (and, beyond Kafka, the CURRENT-OFFSET each row replaces), or with --export CSV,
// topic,partition,offset for one --group and group,topic,partition,offset for several.
func printResetPlans(w io.Writer, plans []resetPlan, export, withGroup bool) error {
	if export {
		cw := csv.NewWriter(w)
		for _, pl := range plans {
			for _, o := range pl.next.Sorted() {
				rec := []string{o.Topic, strconv.Itoa(int(o.Partition)), strconv.FormatInt(o.At, 10)}
				if withGroup {
					rec = append([]string{pl.group}, rec...)
				}
				cw.Write(rec)
			}
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET")
	for _, pl := range plans {
		for _, o := range pl.next.Sorted() { // by topic and partition, as describe prints them
			cur := "-"
			if c, ok := pl.committed.Lookup(o.Topic, o.Partition); ok && c.At >= 0 {
				cur = strconv.FormatInt(c.At, 10)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\n", pl.group, o.Topic, o.Partition, cur, o.At)
		}
	}
	return tw.Flush()
}

func resetOffsetsCmd(withAdmin adminRunE) *cobra.Command {
	var (
		groups                     groupsFlag
		topicArgs                  []string
		spec                       resetSpec
		execute, export, allTopics bool
	)
	cmd := &cobra.Command{Use: "reset-offsets (--group G … | --all-groups)",
		Short: "Move groups' committed offsets, each group in turn (dry run unless --execute; a group must have no members)",
		Example: `  tagpipe groups reset-offsets --group g --topic events --to-earliest --execute
  tagpipe groups reset-offsets --group g --topic events:0,1 --by-duration PT2H --execute
  tagpipe groups reset-offsets --group g1 --group g2 --topic events --to-latest --execute
  tagpipe groups reset-offsets --all-groups --topic events --shift-by -100
  tagpipe groups reset-offsets --group g --to-current --export > offsets.csv
  tagpipe groups reset-offsets --group g --from-file offsets.csv --execute`,
		Args: cobra.NoArgs,
		RunE: withAdmin(func(ctx context.Context, _ *kgo.Client, adm *kadm.Client, cmd *cobra.Command) error {
			spec.changed = cmd.Flags().Changed
			if spec.scenarios() != 1 {
				return errors.New("give exactly one of --to-earliest, --to-latest, --to-current, --to-offset, --shift-by, --to-datetime, --by-duration, --from-file")
			}
			if allTopics && len(topicArgs) > 0 {
				return errors.New("give --all-topics or --topic, not both")
			}
			if _, err := parseTopicPartitions(topicArgs); err != nil {
				return err
			}
			ids, err := groups.resolve(ctx, adm)
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "No consumer groups to reset.")
				return nil
			}
			single := "" // the group of a file's topic,partition,offset lines
			if len(groups.groups) == 1 {
				single = ids[0]
			}
			var fromFile map[string]kadm.Offsets
			if spec.fromFile != "" {
				f, err := os.Open(spec.fromFile)
				if err != nil {
					return fmt.Errorf("--from-file: %w", err)
				}
				fromFile, err = readResetFile(f, single)
				f.Close()
				if err != nil {
					return fmt.Errorf("--from-file %s: %w", spec.fromFile, err)
				}
			}
			// Each group in turn, as kafka-consumer-groups.sh: one that fails (members,
			// no offsets) is reported and the others still reset.
			var plans []resetPlan
			var errs []error
			for _, id := range ids {
				plan, err := planReset(ctx, adm, id, topicArgs, &spec, fromFile[id])
				if err == nil && execute {
					err = commitResetPlan(ctx, adm, plan)
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				plans = append(plans, plan)
			}
			if len(plans) > 0 {
				if err := printResetPlans(cmd.OutOrStdout(), plans, export, single == ""); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if export { // stdout is the CSV
				out = cmd.ErrOrStderr()
			}
			switch {
			case !execute && !export && len(plans) > 0:
				fmt.Fprintln(out, "Dry run: nothing changed (add --execute).")
			case execute:
				for _, pl := range plans {
					fmt.Fprintf(out, "Reset offsets of group %s.\n", pl.group)
				}
			}
			return errors.Join(errs...)
		})}
	f := cmd.Flags()
	groups.add(cmd, "reset")
	f.StringArrayVar(&topicArgs, "topic", nil, "only this topic, or TOPIC:P,P for some partitions (repeatable; default: every topic the group committed)")
	f.BoolVar(&allTopics, "all-topics", false, "every topic the group committed (the default)")
	f.BoolVar(&spec.toEarliest, "to-earliest", false, "to each partition's log start offset")
	f.BoolVar(&spec.toLatest, "to-latest", false, "to each partition's end offset")
	f.BoolVar(&spec.toCurrent, "to-current", false, "to the committed offsets (with --export: save them)")
	f.Int64Var(&spec.toOffset, "to-offset", 0, "to this offset (clamped to each partition's start and end)")
	f.Int64Var(&spec.shiftBy, "shift-by", 0, "move each committed offset by N (negative: back)")
	f.StringVar(&spec.toDatetime, "to-datetime", "", "to the first record at or after this time: YYYY-MM-DDTHH:mm:SS.sss as kafka-consumer-groups.sh takes it (UTC unless a zone such as Z or +08:00 follows), or RFC 3339")
	f.StringVar(&spec.byDuration, "by-duration", "", "to the first record at or after now minus this (ISO 8601 PnDTnHnMnS, or 26h)")
	f.StringVar(&spec.fromFile, "from-file", "", "to the offsets of a CSV file of topic,partition,offset lines, or group,topic,partition,offset for several groups (as --export prints)")
	f.BoolVar(&export, "export", false, "print the new offsets as CSV (topic,partition,offset; with several groups group first) instead of a table")
	f.BoolVar(&execute, "execute", false, "apply the change (default: only show it)")
	f.Bool("dry-run", false, "only show the change (the default)")
	return cmd
}

// commitResetPlan commits one group's new offsets; the broker refuses it while the group
// has members.
func commitResetPlan(ctx context.Context, adm *kadm.Client, plan resetPlan) error {
	rs, err := adm.CommitOffsets(ctx, plan.group, plan.next)
	if err != nil {
		return fmt.Errorf("cannot commit offsets of %q: %w", plan.group, err)
	}
	if err := rs.Error(); err != nil {
		return fmt.Errorf("cannot commit offsets of %q (it must have no active members): %w", plan.group, err)
	}
	return nil
}

// deleteOffsetsCmd is kafka-consumer-groups.sh --delete-offsets (OffsetDelete).
func deleteOffsetsCmd(withAdmin adminRunE) *cobra.Command {
	var group string
	var topicArgs []string
	cmd := &cobra.Command{Use: "delete-offsets",
		Short: "Delete a group's committed offsets of topics or partitions (the group must not be consuming them)",
		Args:  cobra.NoArgs,
		RunE: withAdmin(func(ctx context.Context, _ *kgo.Client, adm *kadm.Client, cmd *cobra.Command) error {
			selected, err := parseTopicPartitions(topicArgs)
			if err != nil {
				return err
			}
			committed, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				return fmt.Errorf("cannot fetch offsets of %q: %w", group, err)
			}
			set := kadm.TopicsSet{}
			for t, ps := range selected {
				if len(ps) == 0 {
					for p := range committed[t] {
						set.Add(t, p)
					}
					if len(committed[t]) == 0 {
						return fmt.Errorf("group %q has no committed offsets of topic %q", group, t)
					}
					continue
				}
				set.Add(t, ps...)
			}
			rs, err := adm.DeleteOffsets(ctx, group, set)
			if err != nil {
				return fmt.Errorf("cannot delete offsets of %q: %w", group, err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TOPIC\tPARTITION\tSTATUS")
			var failed []error
			for _, t := range set.Sorted() {
				for _, p := range t.Partitions {
					status := "Successful"
					if err := rs[t.Topic][p]; err != nil {
						status = "Error: " + err.Error()
						failed = append(failed, fmt.Errorf("%s:%d: %w", t.Topic, p, err))
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\n", t.Topic, p, status)
				}
			}
			_ = tw.Flush()
			return errors.Join(failed...)
		})}
	cmd.Flags().StringVar(&group, "group", "", "consumer group")
	cmd.Flags().StringArrayVar(&topicArgs, "topic", nil, "TOPIC (every committed partition) or TOPIC:P,P (repeatable)")
	_ = cmd.MarkFlagRequired("group")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

// kafkaDatetimeLayouts are the forms parseKafkaDatetime takes. Go's parser accepts a
// fractional second after the seconds even where a layout has none.
var kafkaDatetimeLayouts = []string{
	"2006-01-02T15:04:05Z07:00", // RFC 3339, and Kafka's ±hh:mm
	"2006-01-02T15:04:05Z0700",  // Kafka's ±hhmm
	"2006-01-02T15:04:05Z07",    // Kafka's ±hh
	"2006-01-02T15:04:05",       // no zone: UTC, as Kafka's Utils.getDateTime
}

// parseKafkaDatetime reads a time as kafka-consumer-groups.sh --to-datetime does
// (YYYY-MM-DDTHH:mm:SS.sss, a zone optional and UTC without one) or as RFC 3339.
func parseKafkaDatetime(s string) (time.Time, error) {
	for _, layout := range kafkaDatetimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("want YYYY-MM-DDTHH:mm:SS.sss as Kafka's tools take it (UTC unless a zone such as Z or +08:00 follows), e.g. 2026-01-02T15:04:05.000")
}
