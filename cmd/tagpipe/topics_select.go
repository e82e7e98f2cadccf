package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicSelector is kafka-topics.sh's --topic for list, describe, alter and delete: a
// topic name, or a regular expression matched against the whole name (a comma is an
// alternative, as Kafka's IncludeList reads it: "a,b" is a|b).
//
// Where Kafka treats every --topic as a regex (so "a.b" also matches "aXb"), a value
// made only of the characters a topic name may hold is taken here as that name: a
// regex then needs a character no topic name has (*, ^, [, |, ',' …).
type topicSelector struct {
	name string         // a literal name, or ""
	re   *regexp.Regexp // the regex, when not a literal name
	raw  string
}

var legalTopicName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// internalTopic is Kafka's Topic.isInternal: the topics its brokers keep for groups and
// transactions (the built-in broker keeps those elsewhere and has none).
func internalTopic(t string) bool { return t == "__consumer_offsets" || t == "__transaction_state" }

func parseTopicSelector(s string) (topicSelector, error) {
	s = strings.TrimSpace(s)
	if s == "" || legalTopicName.MatchString(s) {
		return topicSelector{name: s, raw: s}, nil
	}
	expr := strings.ReplaceAll(strings.ReplaceAll(s, ",", "|"), " ", "")
	expr = strings.Trim(expr, `"'`)
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return topicSelector{}, fmt.Errorf("bad --topic %q: neither a topic name nor a regular expression: %w", s, err)
	}
	return topicSelector{re: re, raw: s}, nil
}

// all reports whether no --topic was given.
func (ts topicSelector) all() bool { return ts.name == "" && ts.re == nil }

func (ts topicSelector) match(t string) bool {
	switch {
	case ts.re != nil:
		return ts.re.MatchString(t)
	case ts.name != "":
		return t == ts.name
	}
	return true
}

// selectTopics lists the cluster's topics (internal ones too, as kafka-topics.sh does,
// unless excludeInternal) and keeps those ts matches, sorted.
func selectTopics(ctx context.Context, adm *kadm.Client, ts topicSelector, excludeInternal bool) ([]string, error) {
	td, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot list topics: %w", err)
	}
	var out []string
	for name, d := range td {
		if d.Err != nil {
			continue
		}
		if excludeInternal && (d.IsInternal || internalTopic(name)) {
			continue
		}
		if ts.match(name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// requireTopics is kafka-topics.sh's ensureTopicExists: a --topic that matches nothing
// is an error unless --if-exists.
func requireTopics(found []string, ts topicSelector, ifExists bool) error {
	if len(found) > 0 || ifExists || ts.all() {
		return nil
	}
	if ts.name != "" {
		return fmt.Errorf("topic %q does not exist (tagpipe topics list shows the topics)", ts.name)
	}
	return fmt.Errorf("no topic matches --topic %q (tagpipe topics list shows the topics)", ts.raw)
}

// partitionReport is kafka-topics.sh describe's --under-replicated-partitions,
// --unavailable-partitions, --under-min-isr-partitions and --at-min-isr-partitions: with
// any of them, describe prints only the partitions they pick, as Kafka's partition
// lines, and no topic lines. The built-in broker is one node whose partitions all have
// it as leader and only replica, so the first two are always empty there; they matter
// against a Kafka cluster.
type partitionReport struct {
	underReplicated, unavailable, underMinISR, atMinISR bool
	overridesOnly                                       bool // --topics-with-overrides
}

func (r partitionReport) any() bool {
	return r.underReplicated || r.unavailable || r.underMinISR || r.atMinISR
}

// picks says whether p is one of the partitions asked for; live are the brokers the
// cluster metadata lists, minISR the topic's min.insync.replicas.
func (r partitionReport) picks(p kadm.PartitionDetail, live map[int32]bool, minISR int) bool {
	hasLeader := p.Leader >= 0
	return r.underReplicated && len(p.Replicas)-len(p.ISR) > 0 ||
		r.unavailable && (!hasLeader || !live[p.Leader]) ||
		r.underMinISR && (!hasLeader || len(p.ISR) < minISR) ||
		r.atMinISR && len(p.ISR) == minISR
}

// printPartitionReport prints the partitions r picks as kafka-topics.sh does.
func printPartitionReport(ctx context.Context, adm *kadm.Client, out io.Writer, td kadm.TopicDetails, cfgs kadm.ResourceConfigs, r partitionReport) error {
	brokers, err := adm.ListBrokers(ctx)
	if err != nil {
		return fmt.Errorf("cannot list brokers: %w", err)
	}
	live := map[int32]bool{}
	for _, b := range brokers {
		live[b.NodeID] = true
	}
	ints := func(xs []int32) string {
		s := make([]string, len(xs))
		for i, x := range xs {
			s[i] = strconv.Itoa(int(x))
		}
		return strings.Join(s, ",")
	}
	for _, t := range td.Sorted() {
		minISR := 1
		if rc, err := cfgs.On(t.Topic, nil); err == nil {
			for _, c := range rc.Configs {
				if c.Key == "min.insync.replicas" {
					if n, err := strconv.Atoi(c.MaybeValue()); err == nil {
						minISR = n
					}
				}
			}
		}
		for _, p := range t.Partitions.Sorted() {
			if !r.picks(p, live, minISR) {
				continue
			}
			leader := "none"
			if p.Leader >= 0 {
				leader = strconv.Itoa(int(p.Leader))
			}
			fmt.Fprintf(out, "\tTopic: %s\tPartition: %d\tLeader: %s\tReplicas: %s\tIsr: %s\n", t.Topic, p.Partition, leader, ints(p.Replicas), ints(p.ISR))
		}
	}
	return nil
}

// printOverrides is describe --topics-with-overrides: the topics with a config set on
// the topic itself (DYNAMIC_TOPIC_CONFIG), one line each as kafka-topics.sh prints them,
// without partitions. (Kafka's tool counts any non-default source, so a broker whose
// server.properties changes a default lists every topic; the topic's own overrides are
// what the flag's name promises.)
func printOverrides(out io.Writer, td kadm.TopicDetails, cfgs kadm.ResourceConfigs) {
	for _, t := range td.Sorted() {
		rc, err := cfgs.On(t.Topic, nil)
		if err != nil {
			continue
		}
		var set []string
		for _, c := range rc.Configs {
			if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
				set = append(set, c.Key+"="+c.MaybeValue())
			}
		}
		if len(set) == 0 {
			continue
		}
		slices.Sort(set)
		fmt.Fprintf(out, "Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: %s\n",
			t.Topic, base64.RawURLEncoding.EncodeToString(t.ID[:]), len(t.Partitions), t.Partitions.NumReplicas(), strings.Join(set, ","))
	}
}
