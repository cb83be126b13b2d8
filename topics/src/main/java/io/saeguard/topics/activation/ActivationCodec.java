package io.saeguard.topics.activation;

import io.saeguard.topics.events.Phase;
import io.saeguard.topics.DecodeException;
import io.saeguard.topics.DecodeException.Reason;
import io.saeguard.topics.safetensors.DType;
import io.saeguard.topics.safetensors.SafetensorsFile;
import io.saeguard.topics.safetensors.SafetensorsWriter;
import io.saeguard.topics.safetensors.Tensor;
import java.nio.ByteBuffer;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * Reads and writes activation records: a safetensors container with tensor {@code activations}
 * {@code [n_tokens, d_in]} (F32/F16/BF16), optional {@code token_ids} {@code [n_tokens]} (I32/I64),
 * optional {@code special_mask} {@code [n_tokens]} (BOOL/U8/I32/I64; nonzero marks a special token such as BOS, PAD or
 * EOS, which never counts for a detector), and {@code __metadata__} keys {@code request_id} (required), {@code model}, {@code hook},
 * {@code position}, {@code phase}, {@code final}, {@code tenant}, {@code sae}, {@code reply_partition}
 * (docs/architecture.md#the-wire-contract).
 *
 * <p>Stateless and thread-safe.
 */
public final class ActivationCodec {
    public static final String ACTIVATIONS = "activations";
    public static final String TOKEN_IDS = "token_ids";
    public static final String SPECIAL_MASK = "special_mask";
    public static final String REQUEST_ID = "request_id";
    public static final String MODEL = "model";
    public static final String HOOK = "hook";
    public static final String POSITION = "position";
    public static final String PHASE = "phase";
    public static final String FINAL = "final";
    public static final String TENANT = "tenant";
    public static final String SAE = "sae";
    public static final String REPLY_PARTITION = "reply_partition";

    private ActivationCodec() {
    }

    /** Decodes a record value; the chunk's tensors are views of {@code value}. */
    public static ActivationChunk decode(byte[] value) throws DecodeException {
        return decode(ByteBuffer.wrap(value));
    }

    /** Decodes the remaining bytes of {@code value}. */
    public static ActivationChunk decode(ByteBuffer value) throws DecodeException {
        SafetensorsFile file = SafetensorsFile.parse(value);
        Map<String, String> md = file.metadata();
        Tensor act = file.tensor(ACTIVATIONS).orElseThrow(() -> new DecodeException(Reason.MISSING_TENSOR,
                "activation record: no tensor '" + ACTIVATIONS + "' (found: " + (file.names().isEmpty() ? "none" : String.join(", ", file.names()))
                        + "); expected " + ACTIVATIONS + " [n_tokens, d_in] in F32, F16 or BF16"));
        if (act.rank() != 2) {
            throw new DecodeException(Reason.INVALID_VALUE, "activation record: tensor '" + ACTIVATIONS
                    + "' must have rank 2 [n_tokens, d_in], found shape " + java.util.Arrays.toString(act.shape()));
        }
        if (act.dtype() != DType.F32 && act.dtype() != DType.F16 && act.dtype() != DType.BF16) {
            throw new DecodeException(Reason.INVALID_VALUE, "activation record: tensor '" + ACTIVATIONS
                    + "' must be F32, F16 or BF16, found " + act.dtype());
        }
        if (act.dim(0) == 0 || act.dim(1) == 0) {
            throw new DecodeException(Reason.INVALID_VALUE, "activation record: tensor '" + ACTIVATIONS
                    + "' is empty, shape " + java.util.Arrays.toString(act.shape()));
        }
        Optional<Tensor> tokenIds = perToken(file, TOKEN_IDS, act.dim(0), DType.I32, DType.I64);
        Optional<Tensor> specialMask = perToken(file, SPECIAL_MASK, act.dim(0), DType.BOOL, DType.U8, DType.I32, DType.I64);
        String requestId = md.get(REQUEST_ID);
        if (requestId == null || requestId.isEmpty()) {
            throw new DecodeException(Reason.MISSING_FIELD, "activation record: __metadata__ has no '" + REQUEST_ID
                    + "'" + (requestId == null ? "" : " (it is empty)") + "; every record must name its request");
        }
        long position = 0;
        String pos = md.get(POSITION);
        if (pos != null) {
            try {
                position = Long.parseLong(pos);
            } catch (NumberFormatException e) {
                position = -1;
            }
            if (position < 0) {
                throw new DecodeException(Reason.INVALID_VALUE, "activation record: __metadata__ '" + POSITION
                        + "' must be a non-negative integer, found '" + pos + "'");
            }
        }
        Phase phase = Phase.PROMPT;
        String ph = md.get(PHASE);
        if (ph != null) {
            phase = Phase.fromWireName(ph).orElseThrow(() -> new DecodeException(Reason.INVALID_VALUE,
                    "activation record: __metadata__ '" + PHASE + "' must be prompt or generation, found '" + ph + "'"));
        }
        boolean isFinal = false;
        String fin = md.get(FINAL);
        if (fin != null) {
            if (!fin.equals("true") && !fin.equals("false")) {
                throw new DecodeException(Reason.INVALID_VALUE, "activation record: __metadata__ '" + FINAL
                        + "' must be true or false, found '" + fin + "'");
            }
            isFinal = fin.equals("true");
        }
        OptionalInt replyPartition = OptionalInt.empty();
        String reply = md.get(REPLY_PARTITION);
        if (reply != null) {
            int partition;
            try {
                partition = Integer.parseInt(reply);
            } catch (NumberFormatException e) {
                partition = -1;
            }
            if (partition < 0) {
                throw new DecodeException(Reason.INVALID_VALUE, "activation record: __metadata__ '" + REPLY_PARTITION
                        + "' must be a partition number of the decisions topic (an integer from 0 to " + Integer.MAX_VALUE
                        + "), found '" + reply + "'; leave it out to have decisions keyed by request id");
            }
            replyPartition = OptionalInt.of(partition);
        }
        return new ActivationChunk(requestId, nonEmpty(md.get(MODEL)), nonEmpty(md.get(HOOK)), position, phase, isFinal,
                nonEmpty(md.get(TENANT)), nonEmpty(md.get(SAE)), replyPartition, act, tokenIds, specialMask);
    }

    /** An optional tensor with one entry per token, of one of {@code dtypes}. */
    private static Optional<Tensor> perToken(SafetensorsFile file, String name, long tokens, DType... dtypes) throws DecodeException {
        Optional<Tensor> tensor = file.tensor(name);
        if (tensor.isPresent()) {
            Tensor t = tensor.get();
            if (t.rank() != 1 || t.dim(0) != tokens || !java.util.Arrays.asList(dtypes).contains(t.dtype())) {
                throw new DecodeException(Reason.INVALID_VALUE, "activation record: tensor '" + name + "' must be "
                        + java.util.Arrays.stream(dtypes).map(DType::name).collect(java.util.stream.Collectors.joining(" or "))
                        + " of shape [" + tokens + "], found " + t.dtype() + " " + java.util.Arrays.toString(t.shape()));
            }
        }
        return tensor;
    }

    private static Optional<String> nonEmpty(String s) {
        return s == null || s.isEmpty() ? Optional.empty() : Optional.of(s);
    }

    /** Starts an activation record for {@code requestId}; set fields, then {@link Builder#encode}. */
    public static Builder builder(String requestId) {
        return new Builder(requestId);
    }

    /** Writes activation records, as an LLM-side producer (or a test, or the load generator) would. */
    public static final class Builder {
        private final SafetensorsWriter writer = new SafetensorsWriter();

        private Builder(String requestId) {
            if (requestId == null || requestId.isEmpty()) {
                throw new IllegalArgumentException("request id must be non-empty");
            }
            writer.metadata(REQUEST_ID, requestId);
        }

        public Builder model(String model) {
            writer.metadata(MODEL, model);
            return this;
        }

        public Builder hook(String hook) {
            writer.metadata(HOOK, hook);
            return this;
        }

        public Builder position(long position) {
            writer.metadata(POSITION, Long.toString(position));
            return this;
        }

        public Builder phase(Phase phase) {
            writer.metadata(PHASE, phase.wireName());
            return this;
        }

        public Builder isFinal(boolean isFinal) {
            writer.metadata(FINAL, Boolean.toString(isFinal));
            return this;
        }

        public Builder tenant(String tenant) {
            writer.metadata(TENANT, tenant);
            return this;
        }

        public Builder sae(String sae) {
            writer.metadata(SAE, sae);
            return this;
        }

        /** Asks for the request's decisions on this partition of the decisions topic. */
        public Builder replyPartition(int partition) {
            if (partition < 0) {
                throw new IllegalArgumentException("reply partition must be >= 0, got " + partition);
            }
            writer.metadata(REPLY_PARTITION, Integer.toString(partition));
            return this;
        }

        /** Sets {@code activations} {@code [tokens, dIn]} from row-major values in the given dtype (F32, F16 or BF16). */
        public Builder activations(DType dtype, int tokens, int dIn, float[] rowMajor) {
            if (rowMajor.length != tokens * dIn) {
                throw new IllegalArgumentException("activations: " + tokens + " x " + dIn + " needs "
                        + (tokens * dIn) + " values, got " + rowMajor.length);
            }
            long[] shape = {tokens, dIn};
            switch (dtype) {
                case F32 -> writer.addF32(ACTIVATIONS, shape, rowMajor);
                case F16 -> writer.addF16(ACTIVATIONS, shape, rowMajor);
                case BF16 -> writer.addBF16(ACTIVATIONS, shape, rowMajor);
                default -> throw notAnActivationDtype(dtype);
            }
            return this;
        }

        /**
         * Sets {@code activations} {@code [tokens, dIn]} from row-major little-endian bytes already in {@code dtype} (F32,
         * F16 or BF16), as a server that holds the tensor in its own dtype has them: no conversion, and the bytes are
         * copied once, when the record is encoded. {@code littleEndian}'s remaining bytes must be exactly the tensor's.
         */
        public Builder activations(DType dtype, int tokens, int dIn, ByteBuffer littleEndian) {
            if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) {
                throw notAnActivationDtype(dtype);
            }
            if (tokens < 1 || dIn < 1) {
                throw new IllegalArgumentException("activations: tokens and d_in must be >= 1, got " + tokens + " x " + dIn);
            }
            writer.add(ACTIVATIONS, dtype, new long[] {tokens, dIn}, littleEndian);
            return this;
        }

        private static IllegalArgumentException notAnActivationDtype(DType dtype) {
            return new IllegalArgumentException("activations must be F32, F16 or BF16, not " + dtype);
        }

        public Builder tokenIds(int[] ids) {
            writer.addI32(TOKEN_IDS, new long[] {ids.length}, ids);
            return this;
        }

        /** Marks special tokens (BOS, PAD, EOS...): written as {@code special_mask} I32, 1 where {@code special[t]}. */
        public Builder specialMask(boolean[] special) {
            int[] mask = new int[special.length];
            for (int t = 0; t < special.length; t++) {
                mask[t] = special[t] ? 1 : 0;
            }
            writer.addI32(SPECIAL_MASK, new long[] {mask.length}, mask);
            return this;
        }

        public byte[] encode() {
            return writer.toBytes();
        }
    }
}
