package config

import (
	"math"
	"regexp"
	"strings"
)

// Tagging configures the interest-tag model, tag definitions and audiences (tagging/).
type Tagging struct {
	// ActionWeights is one event's weight per action (pv 1, fav 3, cart 4, buy 5).
	// Events with other actions are ignored by the model (and counted in its run stats).
	ActionWeights map[string]float64 `yaml:"action_weights"`
	// ActionExpressions gives an action a SQL expression over the event's value as its
	// weight, e.g. rate: "value - 3" (negative for low ratings).
	ActionExpressions map[string]string `yaml:"action_expressions"`
	// HalfLifeDays is the time-decay half-life of an event's weight.
	HalfLifeDays float64 `yaml:"half_life_days"`
	// TopN tags are kept per user.
	TopN int `yaml:"top_n"`
	// MinWeight drops tags whose final (normalised) weight is below it.
	MinWeight float64 `yaml:"min_weight"`
	// IDF weighs tags by inverse user frequency.
	IDF bool `yaml:"idf"`
	// Normalize is per-user normalisation: max, sum or none.
	Normalize string `yaml:"normalize"`
	// IgnoreTags are item tags meaning "no tag" (MovieLens "(no genres listed)").
	IgnoreTags []string `yaml:"ignore_tags"`
	// DefinitionsDir holds tag definition and audience YAML files; empty = data_dir/tags.
	DefinitionsDir string `yaml:"definitions_dir"`
	// MemoryLimit bounds DuckDB during tag runs ("3GB"); empty = DuckDB's default.
	MemoryLimit string `yaml:"memory_limit"`
	// Threads is DuckDB's worker threads for tag runs; 0 = all cores.
	Threads int `yaml:"threads"`
}

var taggingAction = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

func (t *Tagging) validate(ch *check) {
	if !(t.HalfLifeDays > 0) || math.IsInf(t.HalfLifeDays, 0) {
		ch.fail("half_life_days", "must be > 0, got %v", t.HalfLifeDays)
	}
	ch.positive("top_n", int64(t.TopN))
	ch.oneOf("normalize", t.Normalize, "max", "sum", "none")
	if len(t.ActionWeights)+len(t.ActionExpressions) == 0 {
		ch.fail("action_weights", "no action has a weight: every event would be ignored")
	}
	for a, w := range t.ActionWeights {
		if !taggingAction.MatchString(a) {
			ch.fail("action_weights", "action %q: names may use letters, digits and _.:-", a)
		}
		if math.IsNaN(w) || math.IsInf(w, 0) {
			ch.fail("action_weights", "action %q: weight must be a finite number", a)
		}
	}
	for a, e := range t.ActionExpressions {
		if !taggingAction.MatchString(a) {
			ch.fail("action_expressions", "action %q: names may use letters, digits and _.:-", a)
		}
		if strings.TrimSpace(e) == "" || strings.Contains(e, ";") {
			ch.fail("action_expressions", "action %q: want one SQL expression over value, got %q", a, e)
		}
	}
	if t.Threads < 0 {
		ch.fail("threads", "must be >= 0, got %d", t.Threads)
	}
}
