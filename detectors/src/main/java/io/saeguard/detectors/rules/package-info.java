/**
 * The built-in rule kinds: {@code features} (thresholds on listed features), {@code probe} (logistic
 * regression over SAE codes), {@code raw-probe} (logistic regression over raw activations, the
 * sparse-probing baseline, algorithms.md §8) and {@code dsg} (the Dynamic SAE Guardrail, §1). Each is a
 * public kind and config record; the scoring implementations are package-private.
 */
package io.saeguard.detectors.rules;
