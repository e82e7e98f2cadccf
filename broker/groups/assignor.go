package groups

// The server assignors of consumer groups (group.consumer.assignors): "uniform", the
// default, spreads every subscribed partition evenly and stickily over the members that
// subscribe to its topic; "range" gives each member of a topic's subscribers a range of
// its partitions. Both see only the members' subscriptions and the topics, never the
// clients, and are deterministic (members in member-id order, topics in name order).

// assign computes the target assignment: member id → partitions.
func assign(assignor string, members map[string]*cmember, topics []TopicMeta) map[string]parts {
	ids := sortedKeys(members)
	out := make(map[string]parts, len(ids))
	for _, id := range ids {
		out[id] = parts{}
	}
	// subscribers of each topic a member subscribes to, in member-id order.
	subs := make(map[[16]byte][]string, len(topics))
	for _, t := range topics {
		for _, id := range ids {
			if members[id].subscribed(t.Name) {
				subs[t.ID] = append(subs[t.ID], id)
			}
		}
	}
	if assignor == "range" {
		assignRange(out, subs, topics)
	} else {
		assignUniform(out, members, subs, topics)
	}
	return out
}

// assignRange is Kafka's range assignment per topic: with n subscribers of a topic of
// p partitions, each takes p/n consecutive partitions, the first p%n one more.
func assignRange(out map[string]parts, subs map[[16]byte][]string, topics []TopicMeta) {
	for _, t := range topics {
		ms := subs[t.ID]
		if len(ms) == 0 {
			continue
		}
		n := int32(len(ms))
		per, extra := t.Partitions/n, t.Partitions%n
		start := int32(0)
		for i, id := range ms {
			cnt := per
			if int32(i) < extra {
				cnt++
			}
			for p := start; p < start+cnt; p++ {
				out[id].add(t.ID, p)
			}
			start += cnt
		}
	}
}

// assignUniform keeps each partition with the member the previous target gave it to
// while that member still subscribes to its topic, gives the others to the least loaded
// subscriber, then moves partitions from the most loaded member to a subscriber of the
// topic holding at least two fewer until none can move: with the same subscription everywhere, the
// counts differ by one at most, and a member that joins or leaves moves only the
// partitions needed to get there (Kafka's UniformAssignor keeps the same properties).
func assignUniform(out map[string]parts, members map[string]*cmember, subs map[[16]byte][]string, topics []TopicMeta) {
	var all []tpKey
	for _, t := range topics {
		if len(subs[t.ID]) == 0 {
			continue
		}
		for p := int32(0); p < t.Partitions; p++ {
			all = append(all, tpKey{t.ID, p})
		}
	}
	owner := make(map[tpKey]string, len(all))
	count := map[string]int{}
	for _, k := range all {
		for _, id := range subs[k.id] {
			if members[id].target.has(k.id, k.p) {
				owner[k] = id
				count[id]++
				break
			}
		}
	}
	leastLoaded := func(k tpKey) string {
		best := ""
		for _, id := range subs[k.id] {
			if best == "" || count[id] < count[best] {
				best = id
			}
		}
		return best
	}
	for _, k := range all {
		if _, ok := owner[k]; !ok {
			id := leastLoaded(k)
			owner[k] = id
			count[id]++
		}
	}
	// Move one partition at a time, from the most loaded member that has one to give,
	// so that no partition moves twice. Each move lowers the sum of the squared counts,
	// so this ends.
	for {
		var pick tpKey
		to, most := "", -1
		for _, k := range all {
			from := owner[k]
			if count[from] <= most {
				continue
			}
			if t := leastLoaded(k); count[from]-count[t] >= 2 {
				pick, to, most = k, t, count[from]
			}
		}
		if to == "" {
			break
		}
		count[owner[pick]]--
		owner[pick] = to
		count[to]++
	}
	for _, k := range all {
		out[owner[k]].add(k.id, k.p)
	}
}
