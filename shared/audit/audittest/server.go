// Package audittest provides an in-process fake of the Cloud Logging API and of the part
// of Cloud KMS the audit trail uses, for testing code that records audit entries through
// the real Cloud Logging and Cloud KMS clients. Both APIs are served on one address, so
// ClientOptions reach either.
//
//	srv := audittest.NewServer(t)
//	rec, err := audit.NewRecorder(ctx, "test-project",
//		audit.WithClientOptions(srv.ClientOptions()...),
//		audit.WithLoggerOptions(srv.LoggerOptions()...))
//	…
//	payloads := srv.Payloads() // the jsonPayload of every stored entry
package audittest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"cloud.google.com/go/logging"
	"cloud.google.com/go/logging/apiv2/loggingpb"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/api/monitoredres"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"airlock.dev/airlock/shared/audit"
)

// A WriteHook decides how the server answers one WriteLogEntries call. keep says whether
// the entries are stored; err, if not nil, fails the call. Both together model a write that
// landed but was reported as failed. A hook may block; it should return when ctx is done.
type WriteHook func(ctx context.Context, req *loggingpb.WriteLogEntriesRequest) (keep bool, err error)

// A Server is a fake Cloud Logging service on 127.0.0.1. It implements only
// WriteLogEntries, keeping every entry in memory; on the same address it is a fake Cloud
// KMS holding one signing key (see [KMSKeyVersion]). Use NewServer to start one.
type Server struct {
	loggingpb.UnimplementedLoggingServiceV2Server

	addr string
	gsrv *grpc.Server
	kms  *kmsServer

	mu       sync.Mutex // guards the fields below
	entries  []*loggingpb.LogEntry
	calls    int
	hook     WriteHook
	kmsCalls int
	kmsHook  KMSHook
}

// NewServer starts a Server on 127.0.0.1:0; t.Cleanup stops it.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Start starts a Server on 127.0.0.1:0 for callers without a testing.TB
// (scripts/cmd/bench); Stop stops it.
func Start() (*Server, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("audittest: making the KMS key: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("audittest: listening: %w", err)
	}
	s := &Server{addr: lis.Addr().String(), gsrv: grpc.NewServer()}
	s.kms = &kmsServer{s: s, key: key}
	loggingpb.RegisterLoggingServiceV2Server(s.gsrv, s)
	kmspb.RegisterKeyManagementServiceServer(s.gsrv, s.kms)
	go s.gsrv.Serve(lis)
	return s, nil
}

