package main

import (
	"fmt"
	"io"

	"github.com/banjia-mail/banjia/sources/presets"
)

// providerSources prints where each preset's values come from.
func providerSources(w io.Writer) error {
	fmt.Fprintln(w, "\nWhere the values come from:")
	for _, n := range presets.ProviderNames() {
		src := presets.Sourced[n]
		if src == "" {
			src = "(not recorded)"
		}
		if _, err := fmt.Fprintf(w, "  %s: %s\n", n, src); err != nil {
			return err
		}
	}
	return nil
}
