package zoo.inference;

import java.util.Arrays;

/**
 * A dense tensor passed to and returned from {@link InferenceModel}: a flat row-major array plus
 * its shape.
 *
 * <p>Three element types are supported: {@code float} (the usual case), {@code int} and
 * {@code long} (for example token ids or embedding indices). The array is used as given, without
 * a copy, so do not modify it while a prediction that uses it is running.
 *
 * <pre>{@code
 * JTensor x = new JTensor(new float[] {1f, 2f, 3f, 4f}, new int[] {1, 4});
 * float[] values = x.getData();
 * int[] shape = x.getShape();
 * }</pre>
 */
public final class JTensor {

    /** Element type of a {@link JTensor}. */
    public enum DataType {
        /** 32-bit IEEE float ({@code float[]}), OpenVINO {@code f32}. */
        FLOAT32(4),
        /** 32-bit signed integer ({@code int[]}), OpenVINO {@code i32}. */
        INT32(4),
        /** 64-bit signed integer ({@code long[]}), OpenVINO {@code i64}. */
        INT64(8);

        private final int byteWidth;

        DataType(int byteWidth) {
            this.byteWidth = byteWidth;
        }

        /** @return bytes per element */
        public int byteWidth() {
            return byteWidth;
        }
    }

    private final DataType dataType;
    private final float[] floatData;
    private final int[] intData;
    private final long[] longData;
    private final int[] shape;

    /**
     * A float tensor.
     *
     * @param data row-major values; its length must equal the product of {@code shape}
     * @param shape dimensions, each {@code >= 0}
     * @throws IllegalArgumentException if the length of {@code data} does not match {@code shape}
     */
    public JTensor(float[] data, int[] shape) {
        this(DataType.FLOAT32, data, null, null, checkedLength(data == null ? -1 : data.length, shape, "float[]"), shape);
    }

    /**
     * An int (OpenVINO {@code i32}) tensor.
     *
     * @param data row-major values; its length must equal the product of {@code shape}
     * @param shape dimensions, each {@code >= 0}
     * @throws IllegalArgumentException if the length of {@code data} does not match {@code shape}
     */
    public JTensor(int[] data, int[] shape) {
        this(DataType.INT32, null, data, null, checkedLength(data == null ? -1 : data.length, shape, "int[]"), shape);
    }

    /**
     * A long (OpenVINO {@code i64}) tensor, e.g. indices for an embedding exported from PyTorch.
     *
     * @param data row-major values; its length must equal the product of {@code shape}
     * @param shape dimensions, each {@code >= 0}
     * @throws IllegalArgumentException if the length of {@code data} does not match {@code shape}
     */
    public JTensor(long[] data, int[] shape) {
        this(DataType.INT64, null, null, data, checkedLength(data == null ? -1 : data.length, shape, "long[]"), shape);
    }

    /** {@code validatedLength} only forces {@link #checkedLength} to run before the fields are set. */
    private JTensor(DataType type, float[] f, int[] i, long[] l, int validatedLength, int[] shape) {
        this.dataType = type;
        this.floatData = f;
        this.intData = i;
        this.longData = l;
        this.shape = shape.clone();
    }

    private static int checkedLength(int length, int[] shape, String kind) {
        if (length < 0) {
            throw new IllegalArgumentException("Expected a " + kind + " data array. Received: null.");
        }
        if (shape == null) {
            throw new IllegalArgumentException(
                    "Expected an int[] shape, e.g. new int[] {1, " + length + "}. Received: null.");
        }
        long count = 1;
        for (int d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException(
                        "Expected every dimension of shape >= 0. Received: shape=" + Arrays.toString(shape) + ".");
            }
            count *= d;
            if (count > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(
                        "Shape " + Arrays.toString(shape) + " holds more than Integer.MAX_VALUE elements.");
            }
        }
        if (count != length) {
            throw new IllegalArgumentException(
                    "Expected " + kind + " data of length " + count + " (the product of shape "
                            + Arrays.toString(shape) + "). Received: length=" + length
                            + ". Fix the shape or the data so that they agree.");
        }
        return length;
    }

    /** @return the element type of this tensor */
    public DataType getDataType() {
        return dataType;
    }

    /**
     * The float values, in row-major order (the array itself, not a copy).
     *
     * @return the data of a {@link DataType#FLOAT32} tensor
     * @throws IllegalStateException if this tensor holds ints or longs; use {@link #getIntData()}
     *     or {@link #getLongData()} then
     */
    public float[] getData() {
        if (floatData == null) {
            throw new IllegalStateException(
                    "This JTensor holds " + dataType + " values, not FLOAT32; call "
                            + (dataType == DataType.INT32 ? "getIntData()" : "getLongData()") + " instead.");
        }
        return floatData;
    }

    /**
     * The int values, in row-major order (the array itself, not a copy).
     *
     * @return the data of an {@link DataType#INT32} tensor
     * @throws IllegalStateException if this tensor does not hold ints
     */
    public int[] getIntData() {
        if (intData == null) {
            throw new IllegalStateException(
                    "This JTensor holds " + dataType + " values, not INT32; call "
                            + (dataType == DataType.FLOAT32 ? "getData()" : "getLongData()") + " instead.");
        }
        return intData;
    }

    /**
     * The long values, in row-major order (the array itself, not a copy).
     *
     * @return the data of an {@link DataType#INT64} tensor
     * @throws IllegalStateException if this tensor does not hold longs
     */
    public long[] getLongData() {
        if (longData == null) {
            throw new IllegalStateException(
                    "This JTensor holds " + dataType + " values, not INT64; call "
                            + (dataType == DataType.FLOAT32 ? "getData()" : "getIntData()") + " instead.");
        }
        return longData;
    }

    /** @return a copy of the dimensions */
    public int[] getShape() {
        return shape.clone();
    }

    /** @return the number of elements (the product of the shape) */
    public int size() {
        switch (dataType) {
            case FLOAT32:
                return floatData.length;
            case INT32:
                return intData.length;
            default:
                return longData.length;
        }
    }

    /** Package-private: the shape without a copy, for the native path. */
    int[] shapeView() {
        return shape;
    }

    @Override
    public String toString() {
        return "JTensor(" + dataType + ", shape=" + Arrays.toString(shape) + ")";
    }
}
