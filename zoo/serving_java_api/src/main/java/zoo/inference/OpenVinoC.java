package zoo.inference;

import com.sun.jna.Library;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import com.sun.jna.Structure;

/**
 * The slice of OpenVINO's C API 2.0 ({@code openvino/c/*.h}) that Zoo uses, bound through JNA
 * direct mapping (static natives: the cheapest JNA call path).
 *
 * <p>Every OpenVINO handle ({@code ov_core_t*}, {@code ov_tensor_t*}, ...) is a {@code long}
 * address; out-parameters ({@code T**}, {@code size_t*}, {@code ov_shape_t*}) are addresses of
 * caller-owned native scratch memory. This assumes a 64-bit platform ({@code size_t} is
 * {@code long}), which is what the openvino wheels are built for.
 */
final class OpenVinoC {

    private OpenVinoC() {
    }

    /** {@code ov_shape_t}, passed by value to {@code ov_tensor_create}. */
    @Structure.FieldOrder({"rank", "dims"})
    public static final class ShapeByValue extends Structure implements Structure.ByValue {
        /** Number of dimensions. */
        public long rank;
        /** {@code int64_t*} to {@code rank} dimensions. */
        public Pointer dims;

        /** An empty shape; JNA needs this constructor. */
        public ShapeByValue() {
        }

        /** @param dimensions the static shape; its native copy lives as long as this object */
        ShapeByValue(int[] dimensions) {
            Memory m = new Memory(Math.max(1, dimensions.length) * 8L);
            for (int i = 0; i < dimensions.length; i++) {
                m.setLong(8L * i, dimensions[i]);
            }
            rank = dimensions.length;
            dims = m;
        }
    }

    /** The variadic functions, which JNA can only call through interface mapping. */
    interface Variadic extends Library {
        /** {@code ov_core_compile_model(core, model, device, n_args, &compiled, key, value, ...)}. */
        int ov_core_compile_model(Pointer core, Pointer model, String device, long propertyArgsSize,
                Pointer compiledOut, Object... keyValues);
    }

    private static Variadic variadic;

    /** Binds the natives of this class, and {@link Variadic}, to the given library. */
    static void bind(NativeLibrary library) {
        Native.register(OpenVinoC.class, library);
        variadic = Native.load(library.getFile().getAbsolutePath(), Variadic.class);
    }

    /** @return the interface-mapped variadic functions (after {@link #bind}) */
    static Variadic variadic() {
        return variadic;
    }

    // ov_common.h
    static native long ov_get_last_err_msg();

    static native void ov_free(long content);

    // ov_core.h
    static native int ov_get_openvino_version(long versionOut);

    static native void ov_version_free(long version);

    static native int ov_core_create(long coreOut);

    static native void ov_core_free(long core);

    static native int ov_core_read_model(long core, String modelPath, String binPath, long modelOut);

    // ov_model.h
    static native void ov_model_free(long model);

    // ov_compiled_model.h
    static native int ov_compiled_model_inputs_size(long compiled, long sizeOut);

    static native int ov_compiled_model_outputs_size(long compiled, long sizeOut);

    static native int ov_compiled_model_input_by_index(long compiled, long index, long portOut);

    static native int ov_compiled_model_output_by_index(long compiled, long index, long portOut);

    static native int ov_compiled_model_create_infer_request(long compiled, long requestOut);

    static native void ov_compiled_model_free(long compiled);

    // ov_node.h
    static native int ov_port_get_any_name(long port, long nameOut);

    static native int ov_port_get_partial_shape(long port, long partialShapeOut);

    static native int ov_port_get_element_type(long port, long typeOut);

    static native void ov_output_const_port_free(long port);

    // ov_partial_shape.h
    static native void ov_partial_shape_free(long partialShape);

    // ov_shape.h
    static native int ov_shape_free(long shape);

    // ov_tensor.h
    static native int ov_tensor_create(int type, ShapeByValue shape, long tensorOut);

    static native int ov_tensor_get_shape(long tensor, long shapeOut);

    static native int ov_tensor_get_byte_size(long tensor, long sizeOut);

    static native int ov_tensor_data(long tensor, long dataOut);

    static native void ov_tensor_free(long tensor);

    // ov_infer_request.h
    static native int ov_infer_request_set_input_tensor_by_index(long request, long index, long tensor);

    static native int ov_infer_request_infer(long request);

    static native int ov_infer_request_get_output_tensor_by_index(long request, long index, long tensorOut);

    static native void ov_infer_request_free(long request);

    /**
     * Reads and frees OpenVINO's last error message.
     *
     * @return the message, or "" when OpenVINO has none
     */
    static String lastErrorMessage() {
        long p = ov_get_last_err_msg();
        if (p == 0) {
            return "";
        }
        try {
            return new Pointer(p).getString(0, "UTF-8");
        } finally {
            ov_free(p);
        }
    }

    /**
     * Throws an {@link InferenceException} when an OpenVINO call did not return OK.
     *
     * @param status the call's {@code ov_status_e}
     * @param context what was being done, said to the user before OpenVINO's own message
     */
    static void check(int status, String context) {
        if (status != 0) {
            throw new InferenceException(context, status, lastErrorMessage());
        }
    }
}
