// Package buildinfo holds the release version of R2M, shared by the binary
// and by the client library's registration record. It imports nothing.
package buildinfo

// Version is the R2M release. Release builds override it with
// -ldflags "-X github.com/r2m-go/r2m/internal/buildinfo.Version=v1.2.3".
var Version = "v0.1.0-dev"
