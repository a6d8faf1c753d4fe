package zoo.inference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** JTensor holds data and shape, and refuses data that disagrees with its shape. */
class JTensorTest {

    @Test
    void holdsDataWithoutCopyAndShapeAsCopy() {
        float[] data = {1f, 2f, 3f, 4f, 5f, 6f};
        int[] shape = {2, 3};
        JTensor t = new JTensor(data, shape);
        assertSame(data, t.getData());
        assertArrayEquals(new int[] {2, 3}, t.getShape());
        shape[0] = 7;
        t.getShape()[1] = 9;
        assertArrayEquals(new int[] {2, 3}, t.getShape(), "shape is defensive");
        assertEquals(JTensor.DataType.FLOAT32, t.getDataType());
        assertEquals(6, t.size());
    }

    @Test
    void intAndLongTensors() {
        JTensor i = new JTensor(new int[] {1, 2, 3}, new int[] {1, 3});
        JTensor l = new JTensor(new long[] {1L << 40, 2L}, new int[] {2});
        assertEquals(JTensor.DataType.INT32, i.getDataType());
        assertEquals(JTensor.DataType.INT64, l.getDataType());
        assertArrayEquals(new long[] {1L << 40, 2L}, l.getLongData());
        IllegalStateException e = assertThrows(IllegalStateException.class, i::getData);
        assertTrue(e.getMessage().contains("getIntData()"), e.getMessage());
        assertThrows(IllegalStateException.class, l::getIntData);
        assertThrows(IllegalStateException.class, new JTensor(new float[1], new int[] {1})::getLongData);
    }

    @Test
    void scalarsAndEmptyTensors() {
        assertEquals(1, new JTensor(new float[] {3f}, new int[0]).size());
        assertEquals(0, new JTensor(new float[0], new int[] {0, 4}).size());
    }

    @Test
    void refusesDataThatDisagreesWithShape() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new JTensor(new float[5], new int[] {2, 3}));
        assertTrue(e.getMessage().contains("length 6") && e.getMessage().contains("length=5"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new JTensor(new int[2], new int[] {-1, -2}));
        assertThrows(IllegalArgumentException.class, () -> new JTensor((float[]) null, new int[] {1}));
        assertThrows(IllegalArgumentException.class, () -> new JTensor(new long[1], null));
        assertThrows(IllegalArgumentException.class,
                () -> new JTensor(new float[0], new int[] {65536, 65536, 0, 1 << 30}), "overflow is caught");
    }
}
