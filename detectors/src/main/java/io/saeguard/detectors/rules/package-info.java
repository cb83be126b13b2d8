/**
 * The built-in rule kinds: {@code features} (thresholds on listed features), {@code probe} (logistic
 * regression over SAE codes), {@code raw-probe} (logistic regression over raw activations, the
 * sparse-probing baseline, docs/algorithms.md#probe-and-raw-probe) and {@code dsg} (the Dynamic SAE Guardrail, docs/algorithms.md#dsg). Each is a
 * public kind and config record; the scoring implementations are package-private.
 */
package io.saeguard.detectors.rules;
