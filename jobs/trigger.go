package jobs

import (
	"fmt"
	"strings"
)

// TriggerRule says when a run starts given the runs of its depends_on jobs for the same
// ds (its upstream runs), as Airflow's trigger_rule does for a task's direct upstream
// tasks. The rules Airflow has beyond these (one_done, all_skipped, none_skipped,
// none_failed_min_one_success, setup/teardown rules) are not offered.
type TriggerRule string

const (
	// RuleAllSuccess (the default): every upstream run succeeded. One failed or
	// upstream_failed makes the run upstream_failed, else one skipped makes it skipped,
	// without waiting for the others.
	RuleAllSuccess TriggerRule = "all_success"
	// RuleAllDone: every upstream run is finished, whatever its state (clean-ups).
	RuleAllDone TriggerRule = "all_done"
	// RuleAllFailed: every upstream run failed or is upstream_failed; one that succeeded
	// or was skipped makes the run skipped at once.
	RuleAllFailed TriggerRule = "all_failed"
	// RuleOneFailed: as soon as one upstream run failed or is upstream_failed, without
	// waiting for the others; once all finished with none failed, skipped.
	RuleOneFailed TriggerRule = "one_failed"
	// RuleOneSuccess: as soon as one upstream run succeeded; once all finished with none
	// succeeded, upstream_failed (skipped when every one was skipped).
	RuleOneSuccess TriggerRule = "one_success"
	// RuleNoneFailed: every upstream run succeeded or was skipped; one failed or
	// upstream_failed makes the run upstream_failed at once.
	RuleNoneFailed TriggerRule = "none_failed"
	// RuleAlways: the run starts when its interval ends, without looking at upstream
	// runs at all.
	RuleAlways TriggerRule = "always"
)

// TriggerRules lists the rules a definition may name, the default first.
var TriggerRules = []TriggerRule{RuleAllSuccess, RuleAllDone, RuleAllFailed, RuleOneFailed, RuleOneSuccess, RuleNoneFailed, RuleAlways}

// parseTriggerRule reads a definition's trigger_rule ("" = all_success).
func parseTriggerRule(s string) (TriggerRule, error) {
	if s == "" {
		return RuleAllSuccess, nil
	}
	for _, r := range TriggerRules {
		if string(r) == s {
			return r, nil
		}
	}
	names := make([]string, len(TriggerRules))
	for i, r := range TriggerRules {
		names[i] = string(r)
	}
	return "", fmt.Errorf("unknown rule %q (want %s)", s, strings.Join(names, ", "))
}

// verdict is what a trigger rule makes of a run's upstream runs.
type verdict int

const (
	verdictRun            verdict = iota // start it
	verdictWait                          // not decided yet: an upstream run is not finished
	verdictSkipped                       // record it skipped, not run
	verdictUpstreamFailed                // record it upstream_failed, not run
)

// upTally counts the upstream runs of one run by outcome. An upstream job with no run
// recorded for the ds counts as one unfinished run. The why* fields name the first run
// counted in each outcome ("upstream J ds D is S", "… has no run"), to say why.
type upTally struct {
	success, skipped, failed, waiting             int
	whySuccess, whySkipped, whyFailed, whyWaiting string
}

// add counts one upstream run of job up for ds; st "" = not recorded (unfinished).
func (t *upTally) add(up, ds string, st State) {
	n, why := &t.waiting, &t.whyWaiting
	switch st {
	case StateSuccess:
		n, why = &t.success, &t.whySuccess
	case StateSkipped:
		n, why = &t.skipped, &t.whySkipped
	case StateFailed, StateUpstreamFailed:
		n, why = &t.failed, &t.whyFailed
	}
	*n++
	switch {
	case *why != "":
	case st == "":
		*why = fmt.Sprintf("upstream %s ds %s has no run", up, ds)
	default:
		*why = fmt.Sprintf("upstream %s ds %s is %s", up, ds, st)
	}
}

// decide applies rule r to the tally, Airflow's way (its TriggerRuleDep on the direct
// upstream tasks): some rules decide before every upstream run has finished. A run
// without upstream runs to look at starts. The reason is set for skipped and
// upstream_failed; all_success keeps the reason tagpipe always gave ("upstream J ds D
// is failed"), the other rules name themselves.
func (r TriggerRule) decide(t upTally) (verdict, string) {
	total := t.success + t.skipped + t.failed + t.waiting
	if total == 0 || r == RuleAlways {
		return verdictRun, ""
	}
	done := t.waiting == 0
	why := func(format string, args ...any) string {
		return fmt.Sprintf("trigger_rule %s: ", r) + fmt.Sprintf(format, args...)
	}
	switch r {
	case RuleAllSuccess:
		switch {
		case t.failed > 0:
			return verdictUpstreamFailed, t.whyFailed
		case t.skipped > 0:
			return verdictSkipped, t.whySkipped
		case done:
			return verdictRun, ""
		}
	case RuleAllDone:
		if done {
			return verdictRun, ""
		}
	case RuleAllFailed:
		switch {
		case t.success > 0:
			return verdictSkipped, why("%s", t.whySuccess)
		case t.skipped > 0:
			return verdictSkipped, why("%s", t.whySkipped)
		case done:
			return verdictRun, ""
		}
	case RuleOneFailed:
		switch {
		case t.failed > 0:
			return verdictRun, ""
		case done:
			return verdictSkipped, why("no upstream run failed")
		}
	case RuleOneSuccess:
		switch {
		case t.success > 0:
			return verdictRun, ""
		case done && t.skipped == total:
			return verdictSkipped, why("every upstream run was skipped")
		case done:
			return verdictUpstreamFailed, why("no upstream run succeeded (%s)", t.whyFailed)
		}
	case RuleNoneFailed:
		switch {
		case t.failed > 0:
			return verdictUpstreamFailed, why("%s", t.whyFailed)
		case done:
			return verdictRun, ""
		}
	}
	return verdictWait, ""
}
