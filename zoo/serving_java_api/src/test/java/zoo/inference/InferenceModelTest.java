package zoo.inference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Models exported by Zoo give PyTorch's outputs (within 1e-5) through the Java handle. */
class InferenceModelTest {

    static final double TOLERANCE = 1e-5;

    static Stream<Arguments> modelsAndFormats() {
        List<Arguments> list = new ArrayList<>();
        for (String model : new String[] {"mlp", "cnn", "two_input", "embed", "int_scale"}) {
            for (String format : new String[] {"onnx", "xml"}) {
                list.add(Arguments.of(model, format));
            }
        }
        return list.stream();
    }

    @ParameterizedTest(name = "{0}.{1}")
    @MethodSource("modelsAndFormats")
    void predictionsMatchPyTorch(String model, String format) throws IOException {
        try (InferenceModel m = new InferenceModel(2)) {
            m.load(Fixtures.model(model, format));
            for (Fixtures.Case c : Fixtures.of(model)) {
                List<JTensor> outputs = m.predict(c.inputs);
                assertEquals(c.expected.size(), outputs.size(), c.name + ": number of outputs");
                for (int j = 0; j < outputs.size(); j++) {
                    Fixtures.assertClose(c.expected.get(j), outputs.get(j), TOLERANCE, c.name + "." + format + " output " + j);
                }
            }
        }
    }

    @Test
    void singleTensorPredictMatchesAndBatchSizesChangeFreely() throws IOException {
        try (InferenceModel m = new InferenceModel()) {
            m.load(Fixtures.model("mlp", "xml"));
            for (int round = 0; round < 3; round++) {
                for (Fixtures.Case c : Fixtures.of("mlp")) {
                    Fixtures.assertClose(c.expected.get(0), m.predict(c.inputs.get(0)), TOLERANCE, c.name);
                }
            }
        }
    }

    @Test
    void inputsAndOutputsDescribeTheExportedSignature() {
        try (InferenceModel m = new InferenceModel()) {
            m.load(Fixtures.model("two_input", "onnx"));
            assertEquals(2, m.getInputs().size());
            assertEquals(2, m.getOutputs().size());
            assertEquals("f32", m.getInputs().get(0).getElementType());
            assertArrayEquals(new long[] {-1, 3}, m.getInputs().get(0).getShape(), "dynamic batch, 3 features");
            assertArrayEquals(new long[] {-1, 2}, m.getInputs().get(1).getShape());
        }
        try (InferenceModel m = new InferenceModel()) {
            m.load(Fixtures.model("embed", "xml"));
            assertEquals("i64", m.getInputs().get(0).getElementType());
        }
    }

    @Test
    void emptyBatchGivesEmptyOutput() {
        try (InferenceModel m = new InferenceModel()) {
            m.load(Fixtures.model("mlp", "onnx"));
            JTensor y = m.predict(new JTensor(new float[0], new int[] {0, 4}));
            assertArrayEquals(new int[] {0, 3}, y.getShape());
            assertEquals(0, y.getData().length);
        }
    }

    @Test
    void closeIsIdempotentAndLoadAgainNeedsANewHandle() {
        InferenceModel m = new InferenceModel();
        m.load(Fixtures.model("mlp", "onnx"));
        IllegalStateException twice = assertThrows(IllegalStateException.class, () -> m.load(Fixtures.model("mlp", "xml")));
        assertTrue(twice.getMessage().contains("create another InferenceModel"), twice.getMessage());
        m.close();
        m.close();
        assertTrue(m.isClosed());
    }

    @Test
    void concurrentNumMustBePositive() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new InferenceModel(0));
        assertTrue(e.getMessage().contains("concurrentNum=0"), e.getMessage());
    }
}
