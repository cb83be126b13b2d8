/**
 * Detectors (design.md §5): detector definitions, rule kinds, per-request state and policy.
 * Pure Java over {@code saeguard-topics}: it sees sparse codes and activations, never DJL.
 * The detector engine arrives with the detectors issue; this module fixes its place in the layering.
 */
package io.saeguard.detectors;
