package zoo.inference.examples;

import java.util.Random;
import zoo.inference.InferenceModel;
import zoo.inference.JTensor;
import zoo.inference.TensorInfo;

/**
 * Measures predictions per second of the Java handle on one float model, one caller thread.
 * Used by {@code bench/java_inference.py}, which measures the Python peer in the same run.
 *
 * <pre>
 * java -cp zoo-inference.jar zoo.inference.examples.Benchmark model.xml 32 3.0 1.0
 * {"batch": 32, "calls": 51234, "seconds": 3.0001, "predictions_per_s": 546483.2}
 * </pre>
 */
public final class Benchmark {

    private Benchmark() {
    }

    /**
     * @param args {@code <model> <batch> <seconds> <warmupSeconds>}
     */
    public static void main(String[] args) {
        if (args.length != 4) {
            System.err.println("usage: Benchmark <model> <batch> <seconds> <warmupSeconds>");
            System.exit(2);
        }
        int batch = Integer.parseInt(args[1]);
        double seconds = Double.parseDouble(args[2]);
        double warmup = Double.parseDouble(args[3]);
        try (InferenceModel model = new InferenceModel(1)) {
            model.load(args[0]);
            TensorInfo input = model.getInputs().get(0);
            long[] dims = input.getShape();
            int[] shape = new int[dims.length];
            int size = batch;
            shape[0] = batch;
            for (int i = 1; i < dims.length; i++) {
                shape[i] = (int) dims[i];
                size *= shape[i];
            }
            float[] data = new float[size];
            Random random = new Random(0);
            for (int i = 0; i < size; i++) {
                data[i] = (float) random.nextGaussian();
            }
            JTensor x = new JTensor(data, shape);
            run(model, x, warmup);
            long[] calls = run(model, x, seconds);
            double elapsed = calls[1] / 1e9;
            System.out.printf("{\"batch\": %d, \"calls\": %d, \"seconds\": %.4f, \"predictions_per_s\": %.1f}%n",
                    batch, calls[0], elapsed, calls[0] * (double) batch / elapsed);
        }
    }

    /** Predicts until {@code seconds} have passed; returns {calls, nanoseconds}. */
    private static long[] run(InferenceModel model, JTensor x, double seconds) {
        long start = System.nanoTime();
        long deadline = start + (long) (seconds * 1e9);
        long calls = 0;
        long now;
        do {
            for (int i = 0; i < 16; i++) {
                model.predict(x);
            }
            calls += 16;
            now = System.nanoTime();
        } while (now < deadline);
        return new long[] {calls, now - start};
    }
}
