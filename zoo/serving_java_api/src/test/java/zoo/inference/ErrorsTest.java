package zoo.inference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad input becomes a Java exception that says what OpenVINO said; the JVM never crashes. */
class ErrorsTest {

    private static void assertOpenVinoError(InferenceException e, String... fragments) {
        assertTrue(e.getStatus() < 0, "OpenVINO status should be an error code: " + e.getStatus());
        assertFalse(e.getStatusName().startsWith("STATUS_"), e.getStatusName());
        assertFalse(e.getNativeMessage().isEmpty(), "OpenVINO's message should be carried");
        assertTrue(e.getMessage().contains(e.getNativeMessage().strip()), e.getMessage());
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), "message should mention '" + f + "': " + e.getMessage());
        }
    }

    @Test
    void missingModelFileCarriesOpenVinoStatusAndMessage() {
        try (InferenceModel m = new InferenceModel()) {
            InferenceException e = assertThrows(InferenceException.class, () -> m.load("/no/such/model.onnx"));
            assertOpenVinoError(e, "/no/such/model.onnx", "GENERAL_ERROR");
            assertThrows(IllegalStateException.class, () -> m.predict(new JTensor(new float[4], new int[] {1, 4})),
                    "a failed load leaves no model behind");
        }
    }

    @Test
    void irWithoutItsBinAndGarbageFilesAreRejected(@TempDir Path tmp) throws IOException {
        Path xml = tmp.resolve("mlp.xml");
        Files.copy(Path.of(Fixtures.model("mlp", "xml")), xml);
        Path garbage = tmp.resolve("garbage.onnx");
        Files.writeString(garbage, "this is not a model");
        try (InferenceModel m = new InferenceModel()) {
            assertOpenVinoError(assertThrows(InferenceException.class, () -> m.load(xml.toString())), "mlp.xml");
            assertOpenVinoError(assertThrows(InferenceException.class, () -> m.load(garbage.toString())), "garbage.onnx");
        }
    }

    @Test
    void unknownCompilePropertyIsRejectedByOpenVino() {
        try (InferenceModel m = new InferenceModel()) {
            InferenceException e = assertThrows(InferenceException.class,
                    () -> m.load(Fixtures.model("mlp", "xml"), java.util.Map.of("NOT_A_PROPERTY", "1")));
            assertOpenVinoError(e, "NOT_A_PROPERTY");
            m.load(Fixtures.model("mlp", "xml"));
            assertEquals(3, m.predict(new JTensor(new float[4], new int[] {1, 4})).getData().length);
        }
    }

    @Test
    void wrongFeatureDimensionIsAShapeMismatch() {
        try (InferenceModel m = new InferenceModel()) {
            m.load(Fixtures.model("mlp", "onnx"));
            InferenceException e = assertThrows(InferenceException.class,
                    () -> m.predict(new JTensor(new float[10], new int[] {2, 5})));
            assertOpenVinoError(e, "[2, 5]", "[?,4]");
            InferenceException rank = assertThrows(InferenceException.class,
                    () -> m.predict(new JTensor(new float[4], new int[] {4})));
            assertOpenVinoError(rank, "[4]");
            // the handle still works after rejected inputs
            JTensor y = m.predict(new JTensor(new float[8], new int[] {2, 4}));
            assertEquals(6, y.getData().length);
        }
    }

    @Test
    void wrongElementTypeIsATypeMismatch() {
        try (InferenceModel m = new InferenceModel()) {
            m.load(Fixtures.model("mlp", "xml"));
            assertOpenVinoError(assertThrows(InferenceException.class,
                    () -> m.predict(new JTensor(new long[8], new int[] {2, 4}))), "INT64", "f32");
        }
        try (InferenceModel m = new InferenceModel()) {
            m.load(Fixtures.model("embed", "onnx"));
            assertOpenVinoError(assertThrows(InferenceException.class,
                    () -> m.predict(new JTensor(new float[6], new int[] {2, 3}))), "FLOAT32", "i64");
        }
    }

    @Test
    void inputsThatDisagreeWithEachOtherFailAtInference() {
        try (InferenceModel m = new InferenceModel()) {
            m.load(Fixtures.model("two_input", "onnx"));
            InferenceException e = assertThrows(InferenceException.class, () -> m.predict(List.of(
                    new JTensor(new float[6], new int[] {2, 3}), new JTensor(new float[6], new int[] {3, 2}))));
            assertOpenVinoError(e, "FLOAT32[2, 3], FLOAT32[3, 2]", "the same batch size");
            List<JTensor> ok = m.predict(List.of(new JTensor(new float[3], new int[] {1, 3}), new JTensor(new float[2], new int[] {1, 2})));
            assertEquals(2, ok.size());
        }
    }

    @Test
    void wrongNumberOfInputsOrOutputsIsAnIllegalArgument() {
        try (InferenceModel m = new InferenceModel()) {
            m.load(Fixtures.model("two_input", "xml"));
            JTensor a = new JTensor(new float[3], new int[] {1, 3});
            IllegalArgumentException one = assertThrows(IllegalArgumentException.class, () -> m.predict(List.of(a)));
            assertTrue(one.getMessage().contains("Expected 2 input tensor(s)"), one.getMessage());
            IllegalArgumentException outs = assertThrows(IllegalArgumentException.class, () -> m.predict(a));
            assertTrue(outs.getMessage().contains("2 outputs"), outs.getMessage());
            assertThrows(IllegalArgumentException.class, () -> m.predict((JTensor) null));
            assertThrows(IllegalArgumentException.class, () -> m.predict(java.util.Arrays.asList(a, null)));
        }
    }

    @Test
    void useBeforeLoadAndAfterCloseIsAnIllegalState() {
        InferenceModel m = new InferenceModel();
        JTensor x = new JTensor(new float[4], new int[] {1, 4});
        IllegalStateException before = assertThrows(IllegalStateException.class, () -> m.predict(x));
        assertTrue(before.getMessage().contains("call load"), before.getMessage());
        m.load(Fixtures.model("mlp", "onnx"));
        m.predict(x);
        m.close();
        ModelClosedException after = assertThrows(ModelClosedException.class, () -> m.predict(x));
        assertTrue(after.getMessage().contains("closed"), after.getMessage());
        assertEquals(-10, after.getStatus());
        assertEquals("NOT_ALLOCATED", after.getStatusName());
        assertTrue(after.getMessage().contains("NOT_ALLOCATED (-10)"), after.getMessage());
        assertThrows(ModelClosedException.class, () -> m.load(Fixtures.model("mlp", "onnx")));
    }
}
