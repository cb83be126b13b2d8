package io.saeguard.sidecar.pipeline;

import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import java.util.Objects;
import java.util.concurrent.Executor;

/**
 * The Vert.x context the engine thread hands a batch's outputs to: a worker verticle (Vert.x runs a worker
 * context's tasks one at a time, in submission order, on its worker pool, where blocking is allowed), so a
 * record's decision and alerts are built, encoded and given to the producer off the engine thread, in the order
 * the engine decided them. {@code KafkaProducer.send} can block (metadata, a full buffer), which is why this is a
 * worker context and never an event loop. Deploy it with {@code ThreadingModel.WORKER} before use.
 */
public final class Egress extends VerticleBase implements Executor {
    private volatile io.vertx.core.Context egress;

    @Override
    public Future<?> start() {
        egress = context;
        return Future.succeededFuture();
    }

    @Override
    public void execute(Runnable task) {
        Objects.requireNonNull(egress, "Egress is not deployed").runOnContext(v -> task.run());
    }
}
