package redisstate

import "context"

// KeptCustomers returns the customer ids the backend keeps decoded
// values under (the keys of its shards' maps).
func (b *Backend) KeptCustomers() []string {
	var ids []string
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		for k := range s.m {
			ids = append(ids, k)
		}
		s.mu.Unlock()
	}
	return ids
}

// PublishNonce is Publish with the nonce given, as a retry sends it again.
func (l *LearnStream) PublishNonce(ctx context.Context, data []byte, nonce string) (string, error) {
	return l.publish(ctx, data, nonce)
}

// CheckURL is parseURL for tests: nil when the URL is taken.
func CheckURL(u string) error { _, err := parseURL(u); return err }
