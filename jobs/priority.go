package jobs

import (
	"fmt"
	"time"
)

// Priority (Airflow's priority_weight and weight_rule). Each job has an effective weight
// fixed at Compile: its own priority_weight (default 1) plus, by its weight_rule, the
// own weights of every job downstream of it (default), of every job upstream of it, or
// none (absolute); each related job counts once, however many paths lead to it. Queued
// runs are ranked by it, highest first, then by logical date, then by job name: the
// scheduler looks at its pending runs in that order, and a run refused only for want of
// pool slots holds its place in its pool's queue (pools.waiting) so that no run ranked
// after it, in this scheduler or in a backfill or manual run of this process, takes
// that pool's slots first. For a shared pool the waiter files (pool_wait.go) carry the
// same rank, so runs waiting in other processes keep their places too.

// Weight is the job's effective priority weight.
func (j *Job) Weight() int { return j.weight }

// WeightRule is the job's weight_rule (downstream when the definition names none).
func (j *Job) WeightRule() string { return j.weightRule }

// PriorityWeight is the job's own priority_weight (1 when the definition sets none).
func (j *Job) PriorityWeight() int { return j.ownWeight }

// checkWeight resolves def's priority_weight and weight_rule, reporting through fail.
func (j *Job) checkWeight(fail func(job, field, format string, args ...any)) {
	j.ownWeight = 1
	if w := j.Def.PriorityWeight; w != nil {
		switch {
		case *w < 0:
			fail(j.Name, "priority_weight", "must be >= 0, got %d", *w)
		case *w > maxPriorityWeight:
			fail(j.Name, "priority_weight", "must be at most %d, got %d", maxPriorityWeight, *w)
		default:
			j.ownWeight = *w
		}
	}
	switch j.Def.WeightRule {
	case "", WeightDownstream:
		j.weightRule = WeightDownstream
	case WeightUpstream, WeightAbsolute:
		j.weightRule = j.Def.WeightRule
	default:
		fail(j.Name, "weight_rule", "unknown rule %q (want %s, %s or %s)", j.Def.WeightRule, WeightDownstream, WeightUpstream, WeightAbsolute)
	}
}

// weigh sets every job's effective weight; the DAG has no cycle.
func (d *DAG) weigh() {
	for _, j := range d.jobs {
		j.weight = j.ownWeight
		var next func(*Job) []string
		switch j.weightRule {
		case WeightDownstream:
			next = func(x *Job) []string { return x.downstream }
		case WeightUpstream:
			next = func(x *Job) []string { return x.upstream }
		default:
			continue
		}
		seen := map[string]bool{j.Name: true}
		stack := append([]string(nil), next(j)...)
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[n] {
				continue
			}
			seen[n] = true
			j.weight += d.jobs[n].ownWeight
			stack = append(stack, next(d.jobs[n])...)
		}
	}
}

// rank is a queued run's place: higher weight first, then the earlier logical date,
// then the job name.
type rank struct {
	weight  int
	logical time.Time
	job     string
}

func rankOf(j *Job, logical time.Time) rank {
	return rank{weight: j.weight, logical: logical, job: j.Name}
}

// before says a is ahead of b in the queue.
func (a rank) before(b rank) bool {
	if a.weight != b.weight {
		return a.weight > b.weight
	}
	if !a.logical.Equal(b.logical) {
		return a.logical.Before(b.logical)
	}
	return a.job < b.job
}

func (a rank) String() string {
	return fmt.Sprintf("%s %s (weight %d)", a.job, a.logical.UTC().Format(time.RFC3339), a.weight)
}
