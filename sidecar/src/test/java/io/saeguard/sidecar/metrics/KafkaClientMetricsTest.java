package io.saeguard.sidecar.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.producer.MockProducer;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.metrics.Gauge;
import org.apache.kafka.common.metrics.KafkaMetric;
import org.apache.kafka.common.metrics.MetricConfig;
import org.apache.kafka.common.metrics.Sensor;
import org.apache.kafka.common.metrics.stats.CumulativeSum;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Time;
import org.junit.jupiter.api.Test;

class KafkaClientMetricsTest {
    private static final String FETCH = "consumer-fetch-manager-metrics";

    private final org.apache.kafka.common.metrics.Metrics consumerMetrics = new org.apache.kafka.common.metrics.Metrics(new MetricConfig(),
            List.of(), Time.SYSTEM);
    private final MockProducer<String, byte[]> producer = new MockProducer<>(false, null, new StringSerializer(), new ByteArraySerializer());
    private final PrometheusRegistry registry = new PrometheusRegistry();

    private String scrape() throws IOException {
        registry.register(new KafkaClientMetrics(List.of(new KafkaClientMetrics.Client("consumer", consumerMetrics::metrics),
                new KafkaClientMetrics.Client("producer", producer::metrics))));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        new PrometheusTextFormatWriter(false).write(out, registry.scrape());
        return out.toString(StandardCharsets.UTF_8);
    }

    private <T> void gauge(String group, String name, T value, String... tags) {
        consumerMetrics.addMetric(consumerMetrics.metricName(name, group, "a test metric", tags), (Gauge<T>) (config, now) -> value);
    }

    @Test
    void theConsumersPerPartitionLagIsExportedUnderItsKafkaNameAndAsTheSaeguardLagSeries() throws IOException {
        // Given
        gauge(FETCH, "records-lag", 42.0, "client-id", "c1", "topic", "acts", "partition", "3");

        // When
        String text = scrape();

        // Then
        assertThat(text).contains("kafka_consumer_fetch_manager_records_lag{client_id=\"c1\",partition=\"3\",topic=\"acts\"} 42.0\n");
        assertThat(text).contains("saeguard_consumer_lag_records{partition=\"3\",topic=\"acts\"} 42.0\n");
        assertThat(text).contains("# HELP kafka_consumer_fetch_manager_records_lag a test metric\n");
        assertThat(text).contains("# TYPE saeguard_consumer_lag_records gauge\n");
    }

    @Test
    void aCumulativeTotalIsACounterAndTheClientLevelGroupLosesItsName() throws IOException {
        // Given
        Sensor consumed = consumerMetrics.sensor("consumed");
        consumed.add(consumerMetrics.metricName("records-consumed-total", FETCH, "records consumed", "client-id", "c1"), new CumulativeSum());
        consumed.record(5);
        consumed.record(2);
        gauge("consumer-metrics", "connection-count", 3, "client-id", "c1");
        gauge("consumer-coordinator-metrics", "assigned-partitions", 4.0, "client-id", "c1");

        // When
        String text = scrape();

        // Then
        assertThat(text).contains("# TYPE kafka_consumer_fetch_manager_records_consumed_total counter\n");
        assertThat(text).contains("kafka_consumer_fetch_manager_records_consumed_total{client_id=\"c1\"} 7.0\n");
        assertThat(text).contains("kafka_consumer_connection_number{client_id=\"c1\"} 3.0\n");
        assertThat(text).contains("kafka_consumer_coordinator_assigned_partitions{client_id=\"c1\"} 4.0\n");
    }

