package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestAlertCommands(t *testing.T) {
	e := startCLIEnv(t)
	out, err := e.run(t, "", "alert", "rules")
	if err != nil || !strings.Contains(out, "built-in") {
		t.Fatalf("alert rules:\n%s\n%v", out, err)
	}
	if _, err := e.run(t, "", "alert", "set-rule", "hot", "--metric", "ops_per_sec", "--op", "~", "--threshold", "5"); err == nil || !strings.Contains(err.Error(), "op") {
		t.Fatalf("set-rule with a bad op: %v", err)
	}
	if out, err := e.run(t, "", "alert", "set-rule", "hot", "--metric", "ops_per_sec", "--op", ">", "--threshold", "50000", "--for", "2m"); err != nil || !strings.Contains(out, "rule hot") {
		t.Fatalf("set-rule:\n%s\n%v", out, err)
	}
	var hits atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
	}))
	defer hook.Close()
	if _, err := e.run(t, "", "alert", "set-channel", "ops", "--type", "slack", "--url", hook.URL+"/services/T000/B000/4x9Jq2LmP7sQvZ8kT3wR6yB1"); err != nil {
		t.Fatalf("set-channel: %v", err)
	}
	out, err = e.run(t, "", "alert", "channels")
	if err != nil || !strings.Contains(out, "ops") || strings.Contains(out, "4x9Jq2LmP7sQvZ8kT3wR6yB1") {
		t.Fatalf("alert channels (the token must be redacted):\n%s\n%v", out, err)
	}
	if out, err := e.run(t, "", "alert", "test", "ops"); err != nil || !strings.Contains(out, "took the test message") || hits.Load() != 1 {
		t.Fatalf("alert test:\n%s\n%v (hits %d)", out, err, hits.Load())
	}
	if out, err := e.run(t, "", "alert", "firing"); err != nil || !strings.HasPrefix(out, "SEVERITY") {
		t.Fatalf("alert firing:\n%s\n%v", out, err)
	}
	// Test sends are not alerts: the history stays empty.
	if out, err := e.run(t, "", "alert", "history"); err != nil || strings.TrimSpace(out) != "TIME  KIND  SEVERITY  RULE  SUMMARY  DELIVERED" {
		t.Fatalf("alert history:\n%s\n%v", out, err)
	}
}
