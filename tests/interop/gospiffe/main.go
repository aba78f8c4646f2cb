// Command spiffepeer checks certmint's output with go-spiffe v2, the SPIFFE project's library.
//
//	spiffepeer parse CERT KEY                       x509svid.Parse the Secret's chain and key
//	spiffepeer server CERT KEY BUNDLE TD ALLOWED_ID  mTLS server (tlsconfig.MTLSServerConfig)
//	spiffepeer client CERT KEY BUNDLE TD SERVER_ID PORT
//
// BUNDLE is the trust ConfigMap's bundle.spiffe (a SPIFFE bundle, JWK set) and TD the trust
// domain it is for. The server listens on 127.0.0.1:0 and prints {"port":N}; every command
// prints JSON lines on stdout, and {"error": ...} with exit status 1 when it fails.
package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

const deadline = 20 * time.Second

func main() {
	args := os.Args[1:]
	var err error
	switch {
	case len(args) == 3 && args[0] == "parse":
		err = parse(args[1], args[2])
	case len(args) == 6 && args[0] == "server":
		err = serve(args[1], args[2], args[3], args[4], args[5])
	case len(args) == 7 && args[0] == "client":
		err = connect(args[1], args[2], args[3], args[4], args[5], args[6])
	default:
		err = fmt.Errorf("bad arguments: %v", args)
	}
	if err != nil {
		emit(map[string]any{"error": err.Error()})
		os.Exit(1)
	}
}

func emit(value any) {
	line, err := json.Marshal(value)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(line))
}

func loadSVID(certPath, keyPath string) (*x509svid.SVID, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	return x509svid.Parse(certPEM, keyPEM)
}

func loadBundle(bundlePath, trustDomain string) (*spiffebundle.Bundle, error) {
	td, err := spiffeid.TrustDomainFromString(trustDomain)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(bundlePath)
	if err != nil {
		return nil, err
	}
	return spiffebundle.Parse(td, data)
}

func parse(certPath, keyPath string) error {
	svid, err := loadSVID(certPath, keyPath)
	if err != nil {
		return err
	}
	emit(map[string]any{"identity": svid.ID.String(), "chain_length": len(svid.Certificates)})
	return nil
}

func serve(certPath, keyPath, bundlePath, trustDomain, allowed string) error {
	svid, err := loadSVID(certPath, keyPath)
	if err != nil {
		return err
	}
	bundle, err := loadBundle(bundlePath, trustDomain)
	if err != nil {
		return err
	}
	allowedID, err := spiffeid.FromString(allowed)
	if err != nil {
		return err
	}
	config := tlsconfig.MTLSServerConfig(svid, bundle, tlsconfig.AuthorizeID(allowedID))
	listener, err := tls.Listen("tcp", "127.0.0.1:0", config)
	if err != nil {
		return err
	}
	defer listener.Close()
	emit(map[string]any{"port": listener.Addr().(*net.TCPAddr).Port})
	raw, err := listener.Accept()
	if err != nil {
		return err
	}
	conn := raw.(*tls.Conn)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(deadline))
	if err := conn.Handshake(); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	peerID, err := peerIdentity(conn)
	if err != nil {
		return err
	}
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	reply, _ := json.Marshal(map[string]any{"identity": peerID})
	if _, err := conn.Write(append(reply, '\n')); err != nil {
		return err
	}
	emit(map[string]any{"peer": map[string]any{"identity": peerID}})
	return nil
}

func connect(certPath, keyPath, bundlePath, trustDomain, server, port string) error {
	svid, err := loadSVID(certPath, keyPath)
	if err != nil {
		return err
	}
	bundle, err := loadBundle(bundlePath, trustDomain)
	if err != nil {
		return err
	}
	serverID, err := spiffeid.FromString(server)
	if err != nil {
		return err
	}
	config := tlsconfig.MTLSClientConfig(svid, bundle, tlsconfig.AuthorizeID(serverID))
	dialer := &net.Dialer{Timeout: deadline}
	conn, err := tls.DialWithDialer(dialer, "tcp", net.JoinHostPort("127.0.0.1", port), config)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(deadline))
	peerID, err := peerIdentity(conn)
	if err != nil {
		return err
	}
	if _, err := conn.Write([]byte("hello\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	var reply any
	if err := json.Unmarshal([]byte(line), &reply); err != nil {
		return err
	}
	emit(map[string]any{"peer": map[string]any{"identity": peerID}, "reply": reply})
	return nil
}

func peerIdentity(conn *tls.Conn) (string, error) {
	state := conn.ConnectionState()
	if len(state.PeerCertificates) == 0 {
		return "", errors.New("no peer certificate")
	}
	id, err := x509svid.IDFromCert(state.PeerCertificates[0])
	if err != nil {
		return "", err
	}
	return id.String(), nil
}
