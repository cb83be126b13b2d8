package io.saeguard.sidecar.eval;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.StringReader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class LabelledTextReaderTest {
    private static final Path FILE = Path.of("data/labelled.jsonl");

    private static List<LabelledText> readAll(String jsonl, int firstIndex) {
        List<LabelledText> out = new ArrayList<>();
        try (LabelledTextReader r = LabelledTextReader.of(FILE, new StringReader(jsonl), firstIndex)) {
            for (Optional<LabelledText> t = r.next(); t.isPresent(); t = r.next()) {
                out.add(t.get());
            }
        }
        return out;
    }

    @Test
    void linesBecomeTextsWithTheirLineNumbersIndexesAndGroupsAndOtherFieldsAreIgnored() {
        // Given a blank line between two texts, one with a group and an extra field
        String jsonl = """
                {"text": "a hateful line", "label": true, "group": "asian", "source": "x"}

                {"text": "a neutral line", "label": false}
                """;

        // When
        List<LabelledText> texts = readAll(jsonl, 10);

        // Then
        assertThat(texts).containsExactly(new LabelledText(FILE, 1, 10, "a hateful line", true, Optional.of("asian")),
                new LabelledText(FILE, 3, 11, "a neutral line", false, Optional.empty()));
    }

    @Test
    void aLabelThatIsNotABooleanNamesTheFileAndLine() {
        String jsonl = "{\"text\": \"ok\", \"label\": true}\n{\"text\": \"ok\", \"label\": \"yes\"}\n";

        assertThatThrownBy(() -> readAll(jsonl, 0)).isInstanceOf(LabelledDataException.class)
                .hasMessageStartingWith("data/labelled.jsonl:2: 'label' must be true").hasMessageContaining("found \"yes\"");
    }

    @Test
    void aMissingOrEmptyTextNamesTheFileAndLine() {
        assertThatThrownBy(() -> readAll("{\"label\": true}\n", 0)).hasMessageStartingWith("data/labelled.jsonl:1: 'text' must be a non-empty "
                + "string and is missing");
        assertThatThrownBy(() -> readAll("\n{\"text\": \"\", \"label\": true}\n", 0)).hasMessageStartingWith("data/labelled.jsonl:2: 'text'");
    }

    @Test
    void aLineThatIsNotAJsonObjectNamesTheFileAndLineAndTheExpectedShape() {
        assertThatThrownBy(() -> readAll("{\"text\": \"a\", \"label\": true\n", 0)).hasMessageStartingWith("data/labelled.jsonl:1: not JSON")
                .hasMessageContaining("each line must be {\"text\": \"...\", \"label\": true|false}");
        assertThatThrownBy(() -> readAll("[1, 2]\n", 0)).hasMessageStartingWith("data/labelled.jsonl:1: not a JSON object");
    }

    @Test
    void aGroupThatIsNotAStringIsRefused() {
        assertThatThrownBy(() -> readAll("{\"text\": \"a\", \"label\": true, \"group\": 3}\n", 0))
                .hasMessageStartingWith("data/labelled.jsonl:1: 'group' must be a string when given, found 3");
    }
}
