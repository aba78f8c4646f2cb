package main

import (
	"bytes"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// workloadClaims mirrors the ASN.1 type in docs/claims.md. Strings stay raw values so
// that the decoder can insist on UTF8String (encoding/asn1 would accept other string types).
type workloadClaims struct {
	Version int
	Claims  []claim
}

type claim struct {
	Key    asn1.RawValue
	Values []asn1.RawValue
}

// decodeClaims applies the validity rules of docs/claims.md, and only those.
func decodeClaims(der []byte) (map[string][]string, error) {
	var wc workloadClaims
	rest, err := asn1.Unmarshal(der, &wc)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(rest))
	}
	if wc.Version != 1 {
		return nil, fmt.Errorf("unsupported version %d", wc.Version)
	}
	// encoding/asn1 tolerates extra elements at the end of a SEQUENCE; DER does not.
	again, err := asn1.Marshal(wc)
	if err != nil || !bytes.Equal(again, der) {
		return nil, errors.New("not canonical DER")
	}
	result := map[string][]string{}
	previousKey := ""
	for i, c := range wc.Claims {
		key, err := text(c.Key)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if i > 0 && key <= previousKey {
			return nil, fmt.Errorf("keys out of order or repeated at %q", key)
		}
		previousKey = key
		if len(c.Values) == 0 {
			return nil, fmt.Errorf("claim %q has no values", key)
		}
		values := make([]string, 0, len(c.Values))
		for j, raw := range c.Values {
			value, err := text(raw)
			if err != nil {
				return nil, fmt.Errorf("claim %q value %d: %w", key, j, err)
			}
			if j > 0 && value <= values[j-1] {
				return nil, fmt.Errorf("values of %q out of order or repeated at %q", key, value)
			}
			values = append(values, value)
		}
		result[key] = values
	}
	return result, nil
}

// text checks one key or value: a UTF8String, valid UTF-8, non-empty, no control character.
func text(raw asn1.RawValue) (string, error) {
	if raw.Class != asn1.ClassUniversal || raw.Tag != asn1.TagUTF8String || raw.IsCompound {
		return "", fmt.Errorf("not a UTF8String (tag %d)", raw.Tag)
	}
	if len(raw.Bytes) == 0 {
		return "", errors.New("empty string")
	}
	if !utf8.Valid(raw.Bytes) {
		return "", errors.New("invalid UTF-8")
	}
	s := string(raw.Bytes)
	for _, r := range s {
		if unicode.IsControl(r) { // Unicode category Cc: U+0000-U+001F, U+007F-U+009F
			return "", fmt.Errorf("control character U+%04X", r)
		}
	}
	return s, nil
}

func firstCertificateDER(pemBytes []byte) ([]byte, error) {
	for {
		var block *pem.Block
		block, pemBytes = pem.Decode(pemBytes)
		if block == nil {
			return nil, errors.New("no CERTIFICATE block")
		}
		if block.Type == "CERTIFICATE" {
			return block.Bytes, nil
		}
	}
}
