package io.saeguard.sidecar.http;

import static org.assertj.core.api.Assertions.assertThat;

import io.saeguard.sidecar.config.SidecarConfig;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

class AuthenticatorTest {
    private static final String OLD = "o".repeat(40);
    private static final String NEW = "n".repeat(40);

    private static SidecarConfig.Token token(String name, String secret, SidecarConfig.Scope... scopes) throws Exception {
        return new SidecarConfig.Token(name, MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.UTF_8)),
                Set.of(scopes));
    }

    @Test
    void bothTokensOfARotationAreAcceptedByName() throws Exception {
        Authenticator a = new Authenticator(List.of(token("old", OLD, SidecarConfig.Scope.READ), token("new", NEW, SidecarConfig.Scope.READ)));

        assertThat(a.identify(Optional.of("Bearer " + OLD))).hasValueSatisfying(t -> assertThat(t.name()).isEqualTo("old"));
        assertThat(a.identify(Optional.of("bearer  " + NEW + " "))).hasValueSatisfying(t -> assertThat(t.name()).isEqualTo("new"));
    }

    @Test
    void aWrongMissingOrMalformedCredentialIsNobody() throws Exception {
        Authenticator a = new Authenticator(List.of(token("old", OLD, SidecarConfig.Scope.READ)));

        assertThat(a.identify(Optional.empty())).isEmpty();
        assertThat(a.identify(Optional.of("Bearer " + OLD.substring(1)))).isEmpty();
        assertThat(a.identify(Optional.of("Bearer"))).isEmpty();
        assertThat(a.identify(Optional.of(OLD))).isEmpty();
        assertThat(a.identify(Optional.of("Token " + OLD))).isEmpty();
        assertThat(a.identify(Optional.of("Basic !!!"))).isEmpty();
    }

    @Test
    void aBrowsersBasicCredentialCarriesTheTokenAsItsPassword() throws Exception {
        Authenticator a = new Authenticator(List.of(token("old", OLD, SidecarConfig.Scope.READ)));
        String basic = Base64.getEncoder().encodeToString(("anyone:" + OLD).getBytes(StandardCharsets.UTF_8));

        assertThat(a.identify(Optional.of("Basic " + basic))).isPresent();
        assertThat(a.identify(Optional.of("Basic " + Base64.getEncoder().encodeToString((OLD + ":").getBytes(StandardCharsets.UTF_8)))))
                .isEmpty();
    }
}
