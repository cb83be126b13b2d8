package io.saeguard.detectors;

import io.saeguard.detectors.spi.Aggregation;
import io.saeguard.detectors.spi.Aggregation.Kind;

/**
 * One detector's state for one request: the positions counted, the running aggregates, the window ring, the tier
 * latch and what was alerted. Sized once (the ring) when the request first meets the detector.
 */
final class DetectorState {
    final int generation;
    /** The request positions already folded into the aggregates below, so that each counts once. */
    final CountedPositions positions = new CountedPositions();
    long counted;
    long fired;
    double max = Double.NEGATIVE_INFINITY;
    double sum;
    /** Window ring: token scores (aggregate window) or 1/0 fired flags (windowed fraction). */
    private final double[] ring;
    private int ringPos;
    private int ringFill;
    private int windowFired;
    /** Largest windowed rate seen so far (windowed fraction). */
    private double bestRate;
    /** Band index latched by a medium-tier steer, or -1. */
    int latchedBand = -1;
    /** Severity (action ordinal) of the last alert raised, or -1. */
    int alertedLevel = -1;
    /** The named feature that fired most strongly in the latest chunk where one did, or -1. */
    int lastTopFeature = -1;
    /** Mean activation norm of the latest chunk with counted tokens, or NaN. */
    double lastMeanNorm = Double.NaN;

    DetectorState(int generation, int window) {
        this.generation = generation;
        this.ring = new double[window];
    }

    /** The state a snapshot describes, for the detector version {@code generation} (the snapshot's ring fits it). */
    DetectorState(int generation, RequestSnapshot.DetectorSnapshot s) {
        this.generation = generation;
        this.ring = s.ring();
        positions.restore(s.positions());
        counted = s.counted();
        fired = s.fired();
        max = s.max();
        sum = s.sum();
        ringPos = s.ringPos();
        ringFill = s.ringFill();
        windowFired = s.windowFired();
        bestRate = s.bestRate();
        latchedBand = s.latchedBand();
        alertedLevel = s.alertedLevel();
        lastTopFeature = s.lastTopFeature();
        lastMeanNorm = s.lastMeanNorm();
    }

    /** This state as data, under the detector's id and definition fingerprint. */
    RequestSnapshot.DetectorSnapshot snapshot(String detector, long fingerprint) {
        return new RequestSnapshot.DetectorSnapshot(detector, fingerprint, positions.snapshot(), counted, fired, max, sum, ring, ringPos,
                ringFill, windowFired, bestRate, latchedBand, alertedLevel, lastTopFeature, lastMeanNorm);
    }

    /** The window ring's length (the definition's window, 0 without one). */
    int window() {
        return ring.length;
    }

    /** Adds one counted token. */
    void add(double score, boolean didFire, Kind kind) {
        counted++;
        if (score > max) {
            max = score;
        }
        sum += score;
        if (didFire) {
            fired++;
        }
        int w = ring.length;
        if (w == 0) {
            return;
        }
        if (kind == Kind.FRACTION) {
            if (ringFill == w) {
                windowFired -= (int) ring[ringPos];
            } else {
                ringFill++;
            }
            ring[ringPos] = didFire ? 1 : 0;
            windowFired += didFire ? 1 : 0;
            if (ringFill == w) {
                bestRate = Math.max(bestRate, windowFired / (double) w);
            }
        } else {
            ring[ringPos] = score;
            if (ringFill < w) {
                ringFill++;
            }
        }
        ringPos = ringPos + 1 == w ? 0 : ringPos + 1;
    }

    /**
     * The windowed rate after a chunk: the largest rate over full windows of W counted tokens so far. While fewer
     * than W tokens were counted, the prefix enters as if the window's missing tokens had not fired (fired / W), so a
     * chunk boundary early in a request cannot lift a benign prefix over τ (one fire in 15 tokens is not 1/15 but
     * 1/16 with W = 16); on the request's final chunk a request shorter than W enters with its plain fraction, the
     * only rate it has.
     *
     * @param isFinal whether this chunk is the request's last at this SAE
     */
    double windowedRate(boolean isFinal) {
        if (ringFill > 0 && ringFill < ring.length) {
            bestRate = Math.max(bestRate, windowFired / (double) (isFinal ? ringFill : ring.length));
        }
        return bestRate;
    }

    /** The largest token score among the last W counted tokens (0 before any). */
    double windowMax() {
        if (ringFill == 0) {
            return 0;
        }
        double m = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < ringFill; i++) {
            m = Math.max(m, ring[i]);
        }
        return m;
    }
}
