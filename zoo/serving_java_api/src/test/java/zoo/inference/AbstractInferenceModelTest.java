package zoo.inference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** AbstractInferenceModel as Analytics Zoo's Java users extend it: loadOpenVINO, predict of samples, release. */
class AbstractInferenceModelTest {

    /** A subclass as an AZ user writes one. */
    static final class UserModel extends AbstractInferenceModel {
        UserModel(int concurrentNum) {
            super(concurrentNum);
        }
    }

    /** Row {@code r} of a batch-first tensor, with ({@code keep}) or without its batch dimension. */
    static JTensor row(JTensor t, int r, boolean keep) {
        int[] shape = t.getShape();
        int[] inner = Arrays.copyOfRange(shape, 1, shape.length);
        int width = t.size() / shape[0];
        int[] rowShape = keep ? concat(new int[] {1}, inner) : inner;
        switch (t.getDataType()) {
            case FLOAT32:
                return new JTensor(Arrays.copyOfRange(t.getData(), r * width, (r + 1) * width), rowShape);
            case INT32:
                return new JTensor(Arrays.copyOfRange(t.getIntData(), r * width, (r + 1) * width), rowShape);
            default:
                return new JTensor(Arrays.copyOfRange(t.getLongData(), r * width, (r + 1) * width), rowShape);
        }
    }

    static int[] concat(int[] a, int[] b) {
        int[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    /** Each row of each case as one sample; samples alternate with and without a batch dimension. */
    static void assertSamplesMatchPyTorch(AbstractInferenceModel model, String name) throws IOException {
        for (Fixtures.Case c : Fixtures.of(name)) {
            int rows = c.inputs.get(0).getShape()[0];
            List<List<JTensor>> samples = new ArrayList<>();
            for (int r = 0; r < rows; r++) {
                List<JTensor> sample = new ArrayList<>();
                for (JTensor input : c.inputs) {
                    sample.add(row(input, r, r % 2 == 0));
                }
                samples.add(sample);
            }
            List<List<JTensor>> outputs = model.predict(samples);
            assertEquals(rows, outputs.size(), c.name + ": one answer per sample");
            for (int r = 0; r < rows; r++) {
                for (int j = 0; j < c.expected.size(); j++) {
                    Fixtures.assertClose(row(c.expected.get(j), r, r % 2 == 0), outputs.get(r).get(j),
                            InferenceModelTest.TOLERANCE, c.name + " sample " + r + " output " + j);
                }
            }
        }
    }

    @Test
    void loadOpenVinoWithItsWeightsAndPredictSamples() throws IOException {
        UserModel model = new UserModel(2);
        model.loadOpenVINO(Fixtures.model("two_input", "xml"), Fixtures.model("two_input", "bin"));
        assertSamplesMatchPyTorch(model, "two_input");
        model.release();
        assertTrue(model.getInferenceModel().isClosed());
        assertThrows(IllegalStateException.class, () -> model.predict(List.of(List.of(new JTensor(new float[3], new int[] {3}),
                new JTensor(new float[2], new int[] {2})))));
    }

    @Test
    void batchSizeRunsTheSamplesInChunks() throws IOException {
        try (UserModel model = new UserModel(1)) {
            model.loadOpenVINO(Fixtures.model("mlp", "xml"), null, 3);
            assertSamplesMatchPyTorch(model, "mlp");
        }
    }

    @Test
    void weightsMayLieAnywhere(@TempDir Path dir) throws IOException {
        Path xml = dir.resolve("net.xml");
        Path bin = dir.resolve("elsewhere-weights.bin");
        Files.copy(Path.of(Fixtures.model("mlp", "xml")), xml);
        Files.copy(Path.of(Fixtures.model("mlp", "bin")), bin);
        try (UserModel model = new UserModel(1)) {
            model.doLoadOpenVINO(xml.toString(), bin.toString(), 0);
            assertSamplesMatchPyTorch(model, "mlp");
        }
        try (UserModel model = new UserModel(1)) {
            InferenceException e = assertThrows(InferenceException.class,
                    () -> model.loadOpenVINO(xml.toString(), dir.resolve("missing.bin").toString()));
            assertTrue(e.getMessage().contains("missing.bin"), e.getMessage());
        }
    }

    @Test
    void samplesThatDoNotFitAreRefusedBeforeInference() {
        try (UserModel model = new UserModel(1)) {
            model.loadOpenVINO(Fixtures.model("two_input", "xml"), null);
            JTensor a = new JTensor(new float[3], new int[] {3});
            JTensor b = new JTensor(new float[2], new int[] {2});
            IllegalArgumentException count = assertThrows(IllegalArgumentException.class,
                    () -> model.predict(List.of(List.of(a))));
            assertTrue(count.getMessage().contains("Sample 0 has 1 input tensors; the model takes 2"), count.getMessage());
            IllegalArgumentException rank = assertThrows(IllegalArgumentException.class,
                    () -> model.predict(List.of(List.of(new JTensor(new float[3], new int[] {1, 1, 3}), b))));
            assertTrue(rank.getMessage().contains("Give rank 2 (with a batch dimension) or 1 (without)"), rank.getMessage());
            IllegalArgumentException mixed = assertThrows(IllegalArgumentException.class,
                    () -> model.predict(List.of(List.of(a, b), List.of(new JTensor(new float[4], new int[] {4}), b))));
            assertTrue(mixed.getMessage().contains("Samples batched together need the same"), mixed.getMessage());
            assertThrows(IllegalArgumentException.class, () -> model.predict(List.of()));
            assertThrows(IllegalArgumentException.class, () -> model.loadOpenVINO("x.xml", null, -1));
        }
    }
}
