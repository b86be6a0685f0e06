module github.com/idemkey/idemkey/client/go

go 1.19

require (
	github.com/golang/protobuf v1.5.2
	google.golang.org/genproto v0.0.0-20200526211855-cb27e3aa2013
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)

require (
	golang.org/x/net v0.3.0 // indirect
	golang.org/x/sys v0.5.0 // indirect
	golang.org/x/text v0.7.0 // indirect
)

// Offline build: every dependency comes from Debian's Go source packages in
// /usr/share/gocode/src (test.sh sets GOPROXY=off). See README.md.
replace (
	github.com/golang/glog => ./third_party/stubs/golang-glog
	github.com/golang/protobuf => /usr/share/gocode/src/github.com/golang/protobuf
	github.com/google/go-cmp => /usr/share/gocode/src/github.com/google/go-cmp
	golang.org/x/net => /usr/share/gocode/src/golang.org/x/net
	golang.org/x/oauth2 => /usr/share/gocode/src/golang.org/x/oauth2
	golang.org/x/sys => /usr/share/gocode/src/golang.org/x/sys
	golang.org/x/text => /usr/share/gocode/src/golang.org/x/text
	google.golang.org/genproto => /usr/share/gocode/src/google.golang.org/genproto
	google.golang.org/grpc => /usr/share/gocode/src/google.golang.org/grpc
	google.golang.org/protobuf => /usr/share/gocode/src/google.golang.org/protobuf
)

// Modules that dependencies' go.mod files require but that no built package
// imports: empty stand-ins, so the module graph resolves offline.
replace (
	cloud.google.com/go/compute/metadata => ./third_party/stubs/gcp-metadata
	github.com/cncf/udpa/go => ./third_party/stubs/cncf-udpa
	github.com/envoyproxy/go-control-plane => ./third_party/stubs/envoyproxy-go-control-plane
	github.com/google/uuid => ./third_party/stubs/google-uuid
	golang.org/x/lint => ./third_party/stubs/x-lint
	golang.org/x/mod => ./third_party/stubs/x-mod
	golang.org/x/term => ./third_party/stubs/x-term
	golang.org/x/tools => ./third_party/stubs/x-tools
	google.golang.org/appengine => ./third_party/stubs/appengine
	honnef.co/go/tools => ./third_party/stubs/honnef-tools
)
