// Package notifytest provides in-process fakes of what notifications talk to: Google's
// Secret Manager (a gRPC server the real client connects to) and a Slack incoming webhook.
package notifytest

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// SecretManager is a fake Secret Manager holding secret versions by resource name.
type SecretManager struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer
	mu     sync.Mutex
	values map[string]string
	reads  int
	// Options connect the real client to this server.
	Options []option.ClientOption
}

// NewSecretManager starts a fake on 127.0.0.1; t.Cleanup stops it.
func NewSecretManager(t testing.TB, values map[string]string) *SecretManager {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &SecretManager{values: values}
	srv := grpc.NewServer()
	secretmanagerpb.RegisterSecretManagerServiceServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	f.Options = []option.ClientOption{
		option.WithEndpoint(lis.Addr().String()),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
	return f
}

// Reads counts AccessSecretVersion calls.
func (f *SecretManager) Reads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// AccessSecretVersion implements the service.
func (f *SecretManager) AccessSecretVersion(_ context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	v, ok := f.values[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "secret %s not found", req.GetName())
	}
	return &secretmanagerpb.AccessSecretVersionResponse{Name: req.GetName(), Payload: &secretmanagerpb.SecretPayload{Data: []byte(v)}}, nil
}

// Slack is a fake incoming webhook: it checks each POST is a JSON Slack message and
// records it. Set Fail to make it answer 500.
type Slack struct {
	URL string

	mu       sync.Mutex
	bodies   []map[string]any
	failures int
	fail     bool
}

// NewSlack starts a fake webhook; t.Cleanup stops it.
func NewSlack(t testing.TB) *Slack {
	s := &Slack{}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/services/T000/B000/secret"
	return s
}

// SetFail makes the webhook fail (500) or work again.
func (s *Slack) SetFail(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = fail
}

// Messages returns what was received so far.
func (s *Slack) Messages() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.bodies...)
}

// Failures counts the requests answered with 500.
func (s *Slack) Failures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failures
}

func (s *Slack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.URL.Path != "/services/T000/B000/secret" {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	if s.fail {
		s.failures++
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m["text"] == nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	s.bodies = append(s.bodies, m)
	io.WriteString(w, "ok")
}
