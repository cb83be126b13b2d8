package io.saeguard.sae.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** libtorch's intra-op threads set for one thread only: that thread uses its own count, every other thread keeps its own. */
class IntraOpThreadsIT {
    @Test
    void oneThreadsCountLeavesTheOthersAndTheCountNewThreadsStartFrom() throws Exception {
        // Given the engine configured with 2 intra-op threads (the process-wide count)
        DjlRuntime.configure(new EngineOptions(DeviceSpec.CPU, EngineOptions.defaultCacheDir(), 2, 1, false));
        ExecutorService background = Executors.newSingleThreadExecutor();
        ExecutorService other = Executors.newSingleThreadExecutor();
        try {
            int processWide = other.submit(SaeEngine::intraOpThreadsHere).get(30, TimeUnit.SECONDS);
            assertThat(processWide).isEqualTo(2);

            // When a background thread limits itself to one
            int before = background.submit(() -> SaeEngine.intraOpThreadsOfThisThread(1)).get(30, TimeUnit.SECONDS);

            // Then it uses one, a thread that had run libtorch before keeps its two, and a new thread still starts with two
            assertThat(before).isEqualTo(2);
            assertThat(background.submit(SaeEngine::intraOpThreadsHere).get(30, TimeUnit.SECONDS)).isEqualTo(1);
            assertThat(other.submit(SaeEngine::intraOpThreadsHere).get(30, TimeUnit.SECONDS)).isEqualTo(2);
            int[] fresh = new int[1];
            Thread t = new Thread(() -> fresh[0] = SaeEngine.intraOpThreadsHere());
            t.start();
            t.join(30_000);
            assertThat(fresh[0]).isEqualTo(2);
            assertThatThrownBy(() -> SaeEngine.intraOpThreadsOfThisThread(0)).isInstanceOf(IllegalArgumentException.class);
        } finally {
            background.shutdownNow();
            other.shutdownNow();
        }
    }
}
