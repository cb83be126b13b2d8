package io.saeguard.topics;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.assertj.core.api.ThrowableAssert.ThrowingCallable;

/** Asserts that decoding fails with a given reason and a message a person can act on. */
public final class DecodeAssertions {
    private DecodeAssertions() {
    }

    public static void assertDecodeError(ThrowingCallable call, DecodeException.Reason reason, String... messageParts) {
        assertThatThrownBy(call).isInstanceOf(DecodeException.class)
                .satisfies(e -> assertThat(((DecodeException) e).reason()).isEqualTo(reason))
                .message().contains(messageParts);
    }
}
