package coord

import (
	"fmt"
	"strings"
	"unicode"
)

// ValidatePath checks that p is a well-formed node path: "/" or a
// slash-separated list of non-empty segments, none of them "." or "..",
// with no trailing slash and no control or whitespace characters other than
// the space. The rules are ZooKeeper's, applied to both backends so that a
// layout written for one works on the other.
func ValidatePath(p string) error {
	if p == "/" {
		return nil
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%w %q: must start with /", ErrInvalidPath, p)
	}
	if strings.HasSuffix(p, "/") {
		return fmt.Errorf("%w %q: must not end with /", ErrInvalidPath, p)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w %q: empty segment", ErrInvalidPath, p)
		case ".", "..":
			return fmt.Errorf("%w %q: segment %q", ErrInvalidPath, p, seg)
		}
	}
	for _, r := range p {
		if r == unicode.ReplacementChar || (r != ' ' && (unicode.IsControl(r) || unicode.IsSpace(r))) {
			return fmt.Errorf("%w %q: control or whitespace character %U", ErrInvalidPath, p, r)
		}
	}
	return nil
}

// Join joins a parent path and a child name into a path.
func Join(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}

// Parent returns the parent of a path; the parent of "/" is "/".
func Parent(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// Base returns the last segment of a path.
func Base(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }
