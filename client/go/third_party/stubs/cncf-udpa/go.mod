// Offline stub: github.com/cncf/udpa/go is required by a dependency's go.mod but no package of it
// is built. See README.md, "Offline build".
module github.com/cncf/udpa/go
