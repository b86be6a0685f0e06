package idemgrpc

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	protov1 "github.com/golang/protobuf/proto"
	idemkey "github.com/idemkey/idemkey/client/go"
	"github.com/idemkey/idemkey/client/go/idemkeypb"
	"github.com/idemkey/idemkey/client/go/internal/core"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Metadata names of the answers.
const (
	ReplayedMetadata    = "idempotency-replayed"
	BodyOmittedMetadata = "idempotency-body-omitted"
	RetryAfterMetadata  = "retry-after"
)

// StoredResponse header names (docs/semantics.md, "gRPC replies").
const (
	messageHeader  = "grpc-message"
	detailsHeader  = "grpc-status-details-bin"
	initialPrefix  = "initial/"
	trailingPrefix = "trailing/"
)

// UnaryServerInterceptor gives unary calls Idempotency-Key semantics, with
// the records kept by keys. A handler that panics releases the key; the
// panic goes on (put a recovery interceptor outside this one).
func UnaryServerInterceptor(keys idemkey.KeyService, opts ...Option) grpc.UnaryServerInterceptor {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	c := core.New(keys, cfg.core)
	tenantOf := cfg.tenant
	return func(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
		var body []byte
		if c.Covers(Method, info.FullMethod) {
			var err error
			if body, err = serialize(req); err != nil {
				return nil, status.Errorf(codes.Internal, "%s: the request cannot be fingerprinted: %v", info.FullMethod, err)
			}
		}
		key, hasKey := "", false
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get(KeyMetadata); len(v) > 0 {
				key, hasKey = v[0], true
			}
		}
		d := c.Begin(ctx, core.Request{
			Method: Method,
			Route:  info.FullMethod,
			Tenant: tenantOf(ctx, info.FullMethod),
			Key:    key,
			HasKey: hasKey,
			Body:   body,
		})
		switch d.Action {
		case core.Replay:
			return replay(ctx, d.Replay, info.FullMethod)
		case core.Reject:
			return nil, rejection(ctx, d.Rejection)
		case core.Run:
			return run(ctx, d.Execution, req, handler)
		default:
			return handler(ctx, req)
		}
	}
}

func run(ctx context.Context, e *core.Execution, req interface{}, handler grpc.UnaryHandler) (interface{}, error) {
	stream := &recordingStream{inner: grpc.ServerTransportStreamFromContext(ctx)}
	finished := false
	defer func() {
		if !finished {
			_ = e.Release(ctx)
		}
	}()
	resp, err := handler(grpc.NewContextWithServerTransportStream(ctx, stream), req)
	finished = true
	// Stored before the answer goes out; the answer goes out whatever the
	// key service says.
	_ = e.Finish(ctx, capture(stream, resp, err))
	return resp, err
}

