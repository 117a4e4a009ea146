package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"version"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("r2m version: %v", err)
	}
	if got := out.String(); !strings.HasPrefix(got, "r2m v") || !strings.Contains(got, "go1.") {
		t.Fatalf("r2m version printed %q, want it to start with \"r2m v\" and name the Go version", got)
	}
}

func TestVersionRejectsArguments(t *testing.T) {
	cmd := newRootCommand()
	cmd.SetArgs([]string{"version", "extra"})
	cmd.SetErr(&bytes.Buffer{})
	if err := cmd.Execute(); err == nil {
		t.Fatal("r2m version extra: got nil error, want an error about the unexpected argument")
	}
}
