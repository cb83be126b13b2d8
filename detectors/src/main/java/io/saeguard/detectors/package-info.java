/**
 * Detectors (docs/architecture.md#detectors): detector definitions, rule kinds, per-request state and policy. Pure Java
 * over {@code saeguard-topics}: it sees sparse codes and activations, never DJL; decoder directions
 * arrive through {@link io.saeguard.detectors.DecoderDirections}, which the sidecar wires to the SAE.
 *
 * <p>Entry points: {@link io.saeguard.detectors.DetectorDefinitions} loads and validates the YAML
 * definitions (one file per detector), {@link io.saeguard.detectors.DetectorEngine} evaluates
 * {@link io.saeguard.detectors.Chunk}s into one {@link io.saeguard.topics.events.Decision} per chunk plus
 * {@link io.saeguard.topics.events.Alert}s. Rule kinds are plug-ins
 * ({@link io.saeguard.detectors.spi.DetectorKind}); the built-in ones live in
 * {@code io.saeguard.detectors.rules}; feature selection ({@code saeguard select}) in
 * {@code io.saeguard.detectors.select}.
 */
package io.saeguard.detectors;
