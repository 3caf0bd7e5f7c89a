package server

import (
	"net"
	"strconv"
	"sync"
	"time"

	"nba/nba/metrics"
)

// limitListener enforces a per-client-address connection limit in front of
// fasthttp. fasthttp's own MaxConnsPerIP is left off: its pooled per-IP
// connection wrapper races with Server.Shutdown closing idle connections
// (the race detector reports it; see valyala/fasthttp#1987 and #1504 for
// the same wrapper panicking on shutdown).
type limitListener struct {
	net.Listener
	max     int
	refused *metrics.Counter

	mu    sync.Mutex
	perIP map[string]int
}

// tooManyConns is written, best effort, to a refused connection.
var tooManyConns = func() []byte {
	body := `{"error":{"code":"too_many_connections","message":"too many connections from this client"}}`
	return []byte("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		l.mu.Lock()
		n := l.perIP[ip]
		if n >= l.max {
			l.mu.Unlock()
			l.refused.Inc()
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = c.Write(tooManyConns)
			_ = c.Close()
			continue
		}
		l.perIP[ip] = n + 1
		l.mu.Unlock()
		return &limitConn{Conn: c, l: l, ip: ip}, nil
	}
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	if n := l.perIP[ip] - 1; n > 0 {
		l.perIP[ip] = n
	} else {
		delete(l.perIP, ip)
	}
	l.mu.Unlock()
}

func hostOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return string(t.IP.To16())
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// limitConn gives its slot back exactly once, however often it is closed.
type limitConn struct {
	net.Conn
	l    *limitListener
	ip   string
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}
