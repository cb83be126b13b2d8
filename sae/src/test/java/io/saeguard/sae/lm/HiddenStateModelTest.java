package io.saeguard.sae.lm;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.saeguard.sae.engine.DeviceSpec;
import io.saeguard.sae.engine.DjlRuntime;
import io.saeguard.sae.engine.EngineOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The built-in MiniLM through DJL's tokenizer and OnnxRuntime engine: tokens, shapes, padding, truncation. */
class HiddenStateModelTest {
    private static HiddenStateModel model;

    @BeforeAll
    static void open() throws IOException {
        DjlRuntime.configure(new EngineOptions(DeviceSpec.CPU, EngineOptions.defaultCacheDir(), 2, 1, false));
        model = HiddenStateModel.open(HiddenStateModel.BUILTIN_MINILM, null, 16, EngineOptions.defaultCacheDir());
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void tokenizesWithTheBertUncasedVocabulary() {
        // [CLS] hello world [SEP] in bert-base-uncased's vocabulary, which MiniLM uses
        assertThat(model.tokenize("Hello world")).containsExactly(101, 7592, 2088, 102);
    }

    @Test
    void givesOneRowOfDModelFloatsPerToken() {
        HiddenStateModel.Result r = model.run(List.of("Hello world")).get(0);
        assertThat(model.dModel()).isEqualTo(384);
        assertThat(r.tokens()).isEqualTo(4);
        assertThat(r.rows()).hasSize(4 * 384);
        assertThat(r.ids()).containsExactly(101, 7592, 2088, 102);
        assertThat(r.charStart()[1]).isEqualTo(0);
        assertThat(r.charEnd()[2]).isEqualTo(11);
        assertThat(r.charStart()[0]).as("[CLS] has no text").isLessThanOrEqualTo(0);
        for (float v : r.rows()) {
            assertThat(Float.isFinite(v)).isTrue();
        }
    }

    @Test
    void paddingInABatchDoesNotChangeAText() {
        float[] alone = model.run(List.of("a short one")).get(0).rows();
        List<HiddenStateModel.Result> batch = model.run(List.of("a short one", "and a much longer text that pads the first"));
        float[] padded = batch.get(0).rows();
        assertThat(padded).hasSameSizeAs(alone);
        float maxDiff = 0;
        for (int i = 0; i < alone.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(alone[i] - padded[i]));
        }
        assertThat(maxDiff).as("attention mask must hide padding").isLessThan(1e-4f);
    }

    @Test
    void longTextsAreTruncatedKeepingTheClosingToken() {
        HiddenStateModel.Result r = model.run(List.of("one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
                + "fifteen sixteen seventeen eighteen")).get(0);
        assertThat(r.tokens()).isEqualTo(16);
        assertThat(r.droppedTokens()).isEqualTo(20 - 16);
        assertThat(r.ids()[0]).isEqualTo(101);
        assertThat(r.ids()[15]).isEqualTo(102);
    }

    @Test
    void anExcerptCoversTheTokensWithContext() {
        String text = "The quick brown fox jumps over the lazy dog";
        HiddenStateModel.Result r = model.run(List.of(text)).get(0);
        // tokens: [CLS] the quick brown fox jumps over the lazy dog [SEP]; "fox" is token 4
        assertThat(r.excerpt(text, 4, 5, 0, 100)).isEqualTo("…fox…");
        assertThat(r.excerpt(text, 4, 5, 6, 100)).isEqualTo("…brown fox jumps…");
        assertThat(r.excerpt(text, 0, 1, 10, 100)).isEmpty();
    }

    @Test
    void theExcerptMarksEachFiringTokenWhereItSitsInTheExcerpt() throws Exception {
        // Given tokens [CLS] the quick brown fox jumps over the lazy dog [SEP]; "fox" is 4, "lazy" 8
        String text = "The quick brown fox jumps over the lazy dog";
        HiddenStateModel.Result r = model.run(List.of(text)).get(0);

        // When tokens 4 and 8 fired
        HiddenStateModel.Excerpt e = r.excerpt(text, 4, 9, List.of(8L, 4L), 6, 100);

        // Then each mark covers exactly that token's text in the excerpt
        assertThat(e.text()).isEqualTo("…brown fox jumps over the lazy dog");
        assertThat(e.highlights()).hasSize(2);
        assertThat(e.text().substring(e.highlights().get(0).start(), e.highlights().get(0).end())).isEqualTo("fox");
        assertThat(e.text().substring(e.highlights().get(1).start(), e.highlights().get(1).end())).isEqualTo("lazy");
    }

    @Test
    void marksCountCharactersOutsideAsciiAsTheExcerptDoes() throws Exception {
        // Given a text whose firing word follows accented letters
        String text = "Un café très naïve fox";
        HiddenStateModel.Result r = model.run(List.of(text)).get(0);
        int fox = r.tokens() - 2; // the last word before [SEP]

        // When
        HiddenStateModel.Excerpt e = r.excerpt(text, fox, fox + 1, List.of((long) fox), 0, 100);

        // Then the mark covers the word "fox" in the excerpt
        assertThat(e.text()).isEqualTo("…fox");
        assertThat(e.text().substring(e.highlights().get(0).start(), e.highlights().get(0).end())).isEqualTo("fox");
    }

    @Test
    void aMissingModelFileIsAClearError() {
        assertThatThrownBy(() -> HiddenStateModel.open("/nonexistent/model.onnx", Path.of("/nonexistent/tokenizer.json"), 16,
                EngineOptions.defaultCacheDir())).isInstanceOf(IOException.class).hasMessageContaining("/nonexistent/model.onnx");
    }
}