// serialize is the deterministic serialization of a protobuf message.
func serialize(m interface{}) ([]byte, error) {
	v1, ok := m.(protov1.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a protobuf message", m)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(protov1.MessageV2(v1))
}

func capture(stream *recordingStream, resp interface{}, err error) *idemkeypb.StoredResponse {
	st := status.Convert(err)
	out := &idemkeypb.StoredResponse{StatusCode: int32(st.Code())}
	add := func(name string, value []byte) {
		out.Headers = append(out.Headers, &idemkeypb.Header{Name: name, Value: value})
	}
	if st.Message() != "" {
		add(messageHeader, []byte(st.Message()))
	}
	if p := st.Proto(); len(p.GetDetails()) > 0 {
		if b, err := protov1.Marshal(p); err == nil {
			add(detailsHeader, b)
		}
	}
	header, trailer := stream.metadata()
	for _, part := range []struct {
		prefix string
		md     metadata.MD
	}{{initialPrefix, header}, {trailingPrefix, trailer}} {
		names := make([]string, 0, len(part.md))
		for name := range part.md {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			for _, v := range part.md[name] {
				add(part.prefix+name, []byte(v))
			}
		}
	}
	// gRPC sends no response message with an error status.
	if st.Code() == codes.OK && resp != nil {
		if b, err := serialize(resp); err == nil {
			out.Body = b
		}
	}
	return out
}

func replay(ctx context.Context, stored *idemkeypb.StoredResponse, fullMethod string) (interface{}, error) {
	code := stored.GetStatusCode()
	if code < 0 || code > int32(codes.Unauthenticated) {
		return nil, status.Errorf(codes.Internal, "the stored response of this idempotency key has status %d, which is not a gRPC status code", code)
	}
	var resp proto.Message
	if codes.Code(code) == codes.OK {
		var err error
		if resp, err = newResponse(fullMethod); err == nil {
			err = proto.Unmarshal(stored.GetBody(), resp)
		}
		if err != nil {
			return nil, status.Errorf(codes.Internal, "the stored response of this idempotency key does not parse as the response of %s", fullMethod)
		}
	}
	var message string
	var details []byte
	header := metadata.Pairs(ReplayedMetadata, "true")
	if stored.GetBodyOmitted() {
		header.Append(BodyOmittedMetadata, "true")
	}
	trailer := metadata.MD{}
	for _, h := range stored.GetHeaders() {
		name := h.GetName()
		switch {
		case name == messageHeader:
			message = string(h.GetValue())
		case name == detailsHeader:
			details = h.GetValue()
		case strings.HasPrefix(name, initialPrefix):
			header.Append(strings.TrimPrefix(name, initialPrefix), string(h.GetValue()))
		case strings.HasPrefix(name, trailingPrefix):
			trailer.Append(strings.TrimPrefix(name, trailingPrefix), string(h.GetValue()))
		}
	}
	_ = grpc.SetHeader(ctx, header)
	if len(trailer) > 0 {
		_ = grpc.SetTrailer(ctx, trailer)
	}
	if codes.Code(code) == codes.OK {
		return resp, nil
	}
	st := &spb.Status{}
	if len(details) == 0 || protov1.Unmarshal(details, st) != nil {
		st = &spb.Status{}
	}
	st.Code, st.Message = code, message
	return nil, status.FromProto(st).Err()
}

// newResponse is an empty response message of fullMethod
// ("/pkg.Service/Method"), from the generated code's registration.
func newResponse(fullMethod string) (proto.Message, error) {
	name := strings.TrimPrefix(fullMethod, "/")
	i := strings.LastIndex(name, "/")
	if i < 0 {
		return nil, fmt.Errorf("%q is not a full method name", fullMethod)
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name[:i]))
	if err != nil {
		return nil, fmt.Errorf("finding service %s: %w", name[:i], err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a service", name[:i])
	}
	md := sd.Methods().ByName(protoreflect.Name(name[i+1:]))
	if md == nil {
		return nil, fmt.Errorf("service %s has no method %s", name[:i], name[i+1:])
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return nil, fmt.Errorf("finding message %s: %w", md.Output().FullName(), err)
	}
	return mt.New().Interface(), nil
}

var rejectCodes = map[core.Reason]codes.Code{
	core.MissingTenant: codes.Unauthenticated,
	core.MissingKey:    codes.InvalidArgument,
	core.MalformedKey:  codes.InvalidArgument,
	core.InProgress:    codes.Aborted,
	core.Mismatch:      codes.FailedPrecondition,
	core.Unavailable:   codes.Unavailable,
	core.Internal:      codes.Internal,
}

func rejection(ctx context.Context, r core.Rejection) error {
	code, ok := rejectCodes[r.Reason]
	if !ok {
		code = codes.Internal
	}
	if r.Reason == core.InProgress {
		_ = grpc.SetTrailer(ctx, metadata.Pairs(RetryAfterMetadata, strconv.FormatInt(r.RetryAfterSeconds, 10)))
	}
	return status.Error(code, r.Detail)
}
