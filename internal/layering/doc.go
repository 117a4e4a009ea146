// Package layering holds the test that keeps R2M's packages to the import
// rules of docs/architecture.md. It has no code of its own and must never
// be imported.
package layering
