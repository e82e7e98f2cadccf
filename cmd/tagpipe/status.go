package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/tagpipe/tagpipe/console"
)

func init() {
	register(func(a *app) *cobra.Command {
		var admin string
		cmd := &cobra.Command{
			Use:   "status",
			Short: "Summarise a running tagpipe: topics, groups, collector, streaming, jobs, tags",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if admin == "" {
					admin = a.cfg.Admin.Listen
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/console/status.json", nil)
				if err != nil {
					return err
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return fmt.Errorf("cannot reach tagpipe at %s (is `tagpipe up` running?): %w", admin, err)
				}
				defer resp.Body.Close()
				if resp.StatusCode == http.StatusNotFound {
					// A part run alone (tagpipe broker, ingest, stream, jobs) has an admin
					// listener too, with /metrics and /healthz but no console.
					return fmt.Errorf("the admin listener at %s has no console (%s): it is a part run alone (tagpipe broker, ingest, stream or jobs), not `tagpipe up`; its /metrics are at http://%s/metrics, or name the up process's listener with --admin", admin, resp.Status, admin)
				}
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("status from %s: %s", admin, resp.Status)
				}
				var st console.Status
				if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
					return fmt.Errorf("cannot decode status: %w", err)
				}
				return st.WriteText(cmd.OutOrStdout())
			},
		}
		cmd.Flags().StringVar(&admin, "admin", "", "admin listener of the running tagpipe (default admin.listen)")
		return cmd
	})
}
