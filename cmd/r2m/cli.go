package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/r2m-go/r2m/api"
)

// apiFlags are the flags of every command that talks to the API.
type apiFlags struct {
	server string
	token  string
	output string
}

// addAPIFlags registers --server, --token and --output on a command group.
func addAPIFlags(cmd *cobra.Command) *apiFlags {
	f := &apiFlags{}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.server, "server", envOr("R2M_SERVER", "http://127.0.0.1:8080"), "r2m server address (env R2M_SERVER)")
	pf.StringVar(&f.token, "token", os.Getenv("R2M_TOKEN"), "API token (env R2M_TOKEN; default: the admin.token that r2m up wrote in ~/.r2m)")
	pf.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	return f
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// client builds the API client, finding a token when none was given.
func (f *apiFlags) client() (*api.Client, error) {
	if f.output != "table" && f.output != "json" {
		return nil, fmt.Errorf("--output %q: want table or json", f.output)
	}
	tok := f.token
	if tok == "" {
		if b, err := os.ReadFile(filepath.Join(defaultDataDir(), "admin.token")); err == nil {
			tok = strings.TrimSpace(string(b))
		}
	}
	if tok == "" {
		return nil, fmt.Errorf("no API token: pass --token, set R2M_TOKEN, or run r2m up, which writes ~/.r2m/admin.token")
	}
	return api.NewClient(f.server, tok, nil)
}

// printer writes results as a table or as JSON.
type printer struct {
	w      io.Writer
	format string
}

func (f *apiFlags) printer(cmd *cobra.Command) printer {
	return printer{w: cmd.OutOrStdout(), format: f.output}
}

// print writes v as indented JSON, or calls table to write rows.
func (p printer) print(v any, header []string, rows func(add func(cols ...any))) error {
	if p.format == "json" {
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	rows(func(cols ...any) {
		s := make([]string, len(cols))
		for i, c := range cols {
			s[i] = fmt.Sprint(c)
		}
		fmt.Fprintln(tw, strings.Join(s, "\t"))
	})
	return tw.Flush()
}

// readSecret reads a password from stdin (one line), for --password-stdin.
func readSecret(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
