// Offline stub: honnef.co/go/tools is required by a dependency's go.mod but no package of it
// is built. See README.md, "Offline build".
module honnef.co/go/tools
