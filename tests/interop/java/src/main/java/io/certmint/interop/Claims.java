package io.certmint.interop;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.bouncycastle.asn1.ASN1Encoding;
import org.bouncycastle.asn1.ASN1Integer;
import org.bouncycastle.asn1.ASN1OctetString;
import org.bouncycastle.asn1.ASN1Primitive;
import org.bouncycastle.asn1.ASN1Sequence;
import org.bouncycastle.asn1.ASN1UTF8String;

/** The certmint claims extension, decoded with Bouncy Castle by the rules of docs/claims.md. */
final class Claims {
  static final String DEFAULT_OID =
      "1.2.840.113556.1.8000.2554.49118.29815.48385.17178.39665.9535742.3088872.1";

  private Claims() {}

  /** The claims of a certificate; empty without the extension. */
  static Map<String, List<String>> of(X509Certificate certificate, String oid)
      throws IOException {
    byte[] wrapped = certificate.getExtensionValue(oid);
    if (wrapped == null) {
      return new LinkedHashMap<>();
    }
    return decode(ASN1OctetString.getInstance(wrapped).getOctets());
  }

  /** Decodes a WorkloadClaims value; throws IOException for anything the rules refuse. */
  static Map<String, List<String>> decode(byte[] der) throws IOException {
    ASN1Primitive document;
    try {
      document = ASN1Primitive.fromByteArray(der); // refuses trailing bytes
    } catch (IOException | RuntimeException e) {
      throw new IOException("not DER: " + e.getMessage(), e);
    }
    if (!Arrays.equals(document.getEncoded(ASN1Encoding.DER), der)) {
      throw new IOException("not canonical DER");
    }
    ASN1Sequence top = sequence(document, "WorkloadClaims");
    if (top.size() != 2 || !(top.getObjectAt(0) instanceof ASN1Integer)) {
      throw new IOException("WorkloadClaims must be SEQUENCE { INTEGER, SEQUENCE OF Claim }");
    }
    if (!((ASN1Integer) top.getObjectAt(0)).hasValue(1)) {
      throw new IOException("unsupported version " + top.getObjectAt(0));
    }
    Map<String, List<String>> result = new LinkedHashMap<>();
    String previousKey = null;
    for (var element : sequence(top.getObjectAt(1), "claims")) {
      ASN1Sequence claim = sequence(element, "Claim");
      if (claim.size() != 2) {
        throw new IOException("a Claim must have a key and values");
      }
      String key = text(claim.getObjectAt(0));
      if (previousKey != null && compareUtf8(key, previousKey) <= 0) {
        throw new IOException("keys out of order or repeated at " + key);
      }
      previousKey = key;
      List<String> values = new ArrayList<>();
      for (var item : sequence(claim.getObjectAt(1), "values")) {
        String value = text(item);
        if (!values.isEmpty() && compareUtf8(value, values.get(values.size() - 1)) <= 0) {
          throw new IOException("values of " + key + " out of order or repeated at " + value);
        }
        values.add(value);
      }
      if (values.isEmpty()) {
        throw new IOException("claim " + key + " has no values");
      }
      result.put(key, values);
    }
    return result;
  }

  private static ASN1Sequence sequence(Object element, String what) throws IOException {
    if (!(element instanceof ASN1Sequence)) {
      throw new IOException(what + " is not a SEQUENCE");
    }
    return (ASN1Sequence) element;
  }

  private static String text(Object element) throws IOException {
    if (!(element instanceof ASN1UTF8String)) {
      throw new IOException("not a UTF8String: " + element);
    }
    byte[] encoded = ((ASN1UTF8String) element).getEncoded(ASN1Encoding.DER);
    byte[] contents = ASN1OctetString.getInstance(
        ASN1Primitive.fromByteArray(withOctetStringTag(encoded))).getOctets();
    String value;
    try {
      value = StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(contents))
          .toString();
    } catch (CharacterCodingException e) {
      throw new IOException("invalid UTF-8");
    }
    if (value.isEmpty()) {
      throw new IOException("empty string");
    }
    for (int i = 0; i < value.length(); i++) {
      if (Character.getType(value.charAt(i)) == Character.CONTROL) {
        throw new IOException(String.format("control character U+%04X", (int) value.charAt(i)));
      }
    }
    return value;
  }

  /** The same TLV with the OCTET STRING tag, to read the UTF8String's raw content octets. */
  private static byte[] withOctetStringTag(byte[] encoded) {
    byte[] copy = encoded.clone();
    copy[0] = 0x04;
    return copy;
  }

  /** Orders by UTF-8 bytes (code points), not by String.compareTo (UTF-16 units). */
  static int compareUtf8(String a, String b) {
    return Arrays.compareUnsigned(
        a.getBytes(StandardCharsets.UTF_8), b.getBytes(StandardCharsets.UTF_8));
  }
}
