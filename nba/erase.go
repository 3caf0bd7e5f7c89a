package nba

// Erasure of a customer from what the engine keeps: the decision memory
// (what a learning decision saw, for its feedback) holds the customer's
// learning features under the decision's key. ForgetCustomer clears the
// slots of a customer, found by a 64-bit hash of its id kept in each slot
// (a collision clears another customer's slot too: it is then learned from
// as a decision no longer remembered, which is safe).

// customerHash is the decision memory's key of a customer; 0 for none.
func customerHash(customer string) uint64 {
	if customer == "" {
		return 0
	}
	return hashString(fnvOffset, customer) | 1
}

// ForgetCustomer clears what the decision memory remembers of the
// customer's decisions and returns how many decisions it cleared. It
// scans the whole memory (Config.DecisionMemory slots, under their
// locks): for erasure requests, not for the request path.
func (e *Engine) ForgetCustomer(customer string) int {
	h := customerHash(customer)
	if h == 0 {
		return 0
	}
	mem := e.cur.Load().mem.Load()
	if mem == nil {
		return 0
	}
	n := 0
	for i := range mem.slots {
		mu := &mem.locks[i&63]
		mu.Lock()
		if s := &mem.slots[i]; s.cust == h && s.key != 0 {
			*s = memSlot{}
			clear(mem.rows[i*mem.nf : (i+1)*mem.nf])
			n++
		}
		mu.Unlock()
	}
	return n
}
