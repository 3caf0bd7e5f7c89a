package redisstate

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
