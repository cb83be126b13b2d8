package io.saeguard.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

/**
 * Deletes a finished workload's topics ({@code PREFIX.*}) from the benchmark's broker, so that their logs stop
 * holding the machine's memory: a full run writes more log than the VM has RAM (25 GB at 2026-12-07 13:12), and once
 * the page cache is full every allocation on the machine can wait for the kernel to reclaim and compact memory.
 *
 * <pre>java -cp bench/target/benchmarks.jar io.saeguard.bench.DeleteTopics --bootstrap HOST:PORT --prefix PREFIX [--prefix ...]</pre>
 */
public final class DeleteTopics {
    private DeleteTopics() {
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = null;
        List<String> prefixes = new ArrayList<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--bootstrap" -> bootstrap = args[i + 1];
                case "--prefix" -> prefixes.add(args[i + 1] + ".");
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (bootstrap == null || prefixes.isEmpty() || args.length % 2 != 0) {
            throw new IllegalArgumentException("usage: DeleteTopics --bootstrap HOST:PORT --prefix PREFIX [--prefix PREFIX ...]");
        }
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            Set<String> doomed = new TreeSet<>();
            for (String name : admin.listTopics().names().get(30, TimeUnit.SECONDS)) {
                if (prefixes.stream().anyMatch(name::startsWith)) {
                    doomed.add(name);
                }
            }
            if (!doomed.isEmpty()) {
                admin.deleteTopics(doomed).all().get(60, TimeUnit.SECONDS);
            }
            System.out.println("deleted " + doomed.size() + " topics: " + String.join(", ", doomed));
        }
    }
}
