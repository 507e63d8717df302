package check

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// certPolicy judges a server's certificate after the handshake, for the
// tls check and for https with a CA file or an expiry margin: the chain
// to the CA file's certificates (or the system's roots) and the name,
// unless insecure, and the expiry margin in any case. The handshake runs
// without Go's own verification, so that the CA file is read when it
// changes, not once for the checker's life, and so that an expired
// certificate is named as such even where the chain is not verified.
type certPolicy struct {
	insecure bool
	ca       *caFile // nil: the system's roots
	margin   time.Duration
}

// verify judges the certificate the server presented, for name (a DNS
// name or an address); detail says what was found, either way.
func (p *certPolicy) verify(cs tls.ConnectionState, name string, now time.Time) (detail string, ok bool) {
	if len(cs.PeerCertificates) == 0 {
		return "no certificate", false
	}
	leaf := cs.PeerCertificates[0]
	if !p.insecure {
		opts := x509.VerifyOptions{DNSName: name, CurrentTime: now, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if p.ca != nil {
			pool, err := p.ca.pool()
			if err != nil {
				return clip("ca_file: " + err.Error()), false
			}
			opts.Roots = pool
		}
		if _, err := leaf.Verify(opts); err != nil {
			return clip("certificate error: " + err.Error()), false
		}
	}
	left := leaf.NotAfter.Sub(now)
	switch {
	case left <= 0:
		return "certificate expired " + span(-left) + " ago", false
	case now.Before(leaf.NotBefore):
		return "certificate not valid for " + span(leaf.NotBefore.Sub(now)), false
	case left < p.margin:
		return "certificate expires in " + span(left) + " (margin " + span(p.margin) + ")", false
	}
	return tls.VersionName(cs.Version) + ", certificate valid " + span(left), true
}

// span writes a duration for a Detail: days above two, else minutes.
func span(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return max(d.Round(time.Second), time.Second).String()
}

// caFile is a PEM file of CA certificates, read again when its size or
// modification time changes (a stat per check): a renewed CA is used from
// the next check, without a configuration change.
type caFile struct {
	path string

	mu    sync.Mutex
	mtime time.Time
	size  int64
	p     *x509.CertPool
	err   error
}

func (f *caFile) pool() (*x509.CertPool, error) {
	st, err := os.Stat(f.path)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if (f.p != nil || f.err != nil) && st.ModTime().Equal(f.mtime) && st.Size() == f.size {
		return f.p, f.err
	}
	f.mtime, f.size = st.ModTime(), st.Size()
	f.p, f.err = nil, nil
	b, err := os.ReadFile(f.path)
	switch {
	case err != nil:
		f.err = err
	default:
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(b) {
			f.err = errors.New(f.path + ": no PEM certificate in it")
		} else {
			f.p = p
		}
	}
	return f.p, f.err
}
