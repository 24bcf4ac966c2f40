// Package smtptest runs an in-process SMTP server (github.com/emersion/go-smtp)
// on 127.0.0.1 for tests: STARTTLS or implicit TLS with a self-signed
// certificate made for the test, AUTH PLAIN, every accepted message kept,
// and faults injected on demand (a 4xx or 5xx reply, a dropped connection).
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a Server. The zero value offers STARTTLS and requires
// AUTH PLAIN (over TLS) as "user" / "secret".
type Options struct {
	// Username and Password are the accepted credentials. Default "user"
	// and "secret".
	Username, Password string
	// NoAuth accepts mail without AUTH.
	NoAuth bool
	// ImplicitTLS speaks TLS from the first byte (SMTPS) instead of
	// offering STARTTLS.
	ImplicitTLS bool
	// NoTLS offers no TLS at all and allows AUTH PLAIN in clear.
	NoTLS bool
}

// Message is one accepted message.
type Message struct {
	From string
	To   []string
	// Data is the message as received (headers and body, CRLF lines).
	Data []byte
	// TLS reports whether the session was encrypted.
	TLS bool
	// User is the authenticated username, empty without AUTH.
	User string
}

// Stage is the SMTP command a Fault answers.
type Stage int

// Stages a fault can hit.
const (
	AtData Stage = iota // after the message body: the classic 4xx/5xx reply
	AtMail              // MAIL FROM
	AtRcpt              // RCPT TO
)

// Fault replaces the server's answer for one message.
type Fault struct {
	Stage Stage
	// Code is the SMTP reply code (421, 451, 550, …).
	Code int
	// Drop closes the connection without a reply instead.
	Drop bool
	// Hang sends no reply until the server stops (or 30 s pass), for
	// client timeouts.
	Hang bool
}

// Server is a running SMTP server; it stops when the test ends.
type Server struct {
	// Host and Port locate the server; Addr is "Host:Port".
	Host string
	Port int
	Addr string
	// RootCAs trusts the server's self-signed certificate.
	RootCAs *x509.CertPool
	// Username and Password are the accepted credentials.
	Username, Password string

	opts Options
	srv  *smtp.Server

	stop     chan struct{}
	mu       sync.Mutex
	messages []Message
	faults   []Fault
	attempts int
}

// NewServer starts a server for the test and stops it in t.Cleanup.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Username == "" {
		opts.Username = "user"
	}
	if opts.Password == "" {
		opts.Password = "secret"
	}
	cert, pool, err := selfSigned()
	if err != nil {
		t.Fatalf("smtptest: certificate: %v", err)
	}
	s := &Server{opts: opts, Host: "127.0.0.1", RootCAs: pool, Username: opts.Username, Password: opts.Password,
		stop: make(chan struct{})}

	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 50
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.AllowInsecureAuth = opts.NoTLS
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if !opts.NoTLS {
		srv.TLSConfig = tlsConfig
	}
	var l net.Listener
	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	if opts.ImplicitTLS && !opts.NoTLS {
		l = tls.NewListener(l, tlsConfig)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	s.Addr = l.Addr().String()
	s.srv = srv
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		close(s.stop)
		// Close the listener too: Server.Close misses one that Serve has
		// not registered yet.
		_ = l.Close()
		_ = srv.Close()
		<-done
	})
	return s
}

// Messages returns the accepted messages in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		m.To = slices.Clone(m.To)
		m.Data = slices.Clone(m.Data)
		out[i] = m
	}
	return out
}

// Attempts counts the messages a client tried to send (MAIL FROM commands
// after authentication), faults included.
func (s *Server) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// Inject queues f for the next n messages.
func (s *Server) Inject(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// FailNext answers the next n messages with code after their body.
func (s *Server) FailNext(n, code int) { s.Inject(n, Fault{Stage: AtData, Code: code}) }

// HangNext leaves the next n messages without a reply after their body.
func (s *Server) HangNext(n int) { s.Inject(n, Fault{Stage: AtData, Hang: true}) }

// DropNext closes the connection after the body of the next n messages,
// without a reply.
func (s *Server) DropNext(n int) { s.Inject(n, Fault{Stage: AtData, Drop: true}) }

// session is one SMTP connection.
type session struct {
	s     *Server
	conn  *smtp.Conn
	user  string
	from  string
	to    []string
	fault *Fault
}

var errAuthRequired = smtp.ErrAuthRequired

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return smtp.ErrAuthFailed
		}
		u := subtle.ConstantTimeCompare([]byte(username), []byte(ss.s.opts.Username))
		p := subtle.ConstantTimeCompare([]byte(password), []byte(ss.s.opts.Password))
		if u&p != 1 {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.s.opts.NoAuth && ss.user == "" {
		return errAuthRequired
	}
	ss.s.mu.Lock()
	ss.s.attempts++
	if len(ss.s.faults) > 0 {
		f := ss.s.faults[0]
		ss.s.faults = ss.s.faults[1:]
		ss.fault = &f
	}
	ss.s.mu.Unlock()
	ss.from = from
	return ss.hit(AtMail)
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.hit(AtRcpt); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.hit(AtData); err != nil {
		return err
	}
	_, isTLS := ss.conn.TLSConnectionState()
	ss.s.mu.Lock()
	ss.s.messages = append(ss.s.messages, Message{From: ss.from, To: slices.Clone(ss.to), Data: data, TLS: isTLS, User: ss.user})
	ss.s.mu.Unlock()
	return nil
}

// hit applies the session's fault when it is for stage.
func (ss *session) hit(stage Stage) error {
	f := ss.fault
	if f == nil || f.Stage != stage {
		return nil
	}
	ss.fault = nil
	if f.Drop {
		_ = ss.conn.Conn().Close()
		return errors.New("connection dropped")
	}
	if f.Hang {
		select {
		case <-ss.s.stop:
		case <-time.After(30 * time.Second):
		}
		return errors.New("hung")
	}
	return &smtp.SMTPError{Code: f.Code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "injected fault"}
}

func (ss *session) Reset() {
	ss.from, ss.to, ss.fault = "", nil, nil
}

func (ss *session) Logout() error { return nil }

// selfSigned makes an ECDSA P-256 certificate for 127.0.0.1 and localhost
// that is its own CA, and a pool that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
