package main

import (
	"github.com/spf13/cobra"
)

func init() {
	register(func(a *app) *cobra.Command {
		cmd := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
		cmd.AddCommand(&cobra.Command{
			Use:   "print",
			Short: "Print the effective configuration, with where each value came from",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return a.cfg.Print(cmd.OutOrStdout())
			},
		})
		return cmd
	})
}
