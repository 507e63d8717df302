package cluster

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ipvsman/ipvsman/cluster/pki"
)

// TLS is a node's key material (see pki.TLS): Raft's transport runs on it.
type TLS = pki.TLS

// LoadTLS is pki.LoadTLS, for the callers that already hold a cluster.
func LoadTLS(certFile, keyFile, caFile string, now time.Time) (*TLS, error) {
	return pki.LoadTLS(certFile, keyFile, caFile, now)
}

// HandshakeTimeout bounds a TLS handshake on the Raft port, so that a peer
// that connects and says nothing cannot hold a Raft goroutine for ever.
const HandshakeTimeout = 10 * time.Second

// tlsStreamLayer is Raft's transport over mutual TLS, built like raft's
// TCPStreamLayer: a TCP listener and an address to advertise.
type tlsStreamLayer struct {
	ln        net.Listener
	advertise net.Addr
	tls       *TLS
	server    *tls.Config
	client    *tls.Config
	log       *slog.Logger
	// raft, once set, gives the configuration Dial checks the server's
	// node ID against.
	raft atomic.Pointer[raft.Raft]
}

// newTLSStreamLayer listens on bind for Raft connections over TLS.
func newTLSStreamLayer(bind string, advertise net.Addr, t *TLS, log *slog.Logger) (*tlsStreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	return &tlsStreamLayer{ln: ln, advertise: advertise, tls: t, server: t.PeerServer(), client: t.PeerClient(), log: log}, nil
}

// Dial connects to a peer and completes the handshake within timeout.
// Raft dials a member at the address its configuration holds for it, so
// the server there must present that member's certificate: a node of the
// cluster CA at a member's address (one readdressed, or a process that
// took the port) is not that member. The accepting side cannot check the
// same in the handshake: Raft names the sender only inside its messages,
// and a lagging node may not yet know the configuration that holds its
// new leader; its peers are held to their IDs by the API (joins, forwarded
// writes) and by this check when the leader dials them.
func (s *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	cfg := s.client
	if id, ok := s.memberAt(address); ok {
		cfg = s.tls.PeerClientFor(id)
	}
	c, err := tls.DialWithDialer(d, "tcp", string(address), cfg)
	if err != nil {
		return nil, fmt.Errorf("raft tls dial %s: %w", address, err)
	}
	return c, nil
}

// memberAt is the ID the Raft configuration holds at address (Raft
// refuses two members at one address).
func (s *tlsStreamLayer) memberAt(address raft.ServerAddress) (string, bool) {
	r := s.raft.Load()
	if r == nil {
		return "", false
	}
	f := r.GetConfiguration()
	if f.Error() != nil {
		return "", false
	}
	for _, srv := range f.Configuration().Servers {
		if srv.Address == address {
			return string(srv.ID), true
		}
	}
	return "", false
}

// Accept returns the next connection; its handshake runs on first use, in
// the goroutine Raft gives the connection, so a slow peer does not hold up
// the accept loop.
func (s *tlsStreamLayer) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeConn{Conn: tls.Server(c, s.server), log: s.log, timeout: HandshakeTimeout}, nil
}

func (s *tlsStreamLayer) Close() error { return s.ln.Close() }

func (s *tlsStreamLayer) Addr() net.Addr {
	if s.advertise != nil {
		return s.advertise
	}
	return s.ln.Addr()
}

// handshakeConn completes the server handshake, within HandshakeTimeout,
// before the first read or write, and logs a refused peer once.
type handshakeConn struct {
	*tls.Conn
	log     *slog.Logger
	timeout time.Duration
	once    sync.Once
	err     error
}

func (c *handshakeConn) handshake() error {
	c.once.Do(func() {
		_ = c.Conn.SetDeadline(time.Now().Add(c.timeout))
		c.err = c.Conn.Handshake()
		_ = c.Conn.SetDeadline(time.Time{})
		if c.err != nil {
			c.log.Warn("raft: refused a connection: TLS handshake failed (a node needs a certificate from the cluster CA)", "remote", c.Conn.RemoteAddr().String(), "err", c.err)
		}
	})
	return c.err
}

func (c *handshakeConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *handshakeConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
