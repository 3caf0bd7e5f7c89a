// Package bench holds the project's generators and its load and quality
// benchmarks; each lives in a sub-directory with its own main package.
package bench
