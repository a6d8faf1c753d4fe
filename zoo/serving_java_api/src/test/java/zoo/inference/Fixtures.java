package zoo.inference;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The models, inputs and expected outputs written by {@code tests/make_fixtures.py}, read from
 * the folder named by the system property {@value #PROPERTY}.
 *
 * <p>{@code cases.txt} holds blocks of lines:
 * <pre>
 * case mlp_b5 mlp
 * in float32 5,4 mlp_b5.in0.bin
 * out float32 5,3 mlp_b5.out0.bin
 * end
 * </pre>
 * The data files are raw little-endian arrays; the model files are {@code <model>.onnx} and
 * {@code <model>.xml}/{@code .bin}.
 */
final class Fixtures {

    /** System property holding the fixtures folder (set by build.sh). */
    static final String PROPERTY = "zoo.test.fixtures";

    /** One model call: its inputs and the outputs PyTorch computed for them. */
    static final class Case {
        final String name;
        final String model;
        final List<JTensor> inputs = new ArrayList<>();
        final List<JTensor> expected = new ArrayList<>();

        Case(String name, String model) {
            this.name = name;
            this.model = model;
        }

        @Override
        public String toString() {
            return name;
        }
    }

    private static List<Case> cases;

    private Fixtures() {
    }

    /** @return the fixtures folder */
    static Path dir() {
        String value = System.getProperty(PROPERTY);
        if (value == null) {
            throw new IllegalStateException("System property " + PROPERTY + " is not set; run the tests through"
                    + " zoo/serving_java_api/build.sh, which exports the fixtures first.");
        }
        return Paths.get(value);
    }

    /** @return the path of a model in one format ("onnx" or "xml") */
    static String model(String model, String format) {
        return dir().resolve(model + "." + format).toString();
    }

    /** @return every case in cases.txt */
    static synchronized List<Case> all() throws IOException {
        if (cases == null) {
            cases = read(dir());
        }
        return cases;
    }

    /** @return the cases of one model */
    static List<Case> of(String model) throws IOException {
        List<Case> list = new ArrayList<>();
        for (Case c : all()) {
            if (c.model.equals(model)) {
                list.add(c);
            }
        }
        if (list.isEmpty()) {
            throw new IllegalStateException("No fixture case for model '" + model + "' in " + dir());
        }
        return list;
    }

    private static List<Case> read(Path dir) throws IOException {
        List<Case> list = new ArrayList<>();
        Case current = null;
        for (String line : Files.readAllLines(dir.resolve("cases.txt"))) {
            String[] f = line.trim().split("\\s+");
            switch (f[0]) {
                case "case":
                    current = new Case(f[1], f[2]);
                    break;
                case "in":
                    current.inputs.add(tensor(dir, f[1], f[2], f[3]));
                    break;
                case "out":
                    current.expected.add(tensor(dir, f[1], f[2], f[3]));
                    break;
                case "end":
                    list.add(current);
                    current = null;
                    break;
                default:
                    break;
            }
        }
        return list;
    }

    private static JTensor tensor(Path dir, String type, String dims, String file) throws IOException {
        int[] shape = dims.equals("-") ? new int[0] : Arrays.stream(dims.split(",")).mapToInt(Integer::parseInt).toArray();
        ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(dir.resolve(file))).order(ByteOrder.LITTLE_ENDIAN);
        switch (type) {
            case "float32": {
                float[] data = new float[bytes.remaining() / 4];
                bytes.asFloatBuffer().get(data);
                return new JTensor(data, shape);
            }
            case "int32": {
                int[] data = new int[bytes.remaining() / 4];
                bytes.asIntBuffer().get(data);
                return new JTensor(data, shape);
            }
            case "int64": {
                long[] data = new long[bytes.remaining() / 8];
                bytes.asLongBuffer().get(data);
                return new JTensor(data, shape);
            }
            default:
                throw new IllegalStateException("Unknown fixture type " + type);
        }
    }

    /** Asserts that an output equals the expected one within {@code tolerance} (absolute). */
    static void assertClose(JTensor expected, JTensor actual, double tolerance, String what) {
        org.junit.jupiter.api.Assertions.assertArrayEquals(expected.getShape(), actual.getShape(), what + ": shape");
        org.junit.jupiter.api.Assertions.assertEquals(expected.getDataType(), actual.getDataType(), what + ": type");
        switch (expected.getDataType()) {
            case FLOAT32: {
                float[] e = expected.getData();
                float[] a = actual.getData();
                for (int i = 0; i < e.length; i++) {
                    if (!(Math.abs(e[i] - a[i]) <= tolerance)) {
                        org.junit.jupiter.api.Assertions.fail(what + ": element " + i + " is " + a[i]
                                + ", expected " + e[i] + " (tolerance " + tolerance + ")");
                    }
                }
                break;
            }
            case INT32:
                org.junit.jupiter.api.Assertions.assertArrayEquals(expected.getIntData(), actual.getIntData(), what);
                break;
            default:
                org.junit.jupiter.api.Assertions.assertArrayEquals(expected.getLongData(), actual.getLongData(), what);
                break;
        }
    }
}
