/**
 * {@code saeguard replay}: decides a stretch of recorded activation and prompt history with another config, in process
 * and without producing anything, and compares the outcome with the decisions production recorded for the same records.
 * {@link io.saeguard.sidecar.kafka.HistoryReader} reads the topics by timestamp, {@link io.saeguard.sidecar.replay.Replay}
 * decides every record through a check-only engine, {@link io.saeguard.sidecar.replay.DecisionComparison} matches the
 * outcomes with the recorded decisions and {@link io.saeguard.sidecar.replay.ReplayReport} writes the result.
 */
package io.saeguard.sidecar.replay;
