package io.saeguard.topics.events;

import com.fasterxml.jackson.core.io.JsonStringEncoder;
import com.fasterxml.jackson.databind.JsonNode;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.DecodeException.Reason;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.Set;
import java.util.function.Function;

/**
 * Reads the fields of one JSON object of an event, applying the same rules as the JSON Schema and
 * failing with a {@link DecodeException} whose message names the event, the field path and what was
 * expected, e.g. {@code decision: field "features[2].id" must be an integer >= 0, found -1}.
 *
 * <p>Reasons: {@link Reason#MALFORMED_HEADER} for the wrong shape (not an object, unknown field),
 * {@link Reason#MISSING_FIELD} for an absent required field, {@link Reason#INVALID_VALUE} for a
 * present field of the wrong type, range or enum value (JSON {@code null} included: optional fields
 * are omitted, never null).
 */
final class JsonObjectReader {
    /** Longest excerpt of an offending value quoted in a message; dead-letter headers must not carry payloads. */
    private static final int MAX_QUOTED_CHARS = 40;

    private final String event;
    private final String path;
    private final JsonNode node;

    /** Reads an element of an array or a nested object. */
    @FunctionalInterface
    interface ElementReader<T> {
        T read(JsonNode element, String elementPath) throws DecodeException;
    }

    private JsonObjectReader(String event, String path, JsonNode node, Set<String> allowedFields)
            throws DecodeException {
        this.event = event;
        this.path = path;
        this.node = node;
        for (Map.Entry<String, JsonNode> property : node.properties()) {
            if (!allowedFields.contains(property.getKey())) {
                throw new DecodeException(
                        Reason.MALFORMED_HEADER,
                        event + ": unknown field \"" + path + property.getKey() + "\"; allowed fields are "
                                + String.join(", ", allowedFields));
            }
        }
    }

    /** The top-level object of an event named {@code event} ("prompt", "decision", "alert"). */
    static JsonObjectReader root(String event, JsonNode node, Set<String> allowedFields) throws DecodeException {
        if (!node.isObject()) {
            throw new DecodeException(
                    Reason.MALFORMED_HEADER, event + ": expected a JSON object, found " + describe(node));
        }
        return new JsonObjectReader(event, "", node, allowedFields);
    }

    /** A nested object at {@code fieldPath} (as produced by {@link #optionalObject} or {@link #optionalArray}). */
    JsonObjectReader nested(JsonNode value, String fieldPath, Set<String> allowedFields) throws DecodeException {
        if (!value.isObject()) {
            throw invalid(fieldPath, "an object", value);
        }
        return new JsonObjectReader(event, fieldPath + ".", value, allowedFields);
    }

    String requiredString(String field, boolean nonEmpty) throws DecodeException {
        return string(required(field), path + field, nonEmpty);
    }

    Optional<String> optionalString(String field, boolean nonEmpty) throws DecodeException {
        JsonNode value = node.get(field);
        return value == null ? Optional.empty() : Optional.of(string(value, path + field, nonEmpty));
    }

    long requiredLong(String field) throws DecodeException {
        return nonNegativeLong(required(field), path + field);
    }

    OptionalLong optionalLong(String field) throws DecodeException {
        JsonNode value = node.get(field);
        return value == null ? OptionalLong.empty() : OptionalLong.of(nonNegativeLong(value, path + field));
    }

    int requiredInt(String field) throws DecodeException {
        return nonNegativeInt(required(field), path + field);
    }

    OptionalInt optionalInt(String field) throws DecodeException {
        JsonNode value = node.get(field);
        return value == null ? OptionalInt.empty() : OptionalInt.of(nonNegativeInt(value, path + field));
    }

    private int nonNegativeInt(JsonNode value, String fieldPath) throws DecodeException {
        if (!isIntegral(value) || !value.canConvertToInt() || value.intValue() < 0) {
            throw invalid(fieldPath, "an integer from 0 to " + Integer.MAX_VALUE, value);
        }
        return value.intValue();
    }

    double requiredDouble(String field) throws DecodeException {
        return number(required(field), path + field, false);
    }

    OptionalDouble optionalDouble(String field, boolean nonNegative) throws DecodeException {
        JsonNode value = node.get(field);
        return value == null ? OptionalDouble.empty() : OptionalDouble.of(number(value, path + field, nonNegative));
    }

    <E> E requiredEnum(String field, Function<String, Optional<E>> fromWireName, String wireNames)
            throws DecodeException {
        return enumValue(required(field), path + field, fromWireName, wireNames);
    }

