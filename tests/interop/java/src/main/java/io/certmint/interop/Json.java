package io.certmint.interop;

import java.util.List;
import java.util.Map;

/** Just enough JSON output for the driver protocol (strings, numbers, lists, maps). */
final class Json {
  /** Text that is already JSON, written as is. */
  record Raw(String json) {}

  private Json() {}

  static String object(Map<String, ?> map) {
    StringBuilder out = new StringBuilder();
    write(out, map);
    return out.toString();
  }

  private static void write(StringBuilder out, Object value) {
    if (value instanceof Raw raw) {
      out.append(raw.json());
    } else if (value instanceof Map<?, ?> map) {
      out.append('{');
      String separator = "";
      for (Map.Entry<?, ?> entry : map.entrySet()) {
        out.append(separator);
        string(out, String.valueOf(entry.getKey()));
        out.append(':');
        write(out, entry.getValue());
        separator = ",";
      }
      out.append('}');
    } else if (value instanceof List<?> list) {
      out.append('[');
      String separator = "";
      for (Object item : list) {
        out.append(separator);
        write(out, item);
        separator = ",";
      }
      out.append(']');
    } else if (value instanceof Number number) {
      out.append(number);
    } else {
      string(out, String.valueOf(value));
    }
  }

  private static void string(StringBuilder out, String text) {
    out.append('"');
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c == '"' || c == '\\') {
        out.append('\\').append(c);
      } else if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
        out.append(String.format("\\u%04x", (int) c));
      } else {
        out.append(c);
      }
    }
    out.append('"');
  }
}
