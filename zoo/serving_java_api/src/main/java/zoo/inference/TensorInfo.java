package zoo.inference;

import java.util.Arrays;

/**
 * Name, element type and shape of one model input or output, as compiled by OpenVINO.
 *
 * <p>Dynamic dimensions (such as the batch dimension of a model exported by Zoo) are {@code -1}.
 */
public final class TensorInfo {

    private final String name;
    private final String elementType;
    private final long[] shape;

    TensorInfo(String name, String elementType, long[] shape) {
        this.name = name;
        this.elementType = elementType;
        this.shape = shape;
    }

    /** @return the tensor's name in the model, e.g. {@code "x"} */
    public String getName() {
        return name;
    }

    /** @return OpenVINO's element type name, e.g. {@code "f32"}, {@code "i64"} */
    public String getElementType() {
        return elementType;
    }

    /**
     * @return a copy of the dimensions, {@code -1} for a dynamic one; {@code null} if even the rank
     *     is dynamic
     */
    public long[] getShape() {
        return shape == null ? null : shape.clone();
    }

    /** @return the shape as OpenVINO prints it, e.g. {@code "[?,4]"} */
    public String shapeString() {
        if (shape == null) {
            return "[...]";
        }
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < shape.length; i++) {
            b.append(i == 0 ? "" : ",").append(shape[i] < 0 ? "?" : Long.toString(shape[i]));
        }
        return b.append(']').toString();
    }

    @Override
    public String toString() {
        return name + ": " + elementType + shapeString();
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof TensorInfo)) {
            return false;
        }
        TensorInfo t = (TensorInfo) o;
        return name.equals(t.name) && elementType.equals(t.elementType) && Arrays.equals(shape, t.shape);
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }
}
