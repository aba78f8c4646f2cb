// The certmint claims extension, decoded with asn1js by the rules of docs/claims.md.
import * as asn1js from "asn1js";

export const DEFAULT_CLAIMS_OID =
  "1.2.840.113556.1.8000.2554.49118.29815.48385.17178.39665.9535742.3088872.1";

const utf8 = new TextDecoder("utf-8", { fatal: true });
// Unicode category Cc.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;

function asSequence(block, what) {
  if (!(block instanceof asn1js.Sequence)) {
    throw new Error(`${what} is not a SEQUENCE`);
  }
  return block.valueBlock.value;
}

function text(block) {
  if (!(block instanceof asn1js.Utf8String)) {
    throw new Error(`not a UTF8String (${block.constructor.name})`);
  }
  const bytes = block.valueBlock.valueHexView;
  let value;
  try {
    value = utf8.decode(bytes);
  } catch {
    throw new Error("invalid UTF-8");
  }
  if (value.length === 0) {
    throw new Error("empty string");
  }
  const control = CONTROL.exec(value);
  if (control) {
    throw new Error(`control character U+${control[0].codePointAt(0).toString(16).padStart(4, "0")}`);
  }
  return { value, bytes: Buffer.from(bytes) };
}

/** Decodes a WorkloadClaims value; throws for anything the rules refuse. */
export function decodeClaims(der) {
  const input = Buffer.from(der);
  const parsed = asn1js.fromBER(new Uint8Array(input).buffer);
  if (parsed.offset === -1) {
    throw new Error(`not DER: ${parsed.result.error}`);
  }
  if (parsed.offset !== input.length) {
    throw new Error(`${input.length - parsed.offset} trailing bytes`);
  }
  const top = asSequence(parsed.result, "WorkloadClaims");
  if (top.length !== 2 || !(top[0] instanceof asn1js.Integer)) {
    throw new Error("WorkloadClaims must be SEQUENCE { INTEGER, SEQUENCE OF Claim }");
  }
  const version = top[0].toBigInt();
  if (version !== 1n) {
    throw new Error(`unsupported version ${version}`);
  }
  const result = {};
  let previousKey = null;
  for (const element of asSequence(top[1], "claims")) {
    const claim = asSequence(element, "Claim");
    if (claim.length !== 2) {
      throw new Error("a Claim must have a key and values");
    }
    const key = text(claim[0]);
    // Order by UTF-8 bytes (code points), not by JavaScript's UTF-16 string order.
    if (previousKey && Buffer.compare(key.bytes, previousKey.bytes) <= 0) {
      throw new Error(`keys out of order or repeated at ${key.value}`);
    }
    previousKey = key;
    const values = [];
    let previous = null;
    for (const item of asSequence(claim[1], "values")) {
      const value = text(item);
      if (previous && Buffer.compare(value.bytes, previous.bytes) <= 0) {
        throw new Error(`values of ${key.value} out of order or repeated at ${value.value}`);
      }
      previous = value;
      values.push(value.value);
    }
    if (values.length === 0) {
      throw new Error(`claim ${key.value} has no values`);
    }
    result[key.value] = values;
  }
  // asn1js reads BER (and keeps its length forms when re-encoding): build the value
  // afresh, whose encoding is DER, and insist the input was exactly that.
  if (!Buffer.from(encodeClaims(result)).equals(input)) {
    throw new Error("not canonical DER");
  }
  return result;
}

/** The DER of claims whose keys and values are already in canonical order. */
function encodeClaims(claims) {
  const list = Object.entries(claims).map(
    ([key, values]) =>
      new asn1js.Sequence({
        value: [
          new asn1js.Utf8String({ value: key }),
          new asn1js.Sequence({ value: values.map((value) => new asn1js.Utf8String({ value })) }),
        ],
      }),
  );
  return new asn1js.Sequence({
    value: [new asn1js.Integer({ value: 1 }), new asn1js.Sequence({ value: list })],
  }).toBER(false);
}

/**
 * The extnValue of the extension `oid` in a DER certificate, or null. Walks
 * Certificate -> tbsCertificate -> [3] extensions with asn1js.
 */
export function extensionValue(certificateDer, oid) {
  const input = Buffer.from(certificateDer);
  const parsed = asn1js.fromBER(new Uint8Array(input).buffer);
  if (parsed.offset === -1) {
    throw new Error("the certificate is not DER");
  }
  const tbs = asSequence(asSequence(parsed.result, "Certificate")[0], "tbsCertificate");
  const tagged = tbs.find((block) => block.idBlock.tagClass === 3 && block.idBlock.tagNumber === 3);
  if (!tagged) {
    return null;
  }
  for (const extension of asSequence(tagged.valueBlock.value[0], "extensions")) {
    const fields = asSequence(extension, "Extension");
    if (fields[0].valueBlock.toString() === oid) {
      return Buffer.from(fields[fields.length - 1].valueBlock.valueHexView);
    }
  }
  return null;
}
