// Package definitions ships the example tag definitions and audience (activity level,
// RFM, preferred hour of day, favourite genre, comedy_fans); `tagpipe tags` copies them
// into an empty definitions directory.
package definitions

import "embed"

// FS holds the example *.yaml files.
//
//go:embed *.yaml
var FS embed.FS
