// Package redistest starts real redis-server processes for tests: a
// standalone server (optionally with an append-only file, optionally a
// replica of another) and a three-master Redis Cluster, optionally with
// replicas.
//
// Every server listens on a free port of 127.0.0.1 only, keeps its files in
// a directory from t.TempDir, and is killed (its whole process group, by
// PID) in t.Cleanup, so a test leaves no process and no file behind. A
// server saves no RDB snapshot unless a test asks for one (--save ""), so
// the only persistence is the one the test chose.
//
// Tests skip when redis-server is not on PATH, except when the environment
// variable CI is set: there a missing binary is a failure, so a CI image
// without Redis cannot pass by skipping everything.
//
// Limits: Linux and other Unix systems only (process groups); the helpers
// are safe for use by several tests in parallel, but one Server is meant to
// be driven by one goroutine (Kill, Stop and Restart are not concurrent-safe
// with each other).
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to answer PING after it
// was started, generous for a loaded 2-core machine replaying an AOF.
const startTimeout = 20 * time.Second

// bindRetries is how many times a start is retried on fresh ports when
// another process took a chosen port between choosing and binding.
const bindRetries = 5

// Options configures a standalone server. The zero value is an in-memory
// server with no persistence at all.
type Options struct {
	// AppendOnly turns the append-only file on (appendonly yes).
	AppendOnly bool
	// AppendFsync is the AOF fsync policy: "always", "everysec" or "no".
	// Setting it implies AppendOnly. Empty keeps Redis's default
	// (everysec) when AppendOnly is set.
	AppendFsync string
	// ReplicaOf makes the server a replica of the given server
	// (replicaof 127.0.0.1 <port>); Start returns once the primary lists
	// it as online, so WAIT counts it.
	ReplicaOf *Server
	// Replicas is, for StartCluster only, the number of replicas of each
	// master (redis-cli --cluster create --cluster-replicas). Start
	// refuses it.
	Replicas int
	// Args are extra redis-server arguments, such as
	// []string{"--maxmemory", "10mb"}.
	Args []string
}

// Server is one redis-server process started by Start or StartCluster.
type Server struct {
	// Addr is host:port of the server, "127.0.0.1:<port>".
	Addr string
	// URL is the redis:// URL of the server, as rueidis.ParseURL and the
	// -state.redis flag take it.
	URL string
	// Dir is the server's working directory (AOF, nodes.conf, log).
	Dir string

	tb      testing.TB
	args    []string // without the port arguments
	port    int
	busPort int // cluster bus port, 0 when not a cluster node
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
}

// Start starts a standalone redis-server configured by opts and waits until
// it answers PING (and, for a replica, until its link to the master is up).
// The server is killed in t.Cleanup.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	requireBinary(tb, "redis-server")
	if opts.Replicas != 0 {
		tb.Fatalf("redistest: Start: Replicas is for StartCluster (use ReplicaOf)")
	}
	args := optionArgs(tb, opts)
	if opts.ReplicaOf != nil {
		host, port, _ := net.SplitHostPort(opts.ReplicaOf.Addr)
		args = append(args, "--replicaof", host, port)
	}
	s := start(tb, tb.TempDir(), args, false)
	if opts.ReplicaOf != nil {
		s.waitFor("replication link", func() (bool, error) {
			info, err := s.do("INFO", "replication")
			return strings.Contains(info, "master_link_status:up"), err
		})
		// The primary counts the replica (WAIT) only once it is online on
		// its side, after the replica's first acknowledgement.
		online := fmt.Sprintf("port=%d,state=online", s.port)
		opts.ReplicaOf.waitFor("replica "+s.Addr+" online", func() (bool, error) {
			info, err := opts.ReplicaOf.do("INFO", "replication")
			return strings.Contains(info, online), err
		})
	}
	return s
}

