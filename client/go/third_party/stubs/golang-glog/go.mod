// Offline stub: github.com/golang/glog is required by a dependency's go.mod but no package of it
// is built. See README.md, "Offline build".
module github.com/golang/glog
