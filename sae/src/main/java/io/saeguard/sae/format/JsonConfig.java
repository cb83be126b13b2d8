package io.saeguard.sae.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.saeguard.sae.SaeFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/** A JSON config file with accessors whose errors name the file and the key. */
final class JsonConfig {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Path file;
    private final JsonNode root;

    private JsonConfig(Path file, JsonNode root) {
        this.file = file;
        this.root = root;
    }

    static JsonConfig read(Path file) throws SaeFormatException {
        if (!Files.isRegularFile(file)) {
            throw SaeFormatException.in(file, "file not found");
        }
        try {
            JsonNode root = JSON.readTree(file.toFile());
            if (root == null || !root.isObject()) {
                throw SaeFormatException.in(file, "expected a JSON object");
            }
            return new JsonConfig(file, root);
        } catch (IOException e) {
            throw SaeFormatException.in(file, "not valid JSON: " + e.getMessage());
        }
    }

    Path file() {
        return file;
    }

    JsonConfig child(String key) throws SaeFormatException {
        JsonNode n = root.get(key);
        if (n == null || !n.isObject()) {
            return new JsonConfig(file, JSON.createObjectNode());
        }
        return new JsonConfig(file, n);
    }

    boolean has(String key) {
        JsonNode n = root.get(key);
        return n != null && !n.isNull();
    }

    int requireInt(String key) throws SaeFormatException {
        return optionalInt(key).orElseThrow(() -> SaeFormatException.in(file, "missing integer '" + key + "'"));
    }

    Optional<Integer> optionalInt(String key) throws SaeFormatException {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return Optional.empty();
        }
        if (!n.canConvertToInt() || !(n.isIntegralNumber() || (n.isNumber() && n.asDouble() == Math.rint(n.asDouble())))) {
            throw SaeFormatException.in(file, "'" + key + "' must be an integer, found " + n);
        }
        return Optional.of(n.asInt());
    }

    Optional<Double> optionalDouble(String key) throws SaeFormatException {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return Optional.empty();
        }
        if (!n.isNumber()) {
            throw SaeFormatException.in(file, "'" + key + "' must be a number, found " + n);
        }
        return Optional.of(n.asDouble());
    }

    double requireDouble(String key) throws SaeFormatException {
        return optionalDouble(key).orElseThrow(() -> SaeFormatException.in(file, "missing number '" + key + "'"));
    }

    Optional<String> optionalString(String key) throws SaeFormatException {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return Optional.empty();
        }
        if (!n.isTextual()) {
            throw SaeFormatException.in(file, "'" + key + "' must be a string, found " + n);
        }
        return Optional.of(n.textValue());
    }

    boolean bool(String key, boolean defaultValue) throws SaeFormatException {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return defaultValue;
        }
        if (!n.isBoolean()) {
            throw SaeFormatException.in(file, "'" + key + "' must be true or false, found " + n);
        }
        return n.booleanValue();
    }

    /** The raw node, for keys whose type varies between versions. */
    Optional<JsonNode> node(String key) {
        return Optional.ofNullable(root.get(key)).filter(n -> !n.isNull());
    }
}
