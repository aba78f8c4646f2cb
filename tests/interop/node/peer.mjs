// certmint's Node interop peer: the tls module, mutual TLS.
//
//   node peer.mjs server CERT KEY CA          listen on 127.0.0.1:0, print {"port":N}, serve one
//   node peer.mjs client CERT KEY CA PORT     connect to 127.0.0.1:PORT (IP SAN checked)
//   node peer.mjs vectors DIR                 decode every DIR/*.der, one JSON line each
//
// Prints JSON lines; {"error": ...} and exit status 1 on failure. CERTMINT_CLAIMS_OID
// replaces the claims OID.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import tls from "node:tls";

import { DEFAULT_CLAIMS_OID, decodeClaims, extensionValue } from "./claims.mjs";

const CLAIMS_OID = process.env.CERTMINT_CLAIMS_OID || DEFAULT_CLAIMS_OID;
const TIMEOUT_MS = 20_000;

function emit(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function fail(err) {
  emit({ error: String(err && err.message ? err.message : err) });
  process.exit(1);
}

function options(certPath, keyPath, caPath) {
  return {
    cert: readFileSync(certPath),
    key: readFileSync(keyPath),
    ca: readFileSync(caPath),
    minVersion: "TLSv1.2",
  };
}

// The claims extension, found in the certificate's DER with the same decoder (Node's
// X509Certificate has no API for unknown extensions).
function claimsOf(raw) {
  const der = extensionValue(raw, CLAIMS_OID);
  return der ? decodeClaims(der) : {};
}

/** What a service reads from its verified peer: the SPIFFE ID and the claims. */
function describe(socket) {
  if (!socket.authorized) {
    throw new Error(`the peer was not verified: ${socket.authorizationError}`);
  }
  // getPeerCertificate first: on a client socket, Node 20 leaves subjectaltname out of
  // it once getPeerX509Certificate has been called.
  const legacy = socket.getPeerCertificate();
  const certificate = socket.getPeerX509Certificate();
  const ids = (certificate.subjectAltName || "")
    .split(", ")
    .filter((name) => name.startsWith("URI:spiffe://"))
    .map((name) => name.slice("URI:".length));
  if (ids.length !== 1) {
    throw new Error(`want exactly one spiffe:// URI SAN, have ${ids.length}`);
  }
  return {
    identity: ids[0],
    claims: claimsOf(certificate.raw),
    tls_version: socket.getProtocol(),
    peer_certificate_uri: legacy.subjectaltname,
  };
}

function firstLine(socket) {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: socket });
    lines.once("line", resolve);
    socket.once("end", () => reject(new Error("the connection closed before a line arrived")));
  });
}

// Errors count until the exchange is done; after it the other side may close as it likes.
function failUntilDone(socket) {
  const state = { done: false };
  socket.on("error", (err) => {
    if (!state.done) fail(err);
  });
  return state;
}

function serve(certPath, keyPath, caPath) {
  const server = tls.createServer(
    { ...options(certPath, keyPath, caPath), requestCert: true, rejectUnauthorized: true },
    async (socket) => {
      const state = failUntilDone(socket);
      try {
        socket.setTimeout(TIMEOUT_MS, () => fail(new Error("timeout")));
        const seen = describe(socket);
        await firstLine(socket);
        socket.end(`${JSON.stringify(seen)}\n`);
        emit({ peer: seen });
        state.done = true;
        server.close();
      } catch (err) {
        fail(err);
      }
    },
  );
  server.on("tlsClientError", fail);
  server.listen(0, "127.0.0.1", () => emit({ port: server.address().port }));
}

function connect(certPath, keyPath, caPath, port) {
  const socket = tls.connect(
    { ...options(certPath, keyPath, caPath), host: "127.0.0.1", port: Number(port) },
    async () => {
      try {
        socket.setTimeout(TIMEOUT_MS, () => fail(new Error("timeout")));
        const seen = describe(socket);
        socket.write("hello\n");
        const reply = JSON.parse(await firstLine(socket));
        emit({ peer: seen, reply });
        state.done = true;
        socket.end();
      } catch (err) {
        fail(err);
      }
    },
  );
  const state = failUntilDone(socket);
}

function vectors(dir) {
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".der")).sort()) {
    const name = file.slice(0, -".der".length);
    try {
      emit({ name, claims: decodeClaims(readFileSync(join(dir, file))) });
    } catch (err) {
      emit({ name, error: err.message });
    }
  }
}

const [command, ...args] = process.argv.slice(2);
try {
  if (command === "server" && args.length === 3) serve(...args);
  else if (command === "client" && args.length === 4) connect(...args);
  else if (command === "vectors" && args.length === 1) vectors(...args);
  else throw new Error("bad arguments");
} catch (err) {
  fail(err);
}
