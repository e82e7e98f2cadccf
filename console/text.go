package console

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

// WriteText prints the status as the terminal summary of `tagpipe status`.
func (st *Status) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	section := func(name string) { fmt.Fprintf(tw, "\n== %s\n", name) }
	section("topics")
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tRECORDS\tRATE/s")
	for _, t := range st.Topics {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\n", t.Name, len(t.Partitions), t.Records, t.Rate)
	}
	section("consumer groups")
	fmt.Fprintln(tw, "GROUP\tSTATE\tMEMBERS\tLAG")
	for _, g := range st.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", g.Name, g.State, g.Members, g.Lag)
	}
	section("collector")
	fmt.Fprintln(tw, "METRIC\tLABELS\tVALUE")
	for _, m := range st.Ingest {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\n", m.Name, m.Labels, m.Value)
	}
	section("streaming (last batches)")
	fmt.Fprintln(tw, "PIPELINE\tBATCH\tRECORDS\tINPUT/s\tPROCESSING\tSCHED DELAY")
	from := max(0, len(st.Streaming)-5)
	for _, b := range st.Streaming[from:] {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\n", b.Pipeline, b.ID, b.Records, b.InputRate, b.ProcessingTime, b.SchedulingDelay)
	}
	section("jobs (recent runs)")
	fmt.Fprintln(tw, "JOB\tDS\tSTATE\tATTEMPT\tROWS\tERROR")
	for i, r := range st.Jobs {
		if i == 10 {
			break
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", r.Job, r.DS, r.State, r.Attempt, r.Rows, r.Error)
	}
	if len(st.Pools) > 0 {
		section("job pools")
		fmt.Fprintln(tw, "POOL\tSLOTS\tUSED\tOPEN\tQUEUED\tSCOPE")
		for _, p := range st.Pools {
			scope := "slots: this scheduler; queued: data dir" // default_pool sized by parallelism: each process's own slots, the shared history's queue
			if p.Shared {
				scope = "data dir"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", p.Name, p.Slots, p.Used, p.Open, p.Queued, scope)
		}
	}
	section("top tags (latest day)")
	fmt.Fprintln(tw, "TAG\tUSERS\tAVG WEIGHT")
	for _, t := range st.Tags {
		fmt.Fprintf(tw, "%s\t%d\t%.3f\n", t.Tag, t.Users, t.AvgWeight)
	}
	if st.TagsNote != "" {
		fmt.Fprintln(tw, "("+st.TagsNote+")")
	}
	if len(st.Errors) > 0 {
		section("errors")
		var keys []string
		for k := range st.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(tw, "%s:\t%s\n", k, st.Errors[k])
		}
	}
	return tw.Flush()
}
