package io.saeguard.sidecar.config;

import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/** Keeps passwords, keys and JAAS configs out of logs. */
public final class Secrets {
    private Secrets() {
    }

    /** Whether a Kafka property name holds a secret. */
    public static boolean isSecret(String key) {
        String k = key.toLowerCase(Locale.ROOT);
        return k.contains("password") || k.contains("secret") || k.contains("jaas") || k.contains("token")
                || k.endsWith(".key") || k.contains("credential");
    }

    /** A sorted copy with secret values replaced. */
    public static Map<String, String> redact(Map<String, String> props) {
        Map<String, String> out = new TreeMap<>();
        props.forEach((k, v) -> out.put(k, isSecret(k) ? "[redacted]" : v));
        return out;
    }
}
