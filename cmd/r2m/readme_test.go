package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestCIRunsTheREADMETestCommand keeps the README honest: CI must run the
// exact test command the README gives.
func TestCIRunsTheREADMETestCommand(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	cmds := regexp.MustCompile("(?m)^go test [^\n]*$").FindAllString(string(readme), -1)
	if len(cmds) != 1 {
		t.Fatalf("README has %d lines starting with \"go test\", want exactly one (the test command): %q", len(cmds), cmds)
	}
	if !regexp.MustCompile("(?m)^" + regexp.QuoteMeta(cmds[0]) + "( |$)").Match(ci) {
		t.Fatalf(".ci/run does not run the README's test command %q", cmds[0])
	}
	if !strings.Contains(string(readme), "r2m up") {
		t.Fatal("README does not show the r2m up command")
	}
}
