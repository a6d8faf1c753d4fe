package zoo.flink;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.flink.table.data.ArrayData;
import org.apache.flink.table.data.GenericArrayData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.binary.BinaryArrayData;
import org.apache.flink.table.types.logical.ArrayType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeRoot;
import zoo.inference.JTensor;
import zoo.inference.TensorInfo;

/**
 * Conversions between Flink values and the {@link JTensor}s of Zoo's Java inference handle.
 *
 * <p>A model input of rank 1 ({@code f32[?]}) is one scalar column per sample; an input of higher
 * rank is one ARRAY column holding the sample flattened in row-major order. Float inputs accept
 * FLOAT or DOUBLE (and arrays of them), integer inputs INT or BIGINT. Outputs come back the same
 * way: one value per sample as a scalar, more as an ARRAY, in the output's own element type.
 */
final class Tensors {

    private Tensors() {}

    /** The per-sample dimensions of {@code info} (its shape without the batch dimension). */
    static int[] sampleShape(TensorInfo info, int flatLength) {
        long[] shape = info.getShape();
        if (shape == null || shape.length <= 1) {
            return new int[0];
        }
        int[] dims = new int[shape.length - 1];
        int known = 1;
        int dynamic = -1;
        for (int i = 1; i < shape.length; i++) {
            if (shape[i] < 0) {
                dynamic = i - 1;
            } else {
                dims[i - 1] = (int) shape[i];
                known *= (int) shape[i];
            }
        }
        if (dynamic >= 0) {
            dims[dynamic] = known == 0 ? 0 : flatLength / known;
        }
        return dims;
    }

    /** Values per sample of an input with static sample dimensions, or -1 when one is dynamic. */
    static long sampleSize(TensorInfo info) {
        long[] shape = info.getShape();
        if (shape == null) {
            return -1;
        }
        long size = 1;
        for (int i = 1; i < shape.length; i++) {
            if (shape[i] < 0) {
                return -1;
            }
            size *= shape[i];
        }
        return size;
    }

    /** Reads field {@code index} of {@code row} (of {@code type}) as doubles, one sample. */
    static double[] read(RowData row, int index, LogicalType type) {
        if (row.isNullAt(index)) {
            throw new IllegalArgumentException("Column " + index + " is NULL; a Zoo model needs a value in every"
                    + " input column. Filter NULLs out (WHERE col IS NOT NULL) or COALESCE them.");
        }
        if (type.getTypeRoot() == LogicalTypeRoot.ARRAY) {
            ArrayData array = row.getArray(index);
            LogicalType element = ((ArrayType) type).getElementType();
            double[] values = new double[array.size()];
            for (int i = 0; i < values.length; i++) {
                values[i] = scalar(array, i, element);
            }
            return values;
        }
        return new double[] {scalarOf(row, index, type)};
    }

    private static double scalar(ArrayData array, int i, LogicalType element) {
        switch (element.getTypeRoot()) {
            case FLOAT: return array.getFloat(i);
            case DOUBLE: return array.getDouble(i);
            case INTEGER: return array.getInt(i);
            case BIGINT: return array.getLong(i);
            case SMALLINT: return array.getShort(i);
            case TINYINT: return array.getByte(i);
            default: throw unsupported(element);
        }
    }

    private static double scalarOf(RowData row, int index, LogicalType type) {
        switch (type.getTypeRoot()) {
            case FLOAT: return row.getFloat(index);
            case DOUBLE: return row.getDouble(index);
            case INTEGER: return row.getInt(index);
            case BIGINT: return row.getLong(index);
            case SMALLINT: return row.getShort(index);
            case TINYINT: return row.getByte(index);
            case DECIMAL: return row.getDecimal(index, precision(type), scale(type)).toBigDecimal().doubleValue();
            default: throw unsupported(type);
        }
    }

    private static int precision(LogicalType type) {
        return ((org.apache.flink.table.types.logical.DecimalType) type).getPrecision();
    }

    private static int scale(LogicalType type) {
        return ((org.apache.flink.table.types.logical.DecimalType) type).getScale();
    }

    static IllegalArgumentException unsupported(LogicalType type) {
        return new IllegalArgumentException("A Zoo model input column must be numeric or an ARRAY of numbers;"
                + " received " + type + ". CAST it to DOUBLE or ARRAY<DOUBLE>.");
    }

    /**
     * Column {@code index} of {@code row} (of {@code type}) as one sample of model input
     * {@code info}, in the input's element type: a {@code float[]}, {@code long[]} or {@code int[]}.
     */
    static Object sample(RowData row, int index, LogicalType type, TensorInfo info) {
        ArrayData column = isFloat(info) && type.getTypeRoot() == LogicalTypeRoot.ARRAY && !row.isNullAt(index)
                ? row.getArray(index) : null;
        if (column instanceof BinaryArrayData) {
            BinaryArrayData array = (BinaryArrayData) column;
            LogicalTypeRoot element = ((ArrayType) type).getElementType().getTypeRoot();
            if (element == LogicalTypeRoot.FLOAT && !array.anyNull()) {
                return array.toFloatArray();
            }
            if (element == LogicalTypeRoot.DOUBLE && !array.anyNull()) {
                float[] values = new float[array.size()];
                for (int i = 0; i < values.length; i++) {
                    values[i] = (float) array.getDouble(i);
                }
                return values;
            }
        }
        return typed(info, read(row, index, type));
    }

