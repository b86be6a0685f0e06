// Offline stub: golang.org/x/lint is required by a dependency's go.mod but no package of it
// is built. See README.md, "Offline build".
module golang.org/x/lint
