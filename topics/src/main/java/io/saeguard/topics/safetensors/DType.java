package io.saeguard.topics.safetensors;

import java.util.Arrays;
import java.util.Optional;
import java.util.stream.Collectors;

/** Element types of the safetensors format, named as in its JSON header. */
public enum DType {
    F64(8, true),
    F32(4, true),
    F16(2, true),
    BF16(2, true),
    I64(8, false),
    I32(4, false),
    I16(2, false),
    I8(1, false),
    U8(1, false),
    BOOL(1, false);

    private final int bytes;
    private final boolean floating;

    DType(int bytes, boolean floating) {
        this.bytes = bytes;
        this.floating = floating;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }

    /** Whether the elements are floating point numbers. */
    public boolean isFloating() {
        return floating;
    }

    /** The dtype for a header name such as {@code "BF16"}; case-sensitive, as the format is. */
    public static Optional<DType> fromName(String name) {
        for (DType d : values()) {
            if (d.name().equals(name)) {
                return Optional.of(d);
            }
        }
        return Optional.empty();
    }

    /** The supported names, for error messages. */
    public static String supportedNames() {
        return Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", "));
    }
}