// start starts a server in dir with args on fresh ports, retrying on
// fresh ports when a port was taken in the meantime.
func start(tb testing.TB, dir string, args []string, cluster bool) *Server {
	tb.Helper()
	s := &Server{tb: tb, Dir: dir, args: args}
	tb.Cleanup(func() {
		s.kill()
		if tb.Failed() {
			s.logTail()
		}
	})
	var err error
	for range bindRetries {
		s.port, err = freePort()
		if err == nil && cluster {
			s.busPort, err = freePort()
		}
		if err != nil {
			tb.Fatalf("redistest: cannot choose a free port: %s", err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		s.URL = "redis://" + s.Addr
		if err = s.launch(); !errors.Is(err, errAddrInUse) {
			break
		}
	}
	if err != nil {
		tb.Fatalf("redistest: cannot start redis-server: %s", err)
	}
	return s
}

// errAddrInUse reports that redis-server could not bind its port.
var errAddrInUse = errors.New("address already in use")

// freePort returns a port of 127.0.0.1 that was free a moment ago. Another
// process may take it before redis-server binds it: start retries then.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}

// launch starts the process on s.port and waits until it answers PING.
func (s *Server) launch() error {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--protected-mode", "yes",
		"--daemonize", "no",
		"--dir", s.Dir,
		"--save", "",
		// A replica's first sync starts at once, not after 5 s.
		"--repl-diskless-sync-delay", "0",
		"--logfile", "",
	}
	if s.busPort != 0 {
		args = append(args, "--cluster-port", strconv.Itoa(s.busPort))
	}
	args = append(args, s.args...)
	logf, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot open log: %w", err)
	}
	defer logf.Close()
	before, _ := os.Stat(s.logPath())
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = s.Dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			log := s.logSince(before)
			if strings.Contains(log, "Address already in use") {
				return fmt.Errorf("port %d: %w", s.port, errAddrInUse)
			}
			return fmt.Errorf("redis-server exited at start: %s\n%s", cmd.ProcessState, log)
		default:
		}
		reply, err := s.do("PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("redis-server on %s did not answer PING within %s (last: %q, %v)\n%s",
				s.Addr, startTimeout, reply, err, s.logSince(before))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *Server) logPath() string { return filepath.Join(s.Dir, "redis.log") }

// logSince returns the log written after the file had the size in before.
func (s *Server) logSince(before os.FileInfo) string {
	b, _ := os.ReadFile(s.logPath())
	if before != nil && before.Size() <= int64(len(b)) {
		b = b[before.Size():]
	}
	return string(b)
}

// logTail logs the end of the server's log, for a failed test.
func (s *Server) logTail() {
	b, _ := os.ReadFile(s.logPath())
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	lines = lines[max(0, len(lines)-20):]
	s.tb.Logf("redistest: last lines of %s's log:\n%s", s.Addr, strings.Join(lines, "\n"))
}

// PID returns the process id of the running server, 0 when it is stopped.
func (s *Server) PID() int {
	if !s.running() {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *Server) running() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Kill kills the server with SIGKILL, as kill -9 does: nothing is flushed
// or fsynced by Redis on the way out. It returns once the process is gone;
// on a stopped server it does nothing. Kill may be called from any
// goroutine (to kill a server in the middle of a burst of writes), but not
// concurrently with Restart.
func (s *Server) Kill() { s.kill() }

// kill SIGKILLs the process group and waits.
func (s *Server) kill() {
	if !s.running() {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
}

// Pause stops the server with SIGSTOP: it keeps its connections open but
// answers nothing, as a server behind a network partition or in a long
// stall does. Clients notice only through their own timeouts. Resume
// undoes it; a paused server is still killed at cleanup.
func (s *Server) Pause() {
	if s.running() {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGSTOP)
	}
}

// Resume continues a server stopped by Pause (SIGCONT).
func (s *Server) Resume() {
	if s.running() {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGCONT)
	}
}

// Stop stops the server with SIGTERM, as a service manager does: Redis
// flushes and fsyncs its AOF and exits. It returns once the process is
// gone, killing it if it takes longer than 10 seconds; on a stopped server
// it does nothing.
func (s *Server) Stop() {
	if !s.running() {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGCONT) // in case it was paused
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.tb.Errorf("redistest: server %s ignored SIGTERM for 10s: killing it", s.Addr)
		s.kill()
	}
}

// Restart starts the server again on the same port and directory with the
// same configuration, so that data in its AOF (or a cluster node's
// nodes.conf) survives, and waits until it answers PING. A running server
// is stopped first with Stop. Clients keep the address; they reconnect.
func (s *Server) Restart() {
	s.tb.Helper()
	if s.running() {
		s.Stop()
	}
	var err error
	// The port was ours a moment ago; only a stranger that grabbed it in
	// between can make this fail, and the retry gives it time to go.
	for range bindRetries {
		if err = s.launch(); !errors.Is(err, errAddrInUse) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.tb.Fatalf("redistest: cannot restart redis-server on %s: %s", s.Addr, err)
	}
}

// waitFor polls cond until it is true, failing the test after startTimeout.
func (s *Server) waitFor(what string, cond func() (bool, error)) {
	s.tb.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redistest: %s: %s not ready within %s (last error: %v)", s.Addr, what, startTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// requireBinary skips the test when name is not on PATH, or fails it when
// the environment variable CI is set.
func requireBinary(tb testing.TB, name string) {
	tb.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("redistest: %s is not installed (CI is set, so this is a failure: .ci/run installs it with apt): %s", name, err)
		}
		tb.Skipf("redistest: %s is not installed; install the redis-server package to run this test", name)
	}
}

// do sends one command on a fresh connection and returns the reply as
// text: a status or bulk string, an integer, or an error from the server
// as a Go error. It is the harness's own minimal RESP2 client (readiness
// and cluster checks), so the harness depends on no Redis client library.
func (s *Server) do(args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write(req.Bytes()); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	}
	return "", fmt.Errorf("unsupported reply %q", line)
}
