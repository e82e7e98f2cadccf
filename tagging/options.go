package tagging

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Options configure a Tagger. DefaultOptions gives the documented defaults; a zero value
// is not usable.
type Options struct {
	// ActionWeights is the weight of one event per action (pv 1, fav 3, cart 4, buy 5).
	ActionWeights map[string]float64
	// ActionExpressions maps an action to a SQL expression over the event's `value`
	// column giving its weight, e.g. rate → "value - 3" (negative for low ratings). An
	// action in both maps takes the expression.
	ActionExpressions map[string]string
	// HalfLifeDays: an event's weight halves every HalfLifeDays days of age.
	HalfLifeDays float64
	// TopN tags are kept per user in ads_user_interest_tags.
	TopN int
	// MinWeight drops output tags whose final (normalised) weight is below it.
	MinWeight float64
	// IDF multiplies a tag's score by ln((1+N)/(1+df)) + 1, where N is the number of
	// users and df the number of users with a positive score for the tag.
	IDF bool
	// Normalize is "max" (divide by the user's largest |weight|, so the top tag is 1),
	// "sum" (divide by the sum of the user's positive weights) or "none".
	Normalize string
	// IgnoreTags are item tags that mean "no tag", e.g. MovieLens "(no genres listed)".
	IgnoreTags []string
	// DefinitionsDir holds tag definition and audience YAML files.
	DefinitionsDir string
	// MemoryLimit is DuckDB's memory_limit ("3GB"); empty leaves DuckDB's default.
	MemoryLimit string
	// Threads is DuckDB's worker threads; 0 leaves DuckDB's default (all cores).
	Threads int
	// Now is the clock, used for run timestamps only (never for the model); nil = time.Now.
	Now func() time.Time
}

// DefaultOptions are the defaults shipped in config/defaults/60_tagging.yaml.
func DefaultOptions() Options {
	return Options{
		ActionWeights:     map[string]float64{"pv": 1, "click": 1, "fav": 3, "cart": 4, "buy": 5},
		ActionExpressions: map[string]string{"rate": "value - 3"},
		HalfLifeDays:      30,
		TopN:              10,
		MinWeight:         0.01,
		IDF:               true,
		Normalize:         "max",
		IgnoreTags:        []string{"(no genres listed)"},
		MemoryLimit:       "3GB",
	}
}

var actionName = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// Validate checks the options without running anything (expressions are checked by
// DuckDB when a Tagger opens).
func (o *Options) Validate() error {
	if !(o.HalfLifeDays > 0) || math.IsInf(o.HalfLifeDays, 0) {
		return fmt.Errorf("half_life_days must be > 0, got %v", o.HalfLifeDays)
	}
	if o.TopN <= 0 {
		return fmt.Errorf("top_n must be > 0, got %d", o.TopN)
	}
	switch o.Normalize {
	case "max", "sum", "none":
	default:
		return fmt.Errorf(`normalize must be "max", "sum" or "none", got %q`, o.Normalize)
	}
	if len(o.ActionWeights)+len(o.ActionExpressions) == 0 {
		return fmt.Errorf("no action weights: every event would be ignored")
	}
	for a, w := range o.ActionWeights {
		if !actionName.MatchString(a) {
			return fmt.Errorf("action %q: names may use letters, digits and _.:-", a)
		}
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return fmt.Errorf("action %q: weight must be a finite number", a)
		}
	}
	for a, e := range o.ActionExpressions {
		if !actionName.MatchString(a) {
			return fmt.Errorf("action %q: names may use letters, digits and _.:-", a)
		}
		if strings.TrimSpace(e) == "" || strings.Contains(e, ";") {
			return fmt.Errorf("action %q: expression must be one SQL expression over value, got %q", a, e)
		}
	}
	return nil
}

// fingerprint identifies the parameters the incremental state depends on; a state
// computed under other parameters cannot be continued.
func (o *Options) fingerprint() string {
	var b strings.Builder
	fmt.Fprintf(&b, "h=%v;", o.HalfLifeDays)
	for _, a := range sortedKeys(o.ActionWeights) {
		fmt.Fprintf(&b, "w:%s=%v;", a, o.ActionWeights[a])
	}
	for _, a := range sortedKeys(o.ActionExpressions) {
		fmt.Fprintf(&b, "x:%s=%s;", a, o.ActionExpressions[a])
	}
	ig := append([]string(nil), o.IgnoreTags...)
	sort.Strings(ig)
	fmt.Fprintf(&b, "ignore=%q", ig)
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:6])
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
