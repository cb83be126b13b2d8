package io.saeguard.detectors;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Everything the {@link DetectorEngine} holds about one request, as data: what {@link DetectorEngine#snapshot} takes
 * and {@link DetectorEngine#restore} puts back, so a request whose chunks are decided by two processes (a partition
 * moved in a rebalance, a restart, a crash) gets the decisions one process would have made (issue 19, item 3).
 * {@link RequestSnapshotCodec} writes it as bytes for the {@code saeguard.state} topic.
 *
 * <p>Detector state is keyed by the detector's id and a {@linkplain #fingerprint fingerprint} of its definition: a
 * snapshot taken under another version of the detector is not restored into this one (it starts afresh, as it does
 * in one process when the detector is replaced).
 *
 * @param requestId      the request
 * @param nextSeq        the {@code seq} of the request's next decision
 * @param lastSeenMillis when the request's last chunk was evaluated (epoch ms; the TTL counts from it)
 * @param saes           the SAEs that sent chunks of the request, in first-seen order, and whether each sent its final one
 * @param detectors      each detector's state, in the engine's detector order
 */
public record RequestSnapshot(String requestId, long nextSeq, long lastSeenMillis, List<SaeProgress> saes,
        List<DetectorSnapshot> detectors) {

    public RequestSnapshot {
        Objects.requireNonNull(requestId, "requestId");
        saes = List.copyOf(saes);
        detectors = List.copyOf(detectors);
    }

    /** One SAE that sent chunks of the request, and whether it sent its final chunk. */
    public record SaeProgress(String sae, boolean finished) {
        public SaeProgress {
            Objects.requireNonNull(sae, "sae");
        }
    }

    /**
     * The request positions a detector counted ({@code CountedPositions}): every position below {@code below}, and
     * the half-open ranges {@code [ranges[2i], ranges[2i+1])} above it.
     */
    public record Positions(long below, long givenUp, long[] ranges) {
        public Positions {
            if (ranges.length % 2 != 0) {
                throw new IllegalArgumentException("ranges must hold start/end pairs, got " + ranges.length + " values");
            }
            ranges = ranges.clone();
        }

        @Override
        public long[] ranges() {
            return ranges.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Positions p && below == p.below && givenUp == p.givenUp && Arrays.equals(ranges, p.ranges);
        }

        @Override
        public int hashCode() {
            return Objects.hash(below, givenUp, Arrays.hashCode(ranges));
        }

        @Override
        public String toString() {
            return "Positions[below=" + below + ", givenUp=" + givenUp + ", ranges=" + Arrays.toString(ranges) + "]";
        }
    }

    /**
     * One detector's state for the request ({@code DetectorState}; docs/algorithms.md#aggregations for what each
     * aggregate means).
     *
     * @param detector       the detector id
     * @param fingerprint    of the definition the state was built under ({@link DetectorEngine#fingerprint})
     * @param positions      the positions counted
     * @param counted        tokens counted
     * @param fired          counted tokens that fired
     * @param max            largest token score ({@code -Infinity} before any)
     * @param sum            sum of token scores
     * @param ring           the window ring (token scores, or 1/0 fired flags for a windowed fraction); its length is
     *                       the definition's window (0 without one)
     * @param ringPos        the ring's next write index
     * @param ringFill       how many ring cells hold a value
     * @param windowFired    fired tokens in the ring (windowed fraction)
     * @param bestRate       largest windowed rate so far (windowed fraction)
     * @param latchedBand    band latched by a medium-tier steer, or -1
     * @param alertedLevel   severity of the last alert raised, or -1
     * @param lastTopFeature the named feature that fired most strongly in the latest chunk where one did, or -1
     * @param lastMeanNorm   mean activation norm of the latest chunk with counted tokens, or NaN
     */
    public record DetectorSnapshot(String detector, long fingerprint, Positions positions, long counted, long fired, double max,
            double sum, double[] ring, int ringPos, int ringFill, int windowFired, double bestRate, int latchedBand,
            int alertedLevel, int lastTopFeature, double lastMeanNorm) {

        public DetectorSnapshot {
            Objects.requireNonNull(detector, "detector");
            Objects.requireNonNull(positions, "positions");
            ring = ring.clone();
            if (ringPos < 0 || ringFill < 0 || ringFill > ring.length || (ring.length > 0 ? ringPos >= ring.length : ringPos != 0)) {
                throw new IllegalArgumentException("detector '" + detector + "': ring position " + ringPos + " / fill " + ringFill
                        + " do not fit a ring of " + ring.length);
            }
        }

        @Override
        public double[] ring() {
            return ring.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof DetectorSnapshot d && detector.equals(d.detector) && fingerprint == d.fingerprint
                    && positions.equals(d.positions) && counted == d.counted && fired == d.fired
                    && Double.compare(max, d.max) == 0 && Double.compare(sum, d.sum) == 0 && Arrays.equals(ring, d.ring)
                    && ringPos == d.ringPos && ringFill == d.ringFill && windowFired == d.windowFired
                    && Double.compare(bestRate, d.bestRate) == 0 && latchedBand == d.latchedBand && alertedLevel == d.alertedLevel
                    && lastTopFeature == d.lastTopFeature && Double.compare(lastMeanNorm, d.lastMeanNorm) == 0;
        }

        @Override
        public int hashCode() {
            return Objects.hash(detector, fingerprint, positions, counted, fired, max, sum, Arrays.hashCode(ring), ringPos, ringFill,
                    windowFired, bestRate, latchedBand, alertedLevel, lastTopFeature, lastMeanNorm);
        }

        @Override
        public String toString() {
            return "DetectorSnapshot[" + detector + ", fingerprint=" + Long.toHexString(fingerprint) + ", " + positions + ", counted="
                    + counted + ", fired=" + fired + ", max=" + max + ", sum=" + sum + ", ring=" + Arrays.toString(ring) + ", ringPos="
                    + ringPos + ", ringFill=" + ringFill + ", windowFired=" + windowFired + ", bestRate=" + bestRate + ", latchedBand="
                    + latchedBand + ", alertedLevel=" + alertedLevel + ", lastTopFeature=" + lastTopFeature + ", lastMeanNorm="
                    + lastMeanNorm + "]";
        }
    }
}
