package tagging

import "testing"

// FuzzParseExpression: any input either parses and renders to SQL, or fails with an
// error; never a panic.
func FuzzParseExpression(f *testing.F) {
	for _, s := range []string{
		"interest:Comedy > 0.3 AND activity = 'high'",
		`interest:"Film-Noir" AND NOT (rfm IN ('lost', 'x''y') OR rfm IS NOT NULL)`,
		"a NOT IN (1, -2.5e3)", "((", "interest:", "'", "1 = 1", "interest:A>=-.5 or b<>c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpression(s)
		if err != nil {
			return
		}
		interest, defs := map[string]bool{}, map[string]bool{}
		e.refs(interest, defs)
		icol, dcol := map[string]string{}, map[string]string{}
		for k := range interest {
			icol[k] = "i"
		}
		for k := range defs {
			dcol[k] = "d"
		}
		if e.sql(icol, dcol) == "" {
			t.Fatalf("%q rendered to nothing", s)
		}
	})
}
