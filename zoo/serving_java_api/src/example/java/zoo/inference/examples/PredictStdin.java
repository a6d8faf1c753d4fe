package zoo.inference.examples;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import zoo.inference.InferenceModel;
import zoo.inference.JTensor;
import zoo.inference.TensorInfo;

/**
 * Loads a model and answers one prediction per line of numbers read from stdin.
 *
 * <pre>
 * java -jar zoo/serving_java_api/build/zoo-inference.jar model.xml
 * 0.1 0.2 0.3 0.4        (one sample: the model's input without the batch dimension)
 * 0.0315 -0.4402 0.2189  (the model's output for it)
 * </pre>
 *
 * Numbers may be separated by spaces or commas. The model must have one input; a line is
 * reshaped to {@code [1, <input shape without batch>]} (or {@code [1, n]} when that shape has
 * dynamic dimensions). A bad line prints {@code error: ...} and the loop goes on.
 */
public final class PredictStdin {

    private PredictStdin() {
    }

    /**
     * @param args {@code <model.onnx|model.xml>}
     * @throws Exception if the model cannot be loaded or stdin cannot be read
     */
    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: java -jar zoo-inference.jar <model.onnx|model.xml>  (then lines of numbers on stdin)");
            System.exit(2);
        }
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        try (InferenceModel model = new InferenceModel()) {
            model.load(args[0]);
            List<TensorInfo> inputs = model.getInputs();
            if (inputs.size() != 1) {
                System.err.println("error: this example feeds one input; the model has " + inputs);
                System.exit(2);
            }
            TensorInfo input = inputs.get(0);
            System.err.println("loaded " + args[0] + ": " + inputs + " -> " + model.getOutputs());
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                if (line.isBlank()) {
                    continue;
                }
                try {
                    out.println(format(model.predict(parse(line, input))));
                } catch (RuntimeException e) {
                    out.println("error: " + e.getMessage().lines().findFirst().orElse(e.toString()));
                }
            }
        }
    }

    /** One line of numbers as a batch of one, typed like the model's input. */
    static JTensor parse(String line, TensorInfo input) {
        String[] fields = line.trim().split("[\\s,]+");
        int[] shape = sampleShape(input, fields.length);
        switch (input.getElementType()) {
            case "i64":
                return new JTensor(Arrays.stream(fields).mapToLong(Long::parseLong).toArray(), shape);
            case "i32":
                return new JTensor(Arrays.stream(fields).mapToInt(Integer::parseInt).toArray(), shape);
            default: {
                float[] data = new float[fields.length];
                for (int i = 0; i < fields.length; i++) {
                    data[i] = Float.parseFloat(fields[i]);
                }
                return new JTensor(data, shape);
            }
        }
    }

    private static int[] sampleShape(TensorInfo input, int count) {
        long[] dims = input.getShape();
        if (dims == null || dims.length < 2 || Arrays.stream(dims, 1, dims.length).anyMatch(d -> d < 0)) {
            return new int[] {1, count};
        }
        int[] shape = new int[dims.length];
        shape[0] = 1;
        for (int i = 1; i < dims.length; i++) {
            shape[i] = (int) dims[i];
        }
        return shape;
    }

    private static String format(JTensor y) {
        StringBuilder b = new StringBuilder();
        switch (y.getDataType()) {
            case FLOAT32:
                for (float v : y.getData()) {
                    b.append(b.length() == 0 ? "" : " ").append(v);
                }
                break;
            case INT32:
                for (int v : y.getIntData()) {
                    b.append(b.length() == 0 ? "" : " ").append(v);
                }
                break;
            default:
                for (long v : y.getLongData()) {
                    b.append(b.length() == 0 ? "" : " ").append(v);
                }
                break;
        }
        return b.toString();
    }
}
