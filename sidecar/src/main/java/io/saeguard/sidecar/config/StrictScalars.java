package io.saeguard.sidecar.config;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.deser.std.StdScalarDeserializer;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.module.SimpleModule;
import java.io.IOException;

/**
 * Scalar binding as the sidecar's config has always read it, stricter than Jackson's defaults: an integer is a whole
 * YAML number in the {@code int} range or text that parses as one (environment overrides arrive as text), never a
 * truncated {@code 1.5}; a boolean is {@code true}/{@code false} (YAML or text), never {@code 1}, {@code yes} or
 * {@code ""}; a number is a YAML number or text that parses as one. A mapping or list where a scalar belongs is
 * Jackson's "unexpected token"; any other refused value an {@code InvalidFormatException}.
 */
final class StrictScalars {
    private StrictScalars() {
    }

    static SimpleModule module() {
        SimpleModule module = new SimpleModule("saeguard-config-scalars");
        module.addDeserializer(Integer.class, new Scalar<>(Integer.class, StrictScalars::integer));
        module.addDeserializer(Boolean.class, new Scalar<>(Boolean.class, StrictScalars::bool));
        module.addDeserializer(Double.class, new Scalar<>(Double.class, StrictScalars::number));
        return module;
    }

    /** The value, or null when this reader refuses the token (then {@link Scalar} reports it). */
    @FunctionalInterface
    private interface Reader<T> {
        T read(JsonParser p) throws IOException;
    }

    private static Integer integer(JsonParser p) throws IOException {
        JsonToken t = p.currentToken();
        if (t == JsonToken.VALUE_NUMBER_INT && p.getNumberType() == JsonParser.NumberType.INT) {
            return p.getIntValue();
        }
        if (t == JsonToken.VALUE_NUMBER_FLOAT) {
            double d = p.getDoubleValue();
            return d == Math.rint(d) && d >= Integer.MIN_VALUE && d <= Integer.MAX_VALUE ? (int) d : null;
        }
        if (t == JsonToken.VALUE_STRING) {
            try {
                return Integer.parseInt(p.getText().trim());
            } catch (NumberFormatException e) {
                return null;
            }
        }
        return null;
    }

    private static Boolean bool(JsonParser p) throws IOException {
        JsonToken t = p.currentToken();
        if (t == JsonToken.VALUE_TRUE || t == JsonToken.VALUE_FALSE) {
            return t == JsonToken.VALUE_TRUE;
        }
        if (t == JsonToken.VALUE_STRING && (p.getText().equals("true") || p.getText().equals("false"))) {
            return Boolean.parseBoolean(p.getText());
        }
        return null;
    }

    private static Double number(JsonParser p) throws IOException {
        JsonToken t = p.currentToken();
        if (t == JsonToken.VALUE_NUMBER_INT || t == JsonToken.VALUE_NUMBER_FLOAT) {
            return p.getDoubleValue();
        }
        if (t == JsonToken.VALUE_STRING) {
            try {
                return Double.parseDouble(p.getText().trim());
            } catch (NumberFormatException e) {
                return null;
            }
        }
        return null;
    }

    /** One scalar type read by one {@link Reader}. */
    private static final class Scalar<T> extends StdScalarDeserializer<T> {
        private static final long serialVersionUID = 1L;

        private final Class<T> type;
        private final transient Reader<T> reader;

        Scalar(Class<T> type, Reader<T> reader) {
            super(type);
            this.type = type;
            this.reader = reader;
        }

        @Override
        public T deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            JsonToken t = p.currentToken();
            if (t == JsonToken.START_OBJECT || t == JsonToken.START_ARRAY) {
                return type.cast(ctxt.handleUnexpectedToken(type, p));
            }
            T value = reader.read(p);
            if (value == null) {
                throw InvalidFormatException.from(p, "not a valid " + type.getSimpleName(), p.getText(), type);
            }
            return value;
        }
    }
}
