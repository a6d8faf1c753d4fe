package zoo.inference;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One OpenVINO infer request of an {@link InferenceModel}'s pool, used by one thread at a time.
 *
 * <p>It keeps one OpenVINO-allocated input tensor per model input and reuses it while callers
 * send the same shape and type (the steady state of a server); a new shape or type gets a new
 * tensor, set on the request, so dynamic dimensions (e.g. the batch) work without reshaping.
 */
final class RequestSlot {

    /** Cached input tensor of one input port. */
    private static final class InputBuffer {
        long tensor;
        Pointer data;
        JTensor.DataType type;
        int[] shape;
    }

    private final long request;
    private final Memory scratch = new Memory(64);
    private final long scratchAddress = Pointer.nativeValue(scratch);
    private final InputBuffer[] inputs;
    private final JTensor.DataType[] outputTypes;
    private final List<TensorInfo> inputInfo;

    RequestSlot(long request, List<TensorInfo> inputInfo, JTensor.DataType[] outputTypes) {
        this.request = request;
        this.inputInfo = inputInfo;
        this.outputTypes = outputTypes;
        this.inputs = new InputBuffer[inputInfo.size()];
        for (int i = 0; i < inputs.length; i++) {
            inputs[i] = new InputBuffer();
        }
    }

    /** Runs one inference; inputs have been counted and null-checked by the caller. */
    List<JTensor> run(List<JTensor> tensors) {
        for (int i = 0; i < inputs.length; i++) {
            write(i, tensors.get(i));
        }
        int status = OpenVinoC.ov_infer_request_infer(request);
        if (status != 0) {
            StringBuilder received = new StringBuilder();
            for (JTensor t : tensors) {
                received.append(received.length() == 0 ? "" : ", ").append(t.getDataType()).append(Arrays.toString(t.shapeView()));
            }
            throw new InferenceException("Inference failed on inputs (" + received + "); the model expects "
                    + inputInfo + ". Check that the inputs agree with each other (e.g. the same batch size).",
                    status, OpenVinoC.lastErrorMessage());
        }
        List<JTensor> results = new ArrayList<>(outputTypes.length);
        for (int j = 0; j < outputTypes.length; j++) {
            results.add(read(j));
        }
        return results;
    }

    private void write(int index, JTensor t) {
        InputBuffer buffer = inputs[index];
        int[] shape = t.shapeView();
        if (buffer.tensor == 0 || buffer.type != t.getDataType() || !Arrays.equals(buffer.shape, shape)) {
            replaceTensor(index, buffer, t.getDataType(), shape);
        }
        int n = t.size();
        if (n == 0) {
            return;
        }
        switch (t.getDataType()) {
            case FLOAT32:
                buffer.data.write(0, t.getData(), 0, n);
                break;
            case INT32:
                buffer.data.write(0, t.getIntData(), 0, n);
                break;
            default:
                buffer.data.write(0, t.getLongData(), 0, n);
                break;
        }
    }

    private void replaceTensor(int index, InputBuffer buffer, JTensor.DataType type, int[] shape) {
        OpenVinoC.check(OpenVinoC.ov_tensor_create(OpenVinoLibrary.code(type), new OpenVinoC.ShapeByValue(shape),
                scratchAddress), "Could not allocate an input tensor of shape " + Arrays.toString(shape) + ".");
        long tensor = scratch.getLong(0);
        int status = OpenVinoC.ov_infer_request_set_input_tensor_by_index(request, index, tensor);
        if (status != 0) {
            String message = OpenVinoC.lastErrorMessage();
            OpenVinoC.ov_tensor_free(tensor);
            TensorInfo info = inputInfo.get(index);
            throw new InferenceException("Input " + index + " ('" + info.getName() + "') does not fit the model:"
                    + " received " + type + " " + Arrays.toString(shape) + ", the model expects "
                    + info.getElementType() + info.shapeString() + " (? = any size). Send a tensor of that"
                    + " element type and shape.", status, message);
        }
        long data = 0;
        if (sizeOf(shape) > 0) {
            OpenVinoC.check(OpenVinoC.ov_tensor_data(tensor, scratchAddress), "Could not map an input tensor.");
            data = scratch.getLong(0);
        }
        if (buffer.tensor != 0) {
            OpenVinoC.ov_tensor_free(buffer.tensor);
        }
        buffer.tensor = tensor;
        buffer.data = data == 0 ? null : new Pointer(data);
        buffer.type = type;
        buffer.shape = shape.clone();
    }

    private JTensor read(int index) {
        OpenVinoC.check(OpenVinoC.ov_infer_request_get_output_tensor_by_index(request, index, scratchAddress),
                "Could not get output " + index + ".");
        long tensor = scratch.getLong(0);
        try {
            long shapeAddress = scratchAddress + 16;
            OpenVinoC.check(OpenVinoC.ov_tensor_get_shape(tensor, shapeAddress), "Could not read the shape of output " + index + ".");
            int rank = (int) scratch.getLong(16);
            long dims = scratch.getLong(24);
            int[] shape = new int[rank];
            if (rank > 0) {
                long[] d = new long[rank];
                new Pointer(dims).read(0, d, 0, rank);
                for (int k = 0; k < rank; k++) {
                    shape[k] = Math.toIntExact(d[k]);
                }
            }
            OpenVinoC.ov_shape_free(shapeAddress);
            int n = Math.toIntExact(sizeOf(shape));
            Pointer data = null;
            if (n > 0) {
                OpenVinoC.check(OpenVinoC.ov_tensor_data(tensor, scratchAddress), "Could not map output " + index + ".");
                data = new Pointer(scratch.getLong(0));
            }
            switch (outputTypes[index]) {
                case FLOAT32: {
                    float[] out = new float[n];
                    if (n > 0) {
                        data.read(0, out, 0, n);
                    }
                    return new JTensor(out, shape);
                }
                case INT32: {
                    int[] out = new int[n];
                    if (n > 0) {
                        data.read(0, out, 0, n);
                    }
                    return new JTensor(out, shape);
                }
                default: {
                    long[] out = new long[n];
                    if (n > 0) {
                        data.read(0, out, 0, n);
                    }
                    return new JTensor(out, shape);
                }
            }
        } finally {
            OpenVinoC.ov_tensor_free(tensor);
        }
    }

    private static long sizeOf(int[] shape) {
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }

    /** Frees the request and its cached tensors; the slot is unusable afterwards. */
    void free() {
        for (InputBuffer b : inputs) {
            if (b.tensor != 0) {
                OpenVinoC.ov_tensor_free(b.tensor);
                b.tensor = 0;
            }
        }
        OpenVinoC.ov_infer_request_free(request);
    }
}
