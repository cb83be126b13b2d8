package io.saeguard.sae.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class DeviceSpecTest {
    @Test
    void parsesEveryDocumentedForm() {
        assertThat(DeviceSpec.parse("auto")).isEqualTo(DeviceSpec.AUTO);
        assertThat(DeviceSpec.parse("CPU")).isEqualTo(DeviceSpec.CPU);
        assertThat(DeviceSpec.parse("gpu")).isEqualTo(new DeviceSpec(DeviceSpec.Kind.GPU, 0));
        assertThat(DeviceSpec.parse("gpu:3")).isEqualTo(new DeviceSpec(DeviceSpec.Kind.GPU, 3));
        assertThat(DeviceSpec.parse("cuda:1").toString()).isEqualTo("gpu:1");
    }

    @Test
    void rejectsAnythingElseNamingTheForms() {
        assertThatThrownBy(() -> DeviceSpec.parse("tpu")).hasMessageContaining("auto, cpu, gpu or gpu:N").hasMessageContaining("'tpu'");
        assertThatThrownBy(() -> DeviceSpec.parse("gpu:x")).hasMessageContaining("'gpu:x'");
    }
}
