package nba_test

import (
	"fmt"

	"nba/nba"
)

func ExampleDecodeYAML() {
	var cfg struct {
		Name    string   `yaml:"name"`
		Retries int      `yaml:"retries"`
		Tags    []string `yaml:"tags"`
	}
	decoded, errs := nba.DecodeYAML("app.yaml", []byte("name: shop\nretrys: 3\ntags: web\n"), &cfg)
	fmt.Println(decoded, cfg.Name)
	for _, err := range errs {
		fmt.Println(err)
	}
	// Output:
	// true shop
	// app.yaml:2:1: unknown field "retrys" (did you mean "retries"?)
	// app.yaml:3:7: tags: want a list, got a string
}
