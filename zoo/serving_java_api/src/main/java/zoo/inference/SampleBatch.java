package zoo.inference;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Samples of {@link AbstractInferenceModel#predict(List)} joined into one tensor per model input
 * along the batch axis, and the model's outputs split back into one list per sample.
 */
final class SampleBatch {

    private final List<JTensor> tensors;
    private final int[] rows;
    private final boolean[] keepsBatchDim;

    private SampleBatch(List<JTensor> tensors, int[] rows, boolean[] keepsBatchDim) {
        this.tensors = tensors;
        this.rows = rows;
        this.keepsBatchDim = keepsBatchDim;
    }

    /**
     * Joins {@code samples} (one list of tensors per sample, one tensor per input).
     *
     * @param offset the index of the first sample in the caller's list, for messages
     */
    static SampleBatch of(List<List<JTensor>> samples, List<TensorInfo> ports, int offset) {
        int n = samples.size();
        int[] rows = new int[n];
        boolean[] keeps = new boolean[n];
        List<JTensor> joined = new ArrayList<>(ports.size());
        for (int s = 0; s < n; s++) {
            List<JTensor> sample = samples.get(s);
            if (sample == null || sample.size() != ports.size()) {
                throw new IllegalArgumentException("Sample " + (offset + s) + " has "
                        + (sample == null ? "no" : String.valueOf(sample.size())) + " input tensors; the model takes "
                        + ports.size() + " (" + ports + "). Give one JTensor per model input, in model order.");
            }
        }
        for (int i = 0; i < ports.size(); i++) {
            TensorInfo port = ports.get(i);
            int rank = port.getShape() == null ? -1 : port.getShape().length;  // -1: a dynamic rank
            List<JTensor> parts = new ArrayList<>(n);
            int[] inner = null;
            JTensor.DataType type = null;
            for (int s = 0; s < n; s++) {
                JTensor t = samples.get(s).get(i);
                String where = "Sample " + (offset + s) + ", input " + i + " ('" + port.getName() + "')";
                if (t == null) {
                    throw new IllegalArgumentException(where + " is null.");
                }
                int[] shape = t.getShape();
                boolean hasBatch = rank < 0 || shape.length == rank;
                if (!hasBatch && shape.length != rank - 1) {
                    throw new IllegalArgumentException(where + " has shape " + Arrays.toString(shape) + "; the model input is "
                            + port.shapeString() + ". Give rank " + rank + " (with a batch dimension) or " + (rank - 1)
                            + " (without).");
                }
                int sampleRows = hasBatch ? shape[0] : 1;
                int[] sampleInner = hasBatch ? Arrays.copyOfRange(shape, 1, shape.length) : shape;
                if (i == 0) {
                    rows[s] = sampleRows;
                    keeps[s] = hasBatch;
                } else if (rows[s] != sampleRows) {
                    throw new IllegalArgumentException(where + " has " + sampleRows + " rows but its input 0 has " + rows[s]
                            + ". Every input of a sample needs the same number of rows.");
                }
                if (inner == null) {
                    inner = sampleInner;
                    type = t.getDataType();
                } else if (!Arrays.equals(inner, sampleInner) || type != t.getDataType()) {
                    throw new IllegalArgumentException(where + " is " + t.getDataType() + " " + Arrays.toString(sampleInner)
                            + " per row, but sample " + offset + " is " + type + " " + Arrays.toString(inner)
                            + ". Samples batched together need the same element type and row shape.");
                }
                parts.add(t);
            }
            joined.add(concat(parts, type, Arrays.stream(rows).sum(), inner));
        }
        return new SampleBatch(joined, rows, keeps);
    }

    private static JTensor concat(List<JTensor> parts, JTensor.DataType type, int totalRows, int[] inner) {
        int[] shape = new int[inner.length + 1];
        shape[0] = totalRows;
        System.arraycopy(inner, 0, shape, 1, inner.length);
        int length = Math.toIntExact((long) totalRows * Arrays.stream(inner).asLongStream().reduce(1, (a, b) -> a * b));
        int at = 0;
        switch (type) {
            case FLOAT32: {
                float[] data = new float[length];
                for (JTensor p : parts) {
                    System.arraycopy(p.getData(), 0, data, at, p.size());
                    at += p.size();
                }
                return new JTensor(data, shape);
            }
            case INT32: {
                int[] data = new int[length];
                for (JTensor p : parts) {
                    System.arraycopy(p.getIntData(), 0, data, at, p.size());
                    at += p.size();
                }
                return new JTensor(data, shape);
            }
            default: {
                long[] data = new long[length];
                for (JTensor p : parts) {
                    System.arraycopy(p.getLongData(), 0, data, at, p.size());
                    at += p.size();
                }
                return new JTensor(data, shape);
            }
        }
    }

    /** @return one joined tensor per model input */
    List<JTensor> tensors() {
        return tensors;
    }

    /** Splits the model's outputs (batch first) into one list of outputs per sample. */
    List<List<JTensor>> split(List<JTensor> outputs) {
        int total = Arrays.stream(rows).sum();
        List<List<JTensor>> perSample = new ArrayList<>(rows.length);
        for (int s = 0; s < rows.length; s++) {
            perSample.add(new ArrayList<>(outputs.size()));
        }
        for (JTensor output : outputs) {
            int[] shape = output.getShape();
            if (shape.length == 0 || shape[0] != total) {
                throw new IllegalStateException("A model output has shape " + Arrays.toString(shape) + ", not " + total
                        + " rows (one per input row), so it cannot be split into samples. Use InferenceModel.predict"
                        + " for models whose outputs are not batch-first.");
            }
            int[] inner = Arrays.copyOfRange(shape, 1, shape.length);
            int width = output.size() / Math.max(total, 1);
            int row = 0;
            for (int s = 0; s < rows.length; s++) {
                int[] pieceShape = keepsBatchDim[s] ? withRows(rows[s], inner) : inner;
                perSample.get(s).add(slice(output, row * width, rows[s] * width, pieceShape));
                row += rows[s];
            }
        }
        return perSample;
    }

    private static int[] withRows(int rows, int[] inner) {
        int[] shape = new int[inner.length + 1];
        shape[0] = rows;
        System.arraycopy(inner, 0, shape, 1, inner.length);
        return shape;
    }

    private static JTensor slice(JTensor t, int from, int length, int[] shape) {
        switch (t.getDataType()) {
            case FLOAT32:
                return new JTensor(Arrays.copyOfRange(t.getData(), from, from + length), shape);
            case INT32:
                return new JTensor(Arrays.copyOfRange(t.getIntData(), from, from + length), shape);
            default:
                return new JTensor(Arrays.copyOfRange(t.getLongData(), from, from + length), shape);
        }
    }
}
