package io.certmint.interop;

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

/**
 * certmint's Java interop peer: JSSE mutual TLS with the PKCS#12 keystore certmint writes.
 *
 * <pre>
 *   server KEYSTORE PASSWORD_FILE CA          listen on 127.0.0.1:0, print {"port":N}, serve one
 *   client KEYSTORE PASSWORD_FILE CA PORT     connect to 127.0.0.1:PORT (IP SAN checked)
 *   vectors DIR                               decode every DIR/*.der, one JSON line each
 * </pre>
 *
 * Prints JSON lines; {"error": ...} and exit status 1 on failure. The system property
 * certmint.claimsOid replaces the claims OID.
 */
public final class Peer {
  private static final int TIMEOUT_MILLIS = 20_000;
  private static final String CLAIMS_OID =
      System.getProperty("certmint.claimsOid", Claims.DEFAULT_OID);

  private Peer() {}

  public static void main(String[] args) {
    try {
      if (args.length == 4 && args[0].equals("server")) {
        serve(args[1], args[2], args[3]);
      } else if (args.length == 5 && args[0].equals("client")) {
        connect(args[1], args[2], args[3], Integer.parseInt(args[4]));
      } else if (args.length == 2 && args[0].equals("vectors")) {
        vectors(Path.of(args[1]));
      } else {
        throw new IllegalArgumentException("bad arguments");
      }
    } catch (Exception e) {
      System.out.println(Json.object(Map.of("error", String.valueOf(e))));
      System.exit(1);
    }
  }

  private static SSLContext context(String keystorePath, String passwordPath, String caPath)
      throws Exception {
    char[] password = Files.readString(Path.of(passwordPath)).toCharArray();
    KeyStore keystore = KeyStore.getInstance("PKCS12");
    try (InputStream in = new FileInputStream(keystorePath)) {
      keystore.load(in, password);
    }
    KeyManagerFactory keys = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    keys.init(keystore, password);
    KeyStore anchors = KeyStore.getInstance("PKCS12");
    anchors.load(null, null);
    try (InputStream in = new FileInputStream(caPath)) {
      int index = 0;
      for (Certificate anchor : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
        anchors.setCertificateEntry("ca-" + index++, anchor);
      }
    }
    TrustManagerFactory trust =
        TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    trust.init(anchors);
    SSLContext context = SSLContext.getInstance("TLS");
    context.init(keys.getKeyManagers(), trust.getTrustManagers(), null);
    return context;
  }

  private static void serve(String keystore, String password, String ca) throws Exception {
    SSLContext context = context(keystore, password, ca);
    try (SSLServerSocket listener = (SSLServerSocket) context.getServerSocketFactory()
        .createServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
      listener.setNeedClientAuth(true);
      System.out.println(Json.object(Map.of("port", listener.getLocalPort())));
      System.out.flush();
      try (SSLSocket socket = (SSLSocket) listener.accept()) {
        socket.setSoTimeout(TIMEOUT_MILLIS);
        socket.startHandshake();
        Map<String, Object> seen = describe(socket);
        readLine(socket.getInputStream());
        write(socket.getOutputStream(), Json.object(seen) + "\n");
        System.out.println(Json.object(Map.of("peer", seen)));
      }
    }
  }

  private static void connect(String keystore, String password, String ca, int port)
      throws Exception {
    SSLContext context = context(keystore, password, ca);
    try (SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket()) {
      socket.connect(new InetSocketAddress("127.0.0.1", port), TIMEOUT_MILLIS);
      socket.setSoTimeout(TIMEOUT_MILLIS);
      SSLParameters parameters = socket.getSSLParameters();
      parameters.setEndpointIdentificationAlgorithm("HTTPS"); // the server's IP SAN
      socket.setSSLParameters(parameters);
      socket.startHandshake();
      Map<String, Object> seen = describe(socket);
      write(socket.getOutputStream(), "hello\n");
      String reply = readLine(socket.getInputStream());
      Map<String, Object> result = new LinkedHashMap<>();
      result.put("peer", seen);
      result.put("reply", new Json.Raw(reply));
      System.out.println(Json.object(result));
    }
  }

  /** What a service reads from its verified peer: the SPIFFE ID and the claims. */
  private static Map<String, Object> describe(SSLSocket socket) throws Exception {
    X509Certificate leaf = (X509Certificate) socket.getSession().getPeerCertificates()[0];
    List<String> ids = new ArrayList<>();
    if (leaf.getSubjectAlternativeNames() != null) {
      for (List<?> name : leaf.getSubjectAlternativeNames()) {
        if (((Integer) name.get(0)) == 6 && ((String) name.get(1)).startsWith("spiffe://")) {
          ids.add((String) name.get(1));
        }
      }
    }
    if (ids.size() != 1) {
      throw new IOException("want exactly one spiffe:// URI SAN, have " + ids.size());
    }
    Map<String, Object> seen = new LinkedHashMap<>();
    seen.put("identity", ids.get(0));
    seen.put("claims", Claims.of(leaf, CLAIMS_OID));
    seen.put("tls_version", socket.getSession().getProtocol());
    return seen;
  }

  private static void vectors(Path directory) throws IOException {
    List<Path> paths;
    try (Stream<Path> listing = Files.list(directory)) {
      paths = listing.filter(p -> p.toString().endsWith(".der")).sorted().toList();
    }
    for (Path path : paths) {
      String name = path.getFileName().toString().replaceFirst("\\.der$", "");
      Map<String, Object> line = new LinkedHashMap<>();
      line.put("name", name);
      try {
        line.put("claims", Claims.decode(Files.readAllBytes(path)));
      } catch (IOException e) {
        line.put("error", e.getMessage());
      }
      System.out.println(Json.object(line));
    }
  }

  private static String readLine(InputStream in) throws IOException {
    String line = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8)).readLine();
    if (line == null) {
      throw new IOException("the connection closed before a line arrived");
    }
    return line;
  }

  private static void write(OutputStream out, String text) throws IOException {
    out.write(text.getBytes(StandardCharsets.UTF_8));
    out.flush();
  }
}
