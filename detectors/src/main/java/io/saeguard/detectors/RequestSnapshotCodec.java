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
import java.io.UncheckedIOException;
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

    public static byte[] encode(RequestSnapshot s) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(128);
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.write(MAGIC);
            out.writeByte(VERSION);
            out.writeUTF(s.requestId());
            out.writeLong(s.nextSeq());
            out.writeLong(s.lastSeenMillis());
            out.writeInt(s.saes().size());
            for (SaeProgress p : s.saes()) {
                out.writeUTF(p.sae());
                out.writeBoolean(p.finished());
            }
            out.writeInt(s.detectors().size());
            for (DetectorSnapshot d : s.detectors()) {
                out.writeUTF(d.detector());
                out.writeLong(d.fingerprint());
                Positions p = d.positions();
                long[] ranges = p.ranges();
                out.writeLong(p.below());
                out.writeLong(p.givenUp());
                out.writeInt(ranges.length / 2);
                for (long v : ranges) {
                    out.writeLong(v);
                }
                out.writeLong(d.counted());
                out.writeLong(d.fired());
                out.writeDouble(d.max());
                out.writeDouble(d.sum());
                double[] ring = d.ring();
                out.writeInt(ring.length);
                for (double v : ring) {
                    out.writeDouble(v);
                }
                out.writeInt(d.ringPos());
                out.writeInt(d.ringFill());
                out.writeInt(d.windowFired());
                out.writeDouble(d.bestRate());
                out.writeInt(d.latchedBand());
                out.writeInt(d.alertedLevel());
                out.writeInt(d.lastTopFeature());
                out.writeDouble(d.lastMeanNorm());
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a ByteArrayOutputStream does not throw
        }
        return bytes.toByteArray();
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