    <E> Optional<E> optionalEnum(String field, Function<String, Optional<E>> fromWireName, String wireNames)
            throws DecodeException {
        JsonNode value = node.get(field);
        return value == null ? Optional.empty() : Optional.of(enumValue(value, path + field, fromWireName, wireNames));
    }

    <T> Optional<T> optionalObject(String field, ElementReader<T> reader) throws DecodeException {
        JsonNode value = node.get(field);
        return value == null ? Optional.empty() : Optional.of(reader.read(value, path + field));
    }

    /** An absent array reads as empty. */
    <T> List<T> optionalArray(String field, ElementReader<T> elementReader) throws DecodeException {
        JsonNode value = node.get(field);
        if (value == null) {
            return List.of();
        }
        if (!value.isArray()) {
            throw invalid(path + field, "an array", value);
        }
        List<T> elements = new ArrayList<>(value.size());
        for (int i = 0; i < value.size(); i++) {
            elements.add(elementReader.read(value.get(i), path + field + "[" + i + "]"));
        }
        return elements;
    }

    /** An array element that must be an integer {@code >= 0}. */
    long nonNegativeLong(JsonNode value, String fieldPath) throws DecodeException {
        if (!isIntegral(value) || !value.canConvertToLong() || value.longValue() < 0) {
            throw invalid(fieldPath, "an integer >= 0", value);
        }
        return value.longValue();
    }

    /** A field that must be present and {@code true} (a marker such as a shadow decision's {@code "shadow": true}). */
    void requiredTrue(String field) throws DecodeException {
        JsonNode value = required(field);
        if (!value.isBoolean() || !value.booleanValue()) {
            throw invalid(path + field, "true", value);
        }
    }

    private JsonNode required(String field) throws DecodeException {
        JsonNode value = node.get(field);
        if (value == null) {
            throw new DecodeException(
                    Reason.MISSING_FIELD, event + ": required field \"" + path + field + "\" is missing");
        }
        return value;
    }

    private String string(JsonNode value, String fieldPath, boolean nonEmpty) throws DecodeException {
        if (!value.isTextual() || (nonEmpty && value.textValue().isEmpty())) {
            throw invalid(fieldPath, nonEmpty ? "a non-empty string" : "a string", value);
        }
        return value.textValue();
    }

    private double number(JsonNode value, String fieldPath, boolean nonNegative) throws DecodeException {
        // JSON cannot say NaN or Infinity, but a literal like 1e400 overflows a double.
        if (!value.isNumber() || !Double.isFinite(value.doubleValue()) || (nonNegative && value.doubleValue() < 0)) {
            throw invalid(fieldPath, nonNegative ? "a finite number >= 0" : "a finite number", value);
        }
        return value.doubleValue();
    }

    private <E> E enumValue(JsonNode value, String fieldPath, Function<String, Optional<E>> fromWireName,
            String wireNames) throws DecodeException {
        Optional<E> parsed = value.isTextual() ? fromWireName.apply(value.textValue()) : Optional.empty();
        if (parsed.isEmpty()) {
            throw invalid(fieldPath, "one of " + wireNames, value);
        }
        return parsed.get();
    }

    /** JSON Schema counts a number with a zero fractional part, such as {@code 3.0}, as an integer. */
    private static boolean isIntegral(JsonNode value) {
        return value.isIntegralNumber() || (value.isFloatingPointNumber() && value.canConvertToExactIntegral());
    }

    private DecodeException invalid(String fieldPath, String expected, JsonNode found) {
        return new DecodeException(
                Reason.INVALID_VALUE,
                event + ": field \"" + fieldPath + "\" must be " + expected + ", found " + describe(found));
    }

    /** The offending value, short enough for a dead-letter header and without more than a snippet of payload. */
    static String describe(JsonNode value) {
        if (value.isTextual()) {
            return "\"" + new String(JsonStringEncoder.getInstance().quoteAsString(truncate(value.textValue()))) + "\"";
        }
        if (value.isArray()) {
            return "an array";
        }
        if (value.isObject()) {
            return "an object";
        }
        if (value.isMissingNode()) {
            return "no content";
        }
        return truncate(value.asText());
    }

    private static String truncate(String s) {
        if (s.length() <= MAX_QUOTED_CHARS) {
            return s;
        }
        int end = Character.isHighSurrogate(s.charAt(MAX_QUOTED_CHARS - 1)) ? MAX_QUOTED_CHARS - 1 : MAX_QUOTED_CHARS;
        return s.substring(0, end) + "...";
    }
}
