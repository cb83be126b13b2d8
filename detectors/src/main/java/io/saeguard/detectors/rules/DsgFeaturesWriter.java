package io.saeguard.detectors.rules;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.SerializerProvider;
import com.fasterxml.jackson.databind.ser.std.StdSerializer;
import java.io.IOException;
import java.util.List;

/**
 * Writes {@code dsg} features as {@code saeguard select} writes them: a plain list of ids when no feature has a
 * threshold, label or explanation ({@code features: [101, 2057]}), else one mapping per feature.
 */
final class DsgFeaturesWriter extends StdSerializer<List<DsgConfig.Feature>> {
    private static final long serialVersionUID = 1L;

    @SuppressWarnings({"unchecked", "rawtypes"})
    DsgFeaturesWriter() {
        super((Class<List<DsgConfig.Feature>>) (Class) List.class);
    }

    @Override
    public void serialize(List<DsgConfig.Feature> features, JsonGenerator gen, SerializerProvider provider) throws IOException {
        boolean plain = features.stream().allMatch(DsgConfig.Feature::plain);
        gen.writeStartArray();
        for (DsgConfig.Feature f : features) {
            if (plain) {
                gen.writeNumber(f.id());
            } else {
                provider.defaultSerializeValue(f, gen);
            }
        }
        gen.writeEndArray();
    }
}