// Stop stops the server. It does not wait for calls in progress (not GracefulStop): a
// hanging hook must not block a test's cleanup.
func (s *Server) Stop() { s.gsrv.Stop() }

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// ClientOptions point a Cloud Logging client at the server, without authentication or TLS.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{
		option.WithEndpoint(s.addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// LoggerOptions give the Logger a fixed "global" monitored resource, so it does not probe
// the metadata server for one (which is slow off Google Cloud).
func (s *Server) LoggerOptions() []logging.LoggerOption {
	return []logging.LoggerOption{logging.CommonResource(&monitoredres.MonitoredResource{
		Type: "global", Labels: map[string]string{"project_id": "audittest"},
	})}
}

// SetHook makes hook answer every later WriteLogEntries call; nil restores normal service.
func (s *Server) SetHook(hook WriteHook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = hook
}

// FailWith makes every later write fail with code, storing nothing.
func (s *Server) FailWith(code codes.Code) {
	s.SetHook(func(context.Context, *loggingpb.WriteLogEntriesRequest) (bool, error) {
		return false, status.Error(code, "audittest: injected failure")
	})
}

// StoreThenFailWith makes every later write store its entries and then fail with code:
// an ambiguous failure, like a timeout after the server stored the entry.
func (s *Server) StoreThenFailWith(code codes.Code) {
	s.SetHook(func(context.Context, *loggingpb.WriteLogEntriesRequest) (bool, error) {
		return true, status.Error(code, "audittest: injected failure after storing")
	})
}

// Hang makes every later write block until the caller gives up, storing nothing.
func (s *Server) Hang() {
	s.SetHook(func(ctx context.Context, _ *loggingpb.WriteLogEntriesRequest) (bool, error) {
		<-ctx.Done()
		return false, status.FromContextError(ctx.Err()).Err()
	})
}

// FailEventsWith makes every later write holding an entry whose "event" label is one of
// events fail with code, storing nothing; other writes are served normally. With no
// events it is FailWith. Failing only a later entry of a request (grant.created after
// request.approved, say) shows that a half-recorded action is not carried out either.
func (s *Server) FailEventsWith(code codes.Code, events ...string) {
	s.SetHook(func(_ context.Context, req *loggingpb.WriteLogEntriesRequest) (bool, error) {
		if !holdsEvent(req, events) {
			return true, nil
		}
		return false, status.Error(code, "audittest: injected failure")
	})
}

// HangEvents makes every later write holding an entry whose "event" label is one of
// events block until the caller gives up, storing nothing; other writes are served
// normally. With no events it is Hang.
func (s *Server) HangEvents(events ...string) {
	s.SetHook(func(ctx context.Context, req *loggingpb.WriteLogEntriesRequest) (bool, error) {
		if !holdsEvent(req, events) {
			return true, nil
		}
		<-ctx.Done()
		return false, status.FromContextError(ctx.Err()).Err()
	})
}

// holdsEvent reports whether req holds an entry labelled with one of events; every
// request does when events is empty.
func holdsEvent(req *loggingpb.WriteLogEntriesRequest, events []string) bool {
	if len(events) == 0 {
		return true
	}
	for _, e := range req.GetEntries() {
		if slices.Contains(events, e.GetLabels()["event"]) {
			return true
		}
	}
	return false
}

// A Failure is one way a sink fails the writes of some events (every write when none
// are named).
type Failure struct {
	Desc string
	Fail func(s *Server, events ...string)
}

// Failures lists the ways fail-closed code must see the sink fail, and refuse to act under
// each: the Logging API answers with an error, or never answers.
func Failures() []Failure {
	return []Failure{
		{"sink returns errors", func(s *Server, events ...string) { s.FailEventsWith(codes.Unavailable, events...) }},
		{"sink hangs", (*Server).HangEvents},
	}
}

// Recover restores normal service after FailWith, StoreThenFailWith, Hang, FailEventsWith,
// HangEvents, FailKMSWith or HangKMS.
func (s *Server) Recover() {
	s.SetHook(nil)
	s.SetKMSHook(nil)
}

// ChainStartFailures lists the ways Cloud KMS can fail a recorder whose chain has not
// started (an instance's first Record): it answers with an error, or never answers.
// Fail-closed code must refuse to act under each, since no entry can be signed.
func ChainStartFailures() []Failure {
	return []Failure{
		{"KMS returns errors", func(s *Server, _ ...string) { s.FailKMSWith(codes.Unavailable) }},
		{"KMS hangs", func(s *Server, _ ...string) { s.HangKMS() }},
	}
}

// WriteLogEntries implements the Cloud Logging RPC. Entries without a log name, resource
// or labels take the request's, as the real service does.
func (s *Server) WriteLogEntries(ctx context.Context, req *loggingpb.WriteLogEntriesRequest) (*loggingpb.WriteLogEntriesResponse, error) {
	s.mu.Lock()
	s.calls++
	hook := s.hook
	s.mu.Unlock()
	keep, err := true, error(nil)
	if hook != nil {
		keep, err = hook(ctx, req)
	}
	if keep {
		s.mu.Lock()
		for _, e := range req.GetEntries() {
			e = proto.Clone(e).(*loggingpb.LogEntry)
			if e.LogName == "" {
				e.LogName = req.GetLogName()
			}
			if e.Resource == nil {
				e.Resource = req.GetResource()
			}
			for k, v := range req.GetLabels() {
				if e.Labels == nil {
					e.Labels = map[string]string{}
				}
				if _, ok := e.Labels[k]; !ok {
					e.Labels[k] = v
				}
			}
			s.entries = append(s.entries, e)
		}
		s.mu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	return &loggingpb.WriteLogEntriesResponse{}, nil
}

// Calls counts WriteLogEntries calls, including failed ones and the client's retries.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Entries returns copies of the stored entries of the audit log (log ID audit.LogID),
// oldest first.
func (s *Server) Entries() []*loggingpb.LogEntry {
	var out []*loggingpb.LogEntry
	for _, e := range s.AllEntries() {
		if strings.HasSuffix(e.GetLogName(), "/logs/"+audit.LogID) {
			out = append(out, e)
		}
	}
	return out
}

// AllEntries returns copies of all stored entries, oldest first, including those of other
// logs, such as the client library's one-off entry in "diagnostic-log".
func (s *Server) AllEntries() []*loggingpb.LogEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*loggingpb.LogEntry, len(s.entries))
	for i, e := range s.entries {
		out[i] = proto.Clone(e).(*loggingpb.LogEntry)
	}
	return out
}

// Payloads returns the jsonPayload of each entry of the audit log as a map (nil for entries without
// one), oldest first. Numbers are float64, as in Cloud Logging.
func (s *Server) Payloads() []map[string]any {
	es := s.Entries()
	out := make([]map[string]any, len(es))
	for i, e := range es {
		if p := e.GetJsonPayload(); p != nil {
			out[i] = p.AsMap()
		}
	}
	return out
}

// GcloudJSON renders the audit log's entries the way
// `gcloud logging read 'logName="projects/P/logs/airlock-audit"' --format=json` does: a JSON
// array of LogEntry objects in the API's JSON form, newest first.
func (s *Server) GcloudJSON() ([]byte, error) {
	es := s.Entries()
	slices.Reverse(es)
	arr := make([]json.RawMessage, len(es))
	for i, e := range es {
		b, err := protojson.Marshal(e)
		if err != nil {
			return nil, err
		}
		arr[i] = b
	}
	return json.MarshalIndent(arr, "", "  ")
}
