// Offline stub: google.golang.org/appengine is required by a dependency's go.mod but no package of it
// is built. See README.md, "Offline build".
module google.golang.org/appengine
