package scorecache_test

import (
	"fmt"

	"nba/cache/scorecache"
)

func ExampleCache() {
	c, err := scorecache.New(scorecache.Config{MaxBytes: 32 << 20})
	if err != nil {
		panic(err)
	}
	defer c.Close()

	k := scorecache.Key{Customer: "c1", Snapshot: "3f9a0c1d2e4b5a69", Overlay: 12, Model: "propensity-v7"}
	for visit := 1; visit <= 2; visit++ {
		if _, ok := c.Get(k); !ok {
			scores := []float64{0.31, 0.07, 0.52} // one per eligible action, from the model
			// The first visit only marks the customer: most are never
			// seen again. The second caches the scores.
			fmt.Println("visit", visit, "cached:", c.Set(k, scores))
		}
		c.Wait() // tests only: Sets are applied asynchronously
	}

	scores, ok := c.Get(k)
	fmt.Println(scores, ok)
	k.Overlay++ // the customer's live profile changed: rescore
	_, ok = c.Get(k)
	fmt.Println(ok)
	// Output:
	// visit 1 cached: false
	// visit 2 cached: true
	// [0.31 0.07 0.52] true
	// false
}
