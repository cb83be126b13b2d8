package io.saeguard.detectors;

import io.saeguard.detectors.RequestSnapshot.DetectorSnapshot;
import io.saeguard.detectors.RequestSnapshot.Positions;
import io.saeguard.detectors.RequestSnapshot.SaeProgress;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.UTFDataFormatException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The bytes of a {@link RequestSnapshot} in the {@code saeguard.state} topic: a compact, versioned binary form
 * (big-endian, {@link DataOutputStream}'s encodings; strings as modified UTF-8 with a 2-byte length).
 *
 * <pre>
 * magic 'S' 'G' 'S', version 1 (byte)
 * requestId (utf), nextSeq (long), lastSeenMillis (long)
 * saeCount (int), then per SAE: sae (utf), finished (boolean)
 * detectorCount (int), then per detector:
 *   detector (utf), fingerprint (long),
 *   below (long), givenUp (long), rangeCount (int), rangeCount x (start long, end long),
 *   counted (long), fired (long), max (double), sum (double),
 *   ringLength (int), ringLength x double, ringPos (int), ringFill (int), windowFired (int), bestRate (double),
 *   latchedBand (int), alertedLevel (int), lastTopFeature (int), lastMeanNorm (double)
 * </pre>
 *
 * A request with one in-order detector and no window is about 110 bytes plus its ids. A new version gets a new
 * version byte; {@link #decode} refuses versions it does not know (the reader then starts that request afresh).
 * Thread-safe (stateless).
 */
public final class RequestSnapshotCodec {
    /** The format version written by {@link #encode}. */
    public static final int VERSION = 1;
    private static final byte[] MAGIC = {'S', 'G', 'S'};
    /** Far above any real count; guards the allocations of a corrupted record. */
    private static final int MAX_COUNT = 1 << 20;

    private RequestSnapshotCodec() {}

    /** Thrown by {@link #decode} for bytes that are not a snapshot of a known version. */
    public static final class SnapshotFormatException extends Exception {
        private static final long serialVersionUID = 1L;

        SnapshotFormatException(String message) {
            super(message);
        }
    }

    /**
     * Writes a snapshot: one array of the exact size, filled by a big-endian {@link ByteBuffer}; the bytes are those
     * {@link DataOutputStream} writes for the layout above. The engine thread writes one per decided record (the
     * request's {@code nextSeq} moves with each), and going through {@link DataOutputStream} over a growing
     * {@link ByteArrayOutputStream} cost a stream write per field.
     *
     * @throws UncheckedIOException (of a {@link UTFDataFormatException}) for an id whose modified UTF-8 form is over
     *     65,535 bytes, as {@link DataOutputStream#writeUTF} refuses it
     */
    public static byte[] encode(RequestSnapshot s) {
        List<SaeProgress> saes = s.saes();
        List<DetectorSnapshot> detectors = s.detectors();
        int size = MAGIC.length + 1 + utfSize(s.requestId()) + 8 + 8 + 4 + 4;
        for (SaeProgress p : saes) {
            size += utfSize(p.sae()) + 1;
        }
        long[][] ranges = new long[detectors.size()][];
        double[][] rings = new double[detectors.size()][];
        for (int i = 0; i < detectors.size(); i++) {
            DetectorSnapshot d = detectors.get(i);
            ranges[i] = d.positions().ranges();
            rings[i] = d.ring();
            size += utfSize(d.detector()) + DETECTOR_FIXED_BYTES + 8 * ranges[i].length + 8 * rings[i].length;
        }
        ByteBuffer out = ByteBuffer.allocate(size); // big-endian, as DataOutputStream
        out.put(MAGIC).put((byte) VERSION);
        putUtf(out, s.requestId());
        out.putLong(s.nextSeq()).putLong(s.lastSeenMillis()).putInt(saes.size());
        for (SaeProgress p : saes) {
            putUtf(out, p.sae());
            out.put((byte) (p.finished() ? 1 : 0));
        }
        out.putInt(detectors.size());
        for (int i = 0; i < detectors.size(); i++) {
            DetectorSnapshot d = detectors.get(i);
            putUtf(out, d.detector());
            Positions p = d.positions();
            out.putLong(d.fingerprint()).putLong(p.below()).putLong(p.givenUp()).putInt(ranges[i].length / 2);
            for (long v : ranges[i]) {
                out.putLong(v);
            }
            out.putLong(d.counted()).putLong(d.fired()).putDouble(d.max()).putDouble(d.sum()).putInt(rings[i].length);
            for (double v : rings[i]) {
                out.putDouble(v);
            }
            out.putInt(d.ringPos()).putInt(d.ringFill()).putInt(d.windowFired()).putDouble(d.bestRate()).putInt(d.latchedBand())
                    .putInt(d.alertedLevel()).putInt(d.lastTopFeature()).putDouble(d.lastMeanNorm());
        }
        if (out.hasRemaining()) {
            throw new IllegalStateException("request snapshot: sized " + size + " bytes, wrote " + out.position());
        }
        return out.array();
    }

    /**
     * A detector's bytes besides its id, ranges and ring: fingerprint, below, givenUp (8 each), range count (4), counted,
     * fired, max, sum (8 each), ring length (4), ringPos, ringFill, windowFired (4 each), bestRate (8), latchedBand,
     * alertedLevel, lastTopFeature (4 each), lastMeanNorm (8).
     */
    private static final int DETECTOR_FIXED_BYTES = 8 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 4 + 4 + 4 + 8 + 4 + 4 + 4 + 8;

    /** The bytes {@link DataOutputStream#writeUTF} writes for {@code s}: a 2-byte length and modified UTF-8. */
    private static int utfSize(String s) {
        int n = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            n += c >= 0x0001 && c <= 0x007F ? 1 : c <= 0x07FF ? 2 : 3;
        }
        if (n > 65535) {
            throw new UncheckedIOException(new UTFDataFormatException("encoded string too long: " + n + " bytes"));
        }
        return 2 + n;
    }

    /**
     * Modified UTF-8 as {@link DataOutputStream#writeUTF}: U+0000 in two bytes, each UTF-16 unit on its own. The length
     * (already checked by {@link #utfSize} when the array was sized) is written after the characters, in the two bytes
     * kept for it, so the string is scanned once here.
     */
    private static void putUtf(ByteBuffer out, String s) {
        int lengthAt = out.position();
        out.putShort((short) 0);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c >= 0x0001 && c <= 0x007F) {
                out.put((byte) c);
            } else if (c <= 0x07FF) {
                out.put((byte) (0xC0 | (c >> 6))).put((byte) (0x80 | (c & 0x3F)));
            } else {
                out.put((byte) (0xE0 | (c >> 12))).put((byte) (0x80 | ((c >> 6) & 0x3F))).put((byte) (0x80 | (c & 0x3F)));
            }
        }
        out.putShort(lengthAt, (short) (out.position() - lengthAt - 2));
    }

    /**
     * Reads a snapshot.
     *
     * @throws SnapshotFormatException for bytes that are not one: wrong magic, an unknown version, truncated, trailing
     *     bytes, or values that cannot be (negative counts, a ring position outside the ring); the message says which,
     *     never the content
     */
    public static RequestSnapshot decode(byte[] value) throws SnapshotFormatException {
        if (value.length < MAGIC.length + 1 || value[0] != MAGIC[0] || value[1] != MAGIC[1] || value[2] != MAGIC[2]) {
            throw new SnapshotFormatException("not a request snapshot (no 'SGS' magic)");
        }
        int version = value[3];
        if (version != VERSION) {
            throw new SnapshotFormatException("request snapshot version " + version + " is not known (this build reads " + VERSION + ")");
        }
        try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(value, 4, value.length - 4))) {
            String requestId = in.readUTF();
            long nextSeq = in.readLong();
            long lastSeen = in.readLong();
            int saeCount = count(in.readInt(), "SAE count");
            List<SaeProgress> saes = new ArrayList<>(saeCount);
            for (int i = 0; i < saeCount; i++) {
                saes.add(new SaeProgress(in.readUTF(), in.readBoolean()));
            }
            int detectorCount = count(in.readInt(), "detector count");
            List<DetectorSnapshot> detectors = new ArrayList<>(detectorCount);
            for (int i = 0; i < detectorCount; i++) {
                String id = in.readUTF();
                long fingerprint = in.readLong();
                long below = in.readLong();
                long givenUp = in.readLong();
                long[] ranges = new long[2 * count(in.readInt(), "range count")];
                for (int r = 0; r < ranges.length; r++) {
                    ranges[r] = in.readLong();
                }
                long counted = in.readLong();
                long fired = in.readLong();
                double max = in.readDouble();
                double sum = in.readDouble();
                double[] ring = new double[count(in.readInt(), "ring length")];
                for (int r = 0; r < ring.length; r++) {
                    ring[r] = in.readDouble();
                }
                detectors.add(new DetectorSnapshot(id, fingerprint, new Positions(below, givenUp, ranges), counted, fired, max, sum, ring,
                        in.readInt(), in.readInt(), in.readInt(), in.readDouble(), in.readInt(), in.readInt(), in.readInt(), in.readDouble()));
            }
            if (in.available() > 0) {
                throw new SnapshotFormatException("request snapshot has " + in.available() + " trailing bytes");
            }
            return new RequestSnapshot(requestId, nextSeq, lastSeen, saes, detectors);
        } catch (EOFException e) {
            throw new SnapshotFormatException("request snapshot is truncated");
        } catch (IllegalArgumentException e) {
            throw new SnapshotFormatException("request snapshot holds impossible values: " + e.getMessage());
        } catch (IOException e) {
            throw new SnapshotFormatException("request snapshot cannot be read: " + e);
        }
    }

    private static int count(int n, String what) throws SnapshotFormatException {
        if (n < 0 || n > MAX_COUNT) {
            throw new SnapshotFormatException("request snapshot has " + what + " " + n);
        }
        return n;
    }
}
