package redistest

import "syscall"

// sysProcAttr puts redis-server in its own process group, so that a kill
// reaches everything it forked (an AOF rewrite child), and asks the kernel
// to SIGKILL it if the thread that started it dies: a test binary killed by
// its -timeout leaves no orphan listening on a loopback port.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
