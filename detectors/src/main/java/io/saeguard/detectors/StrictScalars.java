package io.saeguard.detectors;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.deser.std.StdDeserializer;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.module.SimpleModule;
import java.io.IOException;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * Scalar binding for rule configs ({@link RuleBinding}), as strict as detector definitions have always been read and
 * stricter than Jackson's defaults: a number is an unquoted, finite YAML number; an integer is an unquoted whole
 * YAML number in range, never a truncated {@code 1.5} nor {@code 2.0}; a boolean is {@code true}/{@code false},
 * never {@code 1} or {@code 'true'}; text is a non-blank YAML string, never a number. (The sidecar's config accepts
 * numbers written as text, because its environment overrides arrive as text; detector files have no such overrides.)
 * A refused value fails with a {@code MismatchedInputException} whose target type {@link RuleBinding} turns into
 * words.
 */
final class StrictScalars {
    private StrictScalars() {
    }

    static SimpleModule module() {
        SimpleModule module = new SimpleModule("saeguard-rule-scalars");
        module.addDeserializer(double.class, new Scalar<>(double.class, StrictScalars::finite));
        module.addDeserializer(Double.class, new Scalar<>(Double.class, StrictScalars::finite));
        module.addDeserializer(int.class, new Scalar<>(int.class, StrictScalars::integer));
        module.addDeserializer(Integer.class, new Scalar<>(Integer.class, StrictScalars::integer));
        module.addDeserializer(long.class, new Scalar<>(long.class, StrictScalars::whole));
        module.addDeserializer(Long.class, new Scalar<>(Long.class, StrictScalars::whole));
        module.addDeserializer(boolean.class, new Scalar<>(boolean.class, StrictScalars::bool));
        module.addDeserializer(Boolean.class, new Scalar<>(Boolean.class, StrictScalars::bool));
        module.addDeserializer(String.class, new Scalar<>(String.class, StrictScalars::text));
        module.addDeserializer(OptionalDouble.class, new Scalar<>(OptionalDouble.class, (p, c) -> OptionalDouble.of(finite(p, c)),
                OptionalDouble.empty()));
        module.addDeserializer(OptionalInt.class, new Scalar<>(OptionalInt.class, (p, c) -> OptionalInt.of(integer(p, c)),
                OptionalInt.empty()));
        module.addDeserializer(OptionalLong.class, new Scalar<>(OptionalLong.class, (p, c) -> OptionalLong.of(whole(p, c)),
                OptionalLong.empty()));
        return module;
    }

    private static double finite(JsonParser p, DeserializationContext ctxt) throws IOException {
        if (!p.currentToken().isNumeric()) {
            return (Double) ctxt.handleUnexpectedToken(double.class, p);
        }
        double d = p.getDoubleValue();
        if (!Double.isFinite(d)) {
            throw InvalidFormatException.from(p, "not a finite number", d, double.class);
        }
        return d;
    }

    private static int integer(JsonParser p, DeserializationContext ctxt) throws IOException {
        if (p.currentToken() != JsonToken.VALUE_NUMBER_INT || p.getNumberType() != JsonParser.NumberType.INT) {
            return (Integer) ctxt.handleUnexpectedToken(int.class, p);
        }
        return p.getIntValue();
    }

    private static long whole(JsonParser p, DeserializationContext ctxt) throws IOException {
        JsonParser.NumberType type = p.currentToken() == JsonToken.VALUE_NUMBER_INT ? p.getNumberType() : null;
        if (type != JsonParser.NumberType.INT && type != JsonParser.NumberType.LONG) {
            return (Long) ctxt.handleUnexpectedToken(long.class, p);
        }
        return p.getLongValue();
    }

    private static boolean bool(JsonParser p, DeserializationContext ctxt) throws IOException {
        JsonToken t = p.currentToken();
        if (t != JsonToken.VALUE_TRUE && t != JsonToken.VALUE_FALSE) {
            return (Boolean) ctxt.handleUnexpectedToken(boolean.class, p);
        }
        return t == JsonToken.VALUE_TRUE;
    }

    private static String text(JsonParser p, DeserializationContext ctxt) throws IOException {
        if (p.currentToken() != JsonToken.VALUE_STRING || p.getText().isBlank()) {
            return (String) ctxt.handleUnexpectedToken(String.class, p);
        }
        return p.getText();
    }

    @FunctionalInterface
    private interface Reader<T> {
        T read(JsonParser p, DeserializationContext ctxt) throws IOException;
    }

    /** One scalar type read by one {@link Reader}; {@code absent} stands for a left-out or {@code null} value. */
    private static final class Scalar<T> extends StdDeserializer<T> {
        private static final long serialVersionUID = 1L;

        private final transient Reader<T> reader;
        private final transient T absent;

        Scalar(Class<?> type, Reader<T> reader) {
            this(type, reader, null);
        }

        Scalar(Class<?> type, Reader<T> reader, T absent) {
            super(type);
            this.reader = reader;
            this.absent = absent;
        }

        @Override
        public T deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
            return reader.read(p, ctxt);
        }

        @Override
        public T getNullValue(DeserializationContext ctxt) {
            return absent;
        }
    }
}
