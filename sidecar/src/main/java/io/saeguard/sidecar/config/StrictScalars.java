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
 * {@code ""}; a number is a YAML number or text that parses as one.
 */
final class StrictScalars {
    private StrictScalars() {
    }

    static SimpleModule module() {
        SimpleModule module = new SimpleModule("saeguard-config-scalars");
        module.addDeserializer(Integer.class, new IntegerValue());
        module.addDeserializer(Boolean.class, new BooleanValue());
        module.addDeserializer(Double.class, new DoubleValue());
        return module;
    }

    private static InvalidFormatException invalid(JsonParser p, Class<?> type) throws IOException {
        return InvalidFormatException.from(p, "not a valid " + type.getSimpleName(), p.getText(), type);
    }

    private static final class IntegerValue extends StdScalarDeserializer<Integer> {
        private static final long serialVersionUID = 1L;

        IntegerValue() {
            super(Integer.class);
        }

        @Override
        public Integer deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            JsonToken t = p.currentToken();
            if (t == JsonToken.VALUE_NUMBER_INT && p.getNumberType() == JsonParser.NumberType.INT) {
                return p.getIntValue();
            }
            if (t == JsonToken.VALUE_NUMBER_FLOAT) {
                double d = p.getDoubleValue();
                if (d == Math.rint(d) && d >= Integer.MIN_VALUE && d <= Integer.MAX_VALUE) {
                    return (int) d;
                }
            }
            if (t == JsonToken.VALUE_STRING) {
                try {
                    return Integer.parseInt(p.getText().trim());
                } catch (NumberFormatException e) {
                    throw invalid(p, Integer.class);
                }
            }
            if (t == JsonToken.START_OBJECT || t == JsonToken.START_ARRAY) {
                return (Integer) ctxt.handleUnexpectedToken(Integer.class, p);
            }
            throw invalid(p, Integer.class);
        }
    }

    private static final class BooleanValue extends StdScalarDeserializer<Boolean> {
        private static final long serialVersionUID = 1L;

        BooleanValue() {
            super(Boolean.class);
        }

        @Override
        public Boolean deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            JsonToken t = p.currentToken();
            if (t == JsonToken.VALUE_TRUE || t == JsonToken.VALUE_FALSE) {
                return t == JsonToken.VALUE_TRUE;
            }
            if (t == JsonToken.VALUE_STRING && (p.getText().equals("true") || p.getText().equals("false"))) {
                return Boolean.parseBoolean(p.getText());
            }
            if (t == JsonToken.START_OBJECT || t == JsonToken.START_ARRAY) {
                return (Boolean) ctxt.handleUnexpectedToken(Boolean.class, p);
            }
            throw invalid(p, Boolean.class);
        }
    }

    private static final class DoubleValue extends StdScalarDeserializer<Double> {
        private static final long serialVersionUID = 1L;

        DoubleValue() {
            super(Double.class);
        }

        @Override
        public Double deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            JsonToken t = p.currentToken();
            if (t == JsonToken.VALUE_NUMBER_INT || t == JsonToken.VALUE_NUMBER_FLOAT) {
                return p.getDoubleValue();
            }
            if (t == JsonToken.VALUE_STRING) {
                try {
                    return Double.parseDouble(p.getText().trim());
                } catch (NumberFormatException e) {
                    throw invalid(p, Double.class);
                }
            }
            if (t == JsonToken.START_OBJECT || t == JsonToken.START_ARRAY) {
                return (Double) ctxt.handleUnexpectedToken(Double.class, p);
            }
            throw invalid(p, Double.class);
        }
    }
}
