// Offline stub: cloud.google.com/go/compute/metadata is required by a dependency's go.mod but no package of it
// is built. See README.md, "Offline build".
module cloud.google.com/go/compute/metadata
