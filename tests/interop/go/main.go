// Command gopeer is certmint's Go interop peer: Go's standard library only.
//
//	gopeer server CERT KEY CA          listen on 127.0.0.1:0, print {"port":N}, serve one client
//	gopeer client CERT KEY CA PORT     connect to 127.0.0.1:PORT, print what was seen
//	gopeer vectors DIR                 decode every DIR/*.der, one JSON line each
//	gopeer parse CERT                  x509.ParseCertificate the leaf, print its ID and claims
//
// Every command prints JSON lines on stdout. The claims OID is -claims-oid.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

const defaultClaimsOID = "1.2.840.113556.1.8000.2554.49118.29815.48385.17178.39665.9535742.3088872.1"

// deadline bounds every handshake and read, so a stuck peer fails the test instead of hanging it.
const deadline = 20 * time.Second

var claimsOID asn1.ObjectIdentifier

func main() {
	oidText := flag.String("claims-oid", defaultClaimsOID, "OID of the certmint claims extension")
	flag.Parse()
	oid, err := parseOID(*oidText)
	if err != nil {
		fail(err)
	}
	claimsOID = oid
	args := flag.Args()
	if len(args) == 0 {
		fail(errors.New("usage: gopeer server|client|vectors|parse ..."))
	}
	switch {
	case args[0] == "server" && len(args) == 4:
		err = serve(args[1], args[2], args[3])
	case args[0] == "client" && len(args) == 5:
		err = connect(args[1], args[2], args[3], args[4])
	case args[0] == "vectors" && len(args) == 2:
		err = decodeVectors(args[1])
	case args[0] == "parse" && len(args) == 2:
		err = parse(args[1])
	default:
		err = fmt.Errorf("bad arguments: %v", args)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	emit(map[string]any{"error": err.Error()})
	os.Exit(1)
}

func emit(value any) {
	line, err := json.Marshal(value)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(line))
}

func parseOID(text string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	for _, part := range strings.Split(text, ".") {
		arc, err := strconv.Atoi(part)
		if err != nil {
			return nil, fmt.Errorf("bad OID %q: %w", text, err)
		}
		oid = append(oid, arc)
	}
	return oid, nil
}

func tlsConfig(certPath, keyPath, caPath string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no certificate in " + caPath)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// describe is what a service reads from its verified peer: the SPIFFE ID and the claims.
func describe(state tls.ConnectionState) (map[string]any, error) {
	if len(state.VerifiedChains) == 0 {
		return nil, errors.New("the peer was not verified")
	}
	leaf := state.VerifiedChains[0][0]
	id, err := spiffeID(leaf)
	if err != nil {
		return nil, err
	}
	claims, err := claimsOf(leaf)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"identity": id, "claims": claims, "tls_version": tls.VersionName(state.Version),
	}, nil
}

func spiffeID(leaf *x509.Certificate) (string, error) {
	var ids []string
	for _, uri := range leaf.URIs {
		if uri.Scheme == "spiffe" {
			ids = append(ids, uri.String())
		}
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("want exactly one spiffe:// URI SAN, have %d", len(ids))
	}
	return ids[0], nil
}

func claimsOf(leaf *x509.Certificate) (map[string][]string, error) {
	for _, ext := range leaf.Extensions {
		if ext.Id.Equal(claimsOID) {
			return decodeClaims(ext.Value)
		}
	}
	return map[string][]string{}, nil
}

func serve(certPath, keyPath, caPath string) error {
	config, err := tlsConfig(certPath, keyPath, caPath)
	if err != nil {
		return err
	}
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
	seen, err := describe(conn.ConnectionState())
	if err != nil {
		return err
	}
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	reply, _ := json.Marshal(seen)
	if _, err := conn.Write(append(reply, '\n')); err != nil {
		return err
	}
	emit(map[string]any{"peer": seen})
	return nil
}

func connect(certPath, keyPath, caPath, port string) error {
	config, err := tlsConfig(certPath, keyPath, caPath)
	if err != nil {
		return err
	}
	config.ServerName = "127.0.0.1" // checked against the server's IP SAN
	dialer := &net.Dialer{Timeout: deadline}
	conn, err := tls.DialWithDialer(dialer, "tcp", net.JoinHostPort("127.0.0.1", port), config)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(deadline))
	seen, err := describe(conn.ConnectionState())
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
	emit(map[string]any{"peer": seen, "reply": reply})
	return nil
}

func decodeVectors(dir string) error {
	paths, err := filepath.Glob(filepath.Join(dir, "*.der"))
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, path := range paths {
		der, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(filepath.Base(path), ".der")
		if claims, err := decodeClaims(der); err != nil {
			emit(map[string]any{"name": name, "error": err.Error()})
		} else {
			emit(map[string]any{"name": name, "claims": claims})
		}
	}
	return nil
}

func parse(certPath string) error {
	pemBytes, err := os.ReadFile(certPath)
	if err != nil {
		return err
	}
	leafDER, err := firstCertificateDER(pemBytes)
	if err != nil {
		return err
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return err
	}
	id, err := spiffeID(leaf)
	if err != nil {
		return err
	}
	claims, err := claimsOf(leaf)
	if err != nil {
		return err
	}
	emit(map[string]any{"identity": id, "claims": claims})
	return nil
}
