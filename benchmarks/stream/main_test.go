package main

import (
	"fmt"
	"os"
	"testing"
)

// TestMain lets the test binary be the stage process too: the end-to-end
// mode starts its own executable with the "stage" subcommand.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "stage" {
		if err := runStage(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "stage:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
