package coord

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// parsedURL is a coordinator URL taken apart:
// scheme://[user:password@]host:port[,host:port…]/root[?param=value…].
type parsedURL struct {
	scheme   string
	servers  []string
	user     string
	password string
	root     string
	params   url.Values
}

// parseURL parses and checks a coordinator URL. Its errors never repeat the
// password.
func parseURL(raw string) (*parsedURL, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return nil, fmt.Errorf("coord: URL %q: want scheme://host:port[,host:port…]/root, such as zk://127.0.0.1:2181/r2m or etcd://127.0.0.1:2379/r2m", Redact(raw))
	}
	// net/url rejects comma-separated hosts with ports, so the authority is
	// split by hand and the rest handed to net/url.
	authority, pathQuery := rest, "/"
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, pathQuery = rest[:i], rest[i:]
	}
	p := &parsedURL{scheme: scheme}
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		ui := authority[:at]
		authority = authority[at+1:]
		u, pw, _ := strings.Cut(ui, ":")
		var err error
		if p.user, err = url.PathUnescape(u); err != nil {
			return nil, fmt.Errorf("coord: URL %q: bad user name: %w", Redact(raw), err)
		}
		if p.password, err = url.PathUnescape(pw); err != nil {
			return nil, fmt.Errorf("coord: URL %q: bad password encoding", Redact(raw))
		}
	}
	for _, h := range strings.Split(authority, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			return nil, fmt.Errorf("coord: URL %q: empty server address", Redact(raw))
		}
		if !strings.Contains(h, ":") {
			return nil, fmt.Errorf("coord: URL %q: server %q has no port", Redact(raw), h)
		}
		p.servers = append(p.servers, h)
	}
	if strings.HasPrefix(pathQuery, "?") {
		pathQuery = "/" + pathQuery
	}
	u, err := url.Parse(pathQuery)
	if err != nil {
		return nil, fmt.Errorf("coord: URL %q: %w", Redact(raw), err)
	}
	p.root = u.Path
	if p.root == "" {
		p.root = "/"
	}
	if p.root != "/" {
		p.root = strings.TrimSuffix(p.root, "/")
	}
	if err := ValidatePath(p.root); err != nil {
		return nil, fmt.Errorf("coord: URL %q: root: %w", Redact(raw), err)
	}
	p.params = u.Query()
	return p, nil
}

// takeDuration removes a duration parameter from the query.
func (p *parsedURL) takeDuration(name string) (time.Duration, error) {
	v := p.params.Get(name)
	if v == "" {
		return 0, nil
	}
	p.params.Del(name)
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("coord: URL parameter %s=%q: want a positive duration such as 10s", name, v)
	}
	return d, nil
}

// Redact returns the URL with any password replaced by "xxxxx", for logs
// and error messages.
func Redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		end = i
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return raw
	}
	ui := rest[:at]
	if u, _, hasPw := strings.Cut(ui, ":"); hasPw {
		ui = u + ":xxxxx"
	}
	return scheme + "://" + ui + rest[at:]
}
