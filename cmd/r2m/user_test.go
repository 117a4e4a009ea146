package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/r2m-go/r2m/api"
)

func TestUserAndTokenCommands(t *testing.T) {
	e := startCLIEnv(t)
	if _, err := e.run(t, "bob's password\n", "user", "create", "bob", "--role", "operator", "--password-stdin"); err != nil {
		t.Fatalf("user create: %v", err)
	}
	out, err := e.run(t, "", "user", "list")
	if err != nil || !strings.Contains(out, "bob") || !strings.Contains(out, "operator") || !strings.HasPrefix(out, "NAME") {
		t.Fatalf("user list:\n%s\n%v", out, err)
	}
	out, err = e.run(t, "", "user", "list", "-o", "json")
	var users []api.User
	if err != nil || json.Unmarshal([]byte(out), &users) != nil || len(users) != 2 {
		t.Fatalf("user list -o json:\n%s\n%v", out, err)
	}
	if strings.Contains(out, "password") {
		t.Fatal("user list shows password data")
	}
	if _, err := e.run(t, "", "user", "create", "carol"); err == nil || !strings.Contains(err.Error(), "password is required") {
		t.Fatalf("user create without a password: %v", err)
	}
	if _, err := e.run(t, "", "user", "role", "bob", "superuser"); err == nil || !strings.Contains(err.Error(), "want viewer, operator or admin") {
		t.Fatalf("user role with a bad role: %v", err)
	}
	tok, err := e.run(t, "", "token", "create", "--user", "bob", "--ttl", "1h")
	if err != nil || !strings.HasPrefix(tok, "r2m.") {
		t.Fatalf("token create: %q %v", tok, err)
	}
	out, err = e.run(t, "", "token", "list", "--user", "bob")
	if err != nil || strings.Count(out, "\n") != 2 {
		t.Fatalf("token list:\n%s\n%v", out, err)
	}
	if _, err := e.run(t, "", "user", "delete", "bob"); err != nil {
		t.Fatalf("user delete: %v", err)
	}
	if _, err := e.run(t, "", "token", "list", "--output", "yaml"); err == nil || !strings.Contains(err.Error(), "want table or json") {
		t.Fatalf("--output yaml: %v", err)
	}
}
