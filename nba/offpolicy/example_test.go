package offpolicy_test

import (
	"fmt"

	"nba/nba/offpolicy"
)

func ExampleIPS() {
	// Four logged decisions of a uniform policy over two actions, and a
	// target policy that always picks action 1.
	logs := []offpolicy.Logged{
		{Action: 1, Propensity: 0.5, Reward: 1},
		{Action: 0, Propensity: 0.5, Reward: 0},
		{Action: 1, Propensity: 0.5, Reward: 0},
		{Action: 0, Propensity: 0.5, Reward: 1},
	}
	always1 := func(i, a int) float64 {
		if a == 1 {
			return 1
		}
		return 0
	}
	est := offpolicy.IPS(logs, always1)
	fmt.Printf("value %.2f, effective sample size %.0f of %d\n", est.Value, est.EffectiveN, est.N)
	// Output:
	// value 0.50, effective sample size 2 of 4
}
