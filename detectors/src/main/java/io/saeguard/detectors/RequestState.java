package io.saeguard.detectors;

/**
 * What the engine remembers about one request: its decision counter, when it was last seen, which
 * SAEs sent chunks (and which sent their final one), and each detector's {@link DetectorState} by slot.
 */
final class RequestState {
    final String requestId;
    long nextSeq;
    long lastSeenMillis;
    private DetectorState[] detectors = new DetectorState[4];
    private String[] saes = new String[1];
    private boolean[] finished = new boolean[1];
    private int saeCount;

    RequestState(String requestId) {
        this.requestId = requestId;
    }

    /** The detector's state, created (or reset, after the detector was replaced) as needed. */
    DetectorState detector(int slot, int generation, int window) {
        if (slot >= detectors.length) {
            DetectorState[] grown = new DetectorState[Math.max(slot + 1, detectors.length * 2)];
            System.arraycopy(detectors, 0, grown, 0, detectors.length);
            detectors = grown;
        }
        DetectorState s = detectors[slot];
        if (s == null || s.generation != generation) {
            s = new DetectorState(generation, window);
            detectors[slot] = s;
        }
        return s;
    }

    /** The detector's state if it has one under this version of the detector, else null. */
    DetectorState existing(int slot, int generation) {
        DetectorState s = slot < detectors.length ? detectors[slot] : null;
        return s != null && s.generation == generation ? s : null;
    }

    /** Puts a detector's state (restored from a snapshot) in its slot. */
    void put(int slot, DetectorState state) {
        if (slot >= detectors.length) {
            detectors = java.util.Arrays.copyOf(detectors, Math.max(slot + 1, detectors.length * 2));
        }
        detectors[slot] = state;
    }

    /** The SAEs that sent chunks, in first-seen order, and whether each sent its final one. */
    java.util.List<RequestSnapshot.SaeProgress> saeProgress() {
        java.util.List<RequestSnapshot.SaeProgress> out = new java.util.ArrayList<>(saeCount);
        for (int i = 0; i < saeCount; i++) {
            out.add(new RequestSnapshot.SaeProgress(saes[i], finished[i]));
        }
        return out;
    }

    /** Records a chunk of {@code sae}; true when every SAE that sent chunks has sent its final one. */
    boolean recordChunk(String sae, boolean isFinal) {
        int i = 0;
        while (i < saeCount && !saes[i].equals(sae)) {
            i++;
        }
        if (i == saeCount) {
            if (saeCount == saes.length) {
                saes = java.util.Arrays.copyOf(saes, saeCount * 2);
                finished = java.util.Arrays.copyOf(finished, saeCount * 2);
            }
            saes[saeCount] = sae;
            saeCount++;
        }
        if (isFinal) {
            finished[i] = true;
        }
        for (int j = 0; j < saeCount; j++) {
            if (!finished[j]) {
                return false;
            }
        }
        return true;
    }
}