    private static boolean isFloat(TensorInfo info) {
        return !info.getElementType().equals("i64") && !info.getElementType().equals("i32");
    }

    /** {@code values} in model input {@code info}'s element type ({@code float[]}, {@code long[]} or {@code int[]}). */
    static Object typed(TensorInfo info, double[] values) {
        switch (info.getElementType()) {
            case "i64": {
                long[] out = new long[values.length];
                for (int i = 0; i < out.length; i++) out[i] = (long) values[i];
                return out;
            }
            case "i32": {
                int[] out = new int[values.length];
                for (int i = 0; i < out.length; i++) out[i] = (int) values[i];
                return out;
            }
            default: {
                float[] out = new float[values.length];
                for (int i = 0; i < out.length; i++) out[i] = (float) values[i];
                return out;
            }
        }
    }

    private static int length(Object sample) {
        if (sample instanceof float[]) return ((float[]) sample).length;
        if (sample instanceof long[]) return ((long[]) sample).length;
        return ((int[]) sample).length;
    }

    /**
     * A batch tensor for model input {@code info} from {@code samples}, each one flattened sample
     * in the input's element type ({@link #sample} or {@link #typed} made them).
     */
    static JTensor batch(TensorInfo info, List<Object> samples) {
        int n = samples.size();
        int per = n == 0 ? 0 : length(samples.get(0));
        int[] sample = sampleShape(info, per);
        int[] shape = new int[sample.length + 1];
        shape[0] = n;
        System.arraycopy(sample, 0, shape, 1, sample.length);
        long expected = sampleSize(info);
        for (int s = 0; s < n; s++) {
            int length = length(samples.get(s));
            if (length != per || (expected >= 0 && per != expected)) {
                throw new IllegalArgumentException("Model input '" + info.getName() + "' takes " + info
                        + "; a row holds " + length + " value(s) for it. Send " + (expected >= 0
                        ? expected : per) + " value(s) per sample, flattened in row-major order.");
            }
        }
        Object data;
        switch (info.getElementType()) {
            case "i64": data = new long[n * per]; break;
            case "i32": data = new int[n * per]; break;
            default: data = new float[n * per];
        }
        for (int s = 0; s < n; s++) {
            System.arraycopy(samples.get(s), 0, data, s * per, per);
        }
        if (data instanceof long[]) return new JTensor((long[]) data, shape);
        if (data instanceof int[]) return new JTensor((int[]) data, shape);
        return new JTensor((float[]) data, shape);
    }

    /** Sample {@code s} of a batch output, as the Flink value of {@code type} (scalar or array). */
    static Object value(JTensor output, int s, LogicalType type) {
        int n = output.getShape()[0];
        int per = n == 0 ? 0 : output.size() / n;
        boolean array = type.getTypeRoot() == LogicalTypeRoot.ARRAY;
        LogicalType element = array ? ((ArrayType) type).getElementType() : type;
        int from = s * per;
        if (!array) {
            return box(element(output, from), element);
        }
        switch (element.getTypeRoot()) {
            case DOUBLE: {
                double[] out = new double[per];
                for (int i = 0; i < per; i++) out[i] = element(output, from + i);
                return new GenericArrayData(out);
            }
            case BIGINT: {
                long[] out = new long[per];
                for (int i = 0; i < per; i++) out[i] = (long) element(output, from + i);
                return new GenericArrayData(out);
            }
            case INTEGER: {
                int[] out = new int[per];
                for (int i = 0; i < per; i++) out[i] = (int) element(output, from + i);
                return new GenericArrayData(out);
            }
            default: {
                if (output.getDataType() == JTensor.DataType.FLOAT32) {
                    return new GenericArrayData(Arrays.copyOfRange(output.getData(), from, from + per));
                }
                float[] out = new float[per];
                for (int i = 0; i < per; i++) out[i] = (float) element(output, from + i);
                return new GenericArrayData(out);
            }
        }
    }

    /** Element {@code i} of {@code output}'s flat data, as a double. */
    private static double element(JTensor output, int i) {
        switch (output.getDataType()) {
            case INT64: return output.getLongData()[i];
            case INT32: return output.getIntData()[i];
            default: return output.getData()[i];
        }
    }

    private static Object box(double v, LogicalType type) {
        switch (type.getTypeRoot()) {
            case DOUBLE: return v;
            case BIGINT: return (long) v;
            case INTEGER: return (int) v;
            default: return (float) v;
        }
    }

    /** Sample 0 of a batch output as boxed floats (the scalar function's ARRAY<FLOAT> result). */
    static Float[] firstSample(JTensor output) {
        int n = output.getShape()[0];
        int per = n == 0 ? 0 : output.size() / n;
        Float[] row = new Float[per];
        for (int i = 0; i < per; i++) {
            switch (output.getDataType()) {
                case INT64: row[i] = (float) output.getLongData()[i]; break;
                case INT32: row[i] = (float) output.getIntData()[i]; break;
                default: row[i] = output.getData()[i];
            }
        }
        return row;
    }
}
