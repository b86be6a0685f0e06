// Offline stub: github.com/envoyproxy/go-control-plane is required by a dependency's go.mod but no package of it
// is built. See README.md, "Offline build".
module github.com/envoyproxy/go-control-plane
