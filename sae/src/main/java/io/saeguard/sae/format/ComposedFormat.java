package io.saeguard.sae.format;

import io.saeguard.sae.Architecture;
import io.saeguard.sae.ComposedSae;
import io.saeguard.sae.Normalization;
import io.saeguard.sae.SaeConfig;
import io.saeguard.sae.SaeFormat;
import io.saeguard.sae.SaeFormatException;
import io.saeguard.sae.SingleSae;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.OptionalInt;

/**
 * saeguard's composition file {@code saeguard-composed.json}:
 * {@code {"base": "DIR", "residual": "DIR", "residual_input": "error"|"input"}} with paths relative
 * to the file. Both parts are single SAEs of any supported format.
 */
final class ComposedFormat {
    static final String FILE = "saeguard-composed.json";

    private ComposedFormat() {
    }

    static ComposedSae load(Path dir) throws SaeFormatException {
        JsonConfig cfg = JsonConfig.read(dir.resolve(FILE));
        String basePath = cfg.optionalString("base").orElseThrow(() -> SaeFormatException.in(cfg.file(), "missing 'base'"));
        String resPath = cfg.optionalString("residual").orElseThrow(() -> SaeFormatException.in(cfg.file(), "missing 'residual'"));
        String input = cfg.optionalString("residual_input").orElse("error").toLowerCase(Locale.ROOT);
        ComposedSae.ResidualInput ri = switch (input) {
            case "error" -> ComposedSae.ResidualInput.ERROR;
            case "input" -> ComposedSae.ResidualInput.INPUT;
            default -> throw SaeFormatException.in(cfg.file(), "residual_input must be 'error' or 'input', found '" + input + "'");
        };
        SingleSae base = SaeLoader.loadSingle(dir.resolve(basePath));
        SingleSae residual = SaeLoader.loadSingle(dir.resolve(resPath));
        OptionalInt k = base.config().k().isPresent() && residual.config().k().isPresent()
                ? OptionalInt.of(base.config().k().getAsInt() + residual.config().k().getAsInt()) : OptionalInt.empty();
        List<Path> files = new ArrayList<>();
        files.add(cfg.file());
        files.addAll(base.config().files());
        files.addAll(residual.config().files());
        SaeConfig config = new SaeConfig(dir, SaeFormat.COMPOSED, Architecture.COMPOSED, base.config().dIn(),
                base.config().dSae() + residual.config().dSae(), k, false, Normalization.NONE, 1, 1, false,
                base.config().storedDtype(), base.config().hook(), base.config().model(), files);
        return new ComposedSae(config, base, residual, ri);
    }
}
