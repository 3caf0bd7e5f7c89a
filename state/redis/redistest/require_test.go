package redistest

import (
	"fmt"
	"runtime"
	"testing"
)

// outcomeTB records whether a helper skipped or failed the test.
type outcomeTB struct {
	testing.TB
	outcome string
}

func (o *outcomeTB) Helper() {}
func (o *outcomeTB) Skipf(format string, args ...any) {
	o.outcome = "skip: " + fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (o *outcomeTB) Fatalf(format string, args ...any) {
	o.outcome = "fatal: " + fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestMissingBinary: without redis-server a test skips, except under CI,
// where it fails, so a CI image without Redis cannot pass by skipping.
func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, tc := range []struct {
		ci, want string
	}{
		{"", "skip"},
		{"true", "fatal"},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			o := &outcomeTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				Start(o, Options{})
			}()
			<-done
			if len(o.outcome) < len(tc.want) || o.outcome[:len(tc.want)] != tc.want {
				t.Errorf("Start without redis-server, CI=%q: %q; want %s", tc.ci, o.outcome, tc.want)
			}
		})
	}
}
