"""Generated protobuf and gRPC stubs of proto/idemkey/v1 (see generate.sh)."""