    @Test
    void aProducersMetricsAreExportedUnderTheProducerPrefix() throws IOException {
        // Given
        MetricName name = new MetricName("buffer-available-bytes", "producer-metrics", "free buffer", Map.of("client-id", "p1"));
        producer.setMockMetrics(name, new KafkaMetric(new Object(), name, (Gauge<Double>) (c, now) -> 1024.0, new MetricConfig(), Time.SYSTEM));
        MetricName topic = new MetricName("record-send-rate", "producer-topic-metrics", "sends per second",
                Map.of("client-id", "p1", "topic", "decisions"));
        producer.setMockMetrics(topic, new KafkaMetric(new Object(), topic, (Gauge<Double>) (c, now) -> 12.5, new MetricConfig(), Time.SYSTEM));

        // When
        String text = scrape();

        // Then
        assertThat(text).contains("kafka_producer_buffer_available_bytes{client_id=\"p1\"} 1024.0\n");
        assertThat(text).contains("kafka_producer_topic_record_send_rate{client_id=\"p1\",topic=\"decisions\"} 12.5\n");
    }

    @Test
    void valuesThatAreNoFiniteNumbersAndUnboundedTagsAreLeftOut() throws IOException {
        // Given
        gauge("app-info", "version", "4.1.1", "client-id", "c1");
        gauge(FETCH, "records-lag-max", Double.NaN, "client-id", "c1");
        gauge(FETCH, "fetch-latency-max", Double.NEGATIVE_INFINITY, "client-id", "c1");
        gauge(FETCH, "records-per-request", 2.0, "client-id", "c1", "request-id", "r-123");
        gauge("app-info", "start-time-ms", 1_700_000_000_000L, "client-id", "c1");

        // When
        String text = scrape();

        // Then only the numeric, finite, bounded one remains
        assertThat(text).doesNotContain("version").doesNotContain("records_lag_max").doesNotContain("fetch_latency_max")
                .doesNotContain("request_id").doesNotContain("records_per_request");
        assertThat(text).contains("kafka_consumer_app_info_start_time_seconds{client_id=\"c1\"} 1.7E9\n");
    }

    @Test
    void twoClientsOfOneKindShareANameWithTheirOwnClientIds() throws IOException {
        // Given the consumer registry holds two clients' metrics, as two producers would
        gauge("consumer-metrics", "connection-count", 1, "client-id", "a");
        gauge("consumer-metrics", "connection-count", 2, "client-id", "b");

        // When
        String text = scrape();

        // Then one family with a series per client
        assertThat(text).containsOnlyOnce("# TYPE kafka_consumer_connection_number gauge");
        assertThat(text).contains("kafka_consumer_connection_number{client_id=\"a\"} 1.0\n", "kafka_consumer_connection_number{client_id=\"b\"} 2.0\n");
    }

    @Test
    void aClientThatThrowsOrIsClosedExportsNothingAndBreaksNoScrape() throws IOException {
        // Given
        registry.register(new KafkaClientMetrics(List.of(new KafkaClientMetrics.Client("producer", () -> {
            throw new IllegalStateException("closed");
        }))));
        gauge("consumer-metrics", "connection-count", 1, "client-id", "a");

        // When
        String text = scrape();

        // Then
        assertThat(text).contains("kafka_consumer_connection_number{client_id=\"a\"} 1.0\n").doesNotContain("kafka_producer");
    }

    @Test
    void namesAreSanitizedToPrometheusNames() {
        assertThat(KafkaClientMetrics.prometheusName("consumer", "consumer-fetch-manager-metrics", "records-lag"))
                .isEqualTo("kafka_consumer_fetch_manager_records_lag");
        assertThat(KafkaClientMetrics.prometheusName("producer", "producer-node-metrics", "request-latency.avg"))
                .isEqualTo("kafka_producer_node_request_latency_avg");
        assertThat(KafkaClientMetrics.prometheusName("consumer", "consumer-metrics", "io-wait-time-ns"))
                .isEqualTo("kafka_consumer_io_wait_time_seconds");
        assertThat(KafkaClientMetrics.unitScale("io-wait-time-ns-total")).isEqualTo(1e-9);
        assertThat(KafkaClientMetrics.prometheusName("producer", "producer-metrics", "connection-count"))
                .isEqualTo("kafka_producer_connection_number");
    }
}
