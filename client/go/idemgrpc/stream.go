package idemgrpc

import (
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// recordingStream passes the handler's reply metadata on to the real
// stream and keeps a copy, to store it.
type recordingStream struct {
	inner grpc.ServerTransportStream // nil outside a real server

	mu      sync.Mutex
	header  metadata.MD
	trailer metadata.MD
}

// Method is the real stream's method.
func (s *recordingStream) Method() string {
	if s.inner == nil {
		return ""
	}
	return s.inner.Method()
}

// SetHeader records md and passes it on.
func (s *recordingStream) SetHeader(md metadata.MD) error {
	s.record(&s.header, md)
	if s.inner == nil {
		return nil
	}
	return s.inner.SetHeader(md)
}

// SendHeader records md and passes it on (the header goes out now).
func (s *recordingStream) SendHeader(md metadata.MD) error {
	s.record(&s.header, md)
	if s.inner == nil {
		return nil
	}
	return s.inner.SendHeader(md)
}

// SetTrailer records md and passes it on.
func (s *recordingStream) SetTrailer(md metadata.MD) error {
	s.record(&s.trailer, md)
	if s.inner == nil {
		return nil
	}
	return s.inner.SetTrailer(md)
}

func (s *recordingStream) record(into *metadata.MD, md metadata.MD) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*into = metadata.Join(*into, md)
}

func (s *recordingStream) metadata() (header, trailer metadata.MD) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.header.Copy(), s.trailer.Copy()
}
