package notify

import (
	"context"
	"fmt"
	"strings"
	"sync"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
)

// Secrets reads secret values by resource name (projects/P/secrets/S/versions/V).
type Secrets interface {
	Secret(ctx context.Context, name string) (string, error)
}

// SecretManager reads secrets with the Secret Manager client, creating the client on
// first use and caching every value it has read for the life of the instance.
type SecretManager struct {
	Options []option.ClientOption // e.g. a test server's endpoint

	mu     sync.Mutex
	client *secretmanager.Client
	cache  map[string]string
}

// Secret implements Secrets.
func (s *SecretManager) Secret(ctx context.Context, name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.cache[name]; ok {
		return v, nil
	}
	if s.client == nil {
		c, err := secretmanager.NewClient(ctx, s.Options...)
		if err != nil {
			return "", fmt.Errorf("notify: creating Secret Manager client: %w", err)
		}
		s.client = c
	}
	resp, err := s.client.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: name})
	if err != nil {
		return "", fmt.Errorf("notify: reading secret %s: %w", name, err)
	}
	v := strings.TrimSpace(string(resp.GetPayload().GetData()))
	if s.cache == nil {
		s.cache = map[string]string{}
	}
	s.cache[name] = v
	return v, nil
}

// Close closes the client.
func (s *SecretManager) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nil
	}
	err := s.client.Close()
	s.client = nil
	return err
}
