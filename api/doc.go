// Package api is the HTTP API of the R2M control plane as Go values, and a
// client for it. The server (package manager) encodes these types; the r2m
// CLI and any automation decode them through [Client]. The API lives under
// /api/v1; docs/openapi.yaml describes it for other languages.
//
// Every response body is JSON. Success is the resource itself; failure is
// an [ErrorBody] with a machine-readable code and a message that says what
// was wrong. The client turns failures into [*Error] values that callers
// inspect with errors.As.
//
// Authentication is a bearer token (Authorization: Bearer r2m.…) for
// programs, or a session cookie plus an X-CSRF-Token header for the web
// console.
//
// api imports only the standard library and meta (for record enums).
package api
