// Offline stub: golang.org/x/tools is required by a dependency's go.mod but no package of it
// is built. See README.md, "Offline build".
module golang.org/x/tools
