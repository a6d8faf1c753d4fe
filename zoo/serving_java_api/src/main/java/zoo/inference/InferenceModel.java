package zoo.inference;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An in-process, thread-safe inference handle for models exported by Zoo (ONNX, or OpenVINO IR
 * {@code .xml} with its {@code .bin}), run by OpenVINO on the CPU.
 *
 * <pre>{@code
 * try (InferenceModel model = new InferenceModel(4)) {
 *     model.load("/models/mlp.xml");
 *     JTensor y = model.predict(new JTensor(new float[] {1f, 2f, 3f, 4f}, new int[] {1, 4}));
 *     float[] scores = y.getData();
 * }
 * }</pre>
 *
 * <p>The handle holds a pool of {@code concurrentNum} OpenVINO infer requests. Any number of
 * threads may call {@code predict} at once; each takes a free request, and waits while all are
 * busy. {@link #close()} waits for running predictions, then frees the native resources; using
 * the handle afterwards throws {@link ModelClosedException} (an {@link IllegalStateException}).
 *
 * <p>Failures reported by OpenVINO (a bad model path, an input of the wrong shape or element
 * type) are {@link InferenceException}s carrying OpenVINO's status and message; malformed calls
 * that Java can see (wrong number of inputs, null) are {@link IllegalArgumentException}s.
 */
public final class InferenceModel implements AutoCloseable {

    /** Infer requests in the pool when none is given. */
    public static final int DEFAULT_CONCURRENT_NUM = 1;
    /** OpenVINO device the model is compiled for. */
    public static final String DEFAULT_DEVICE = "CPU";
    /** OpenVINO inference precision: full fp32, so results match the exporting framework. */
    public static final String DEFAULT_PRECISION = "f32";

    /**
     * The OpenVINO properties {@link #load(String)} compiles with, the same as Zoo's Python
     * {@code InferenceModel} (OpenVINO backend): fp32 precision (OpenVINO would otherwise pick
     * bf16 on CPUs that support it), the LATENCY hint for one request and THROUGHPUT for more,
     * and the pool size as the number of requests to plan for.
     *
     * @param concurrentNum the size of the infer request pool
     * @return a new mutable map of property name to value
     */
    public static Map<String, String> defaultConfig(int concurrentNum) {
        Map<String, String> config = new LinkedHashMap<>();
        config.put("PERFORMANCE_HINT", concurrentNum == 1 ? "LATENCY" : "THROUGHPUT");
        config.put("PERFORMANCE_HINT_NUM_REQUESTS", Integer.toString(concurrentNum));
        config.put("INFERENCE_PRECISION_HINT", DEFAULT_PRECISION);
        return config;
    }

    private final int concurrentNum;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition available = lock.newCondition();
    private final ArrayDeque<RequestSlot> free = new ArrayDeque<>();
    private final List<RequestSlot> slots = new ArrayList<>();
    private long core;
    private long compiled;
    private volatile List<TensorInfo> inputs = List.of();
    private volatile List<TensorInfo> outputs = List.of();
    private volatile String modelPath;
    private boolean loaded;
    private boolean closed;
    private int inFlight;
    private int peakInFlight;

    /** A handle with {@value #DEFAULT_CONCURRENT_NUM} infer request. */
    public InferenceModel() {
        this(DEFAULT_CONCURRENT_NUM);
    }

    /**
     * @param concurrentNum how many predictions may run at the same time (infer requests in the
     *     pool), {@code >= 1}
     * @throws IllegalArgumentException if {@code concurrentNum < 1}
     */
    public InferenceModel(int concurrentNum) {
        if (concurrentNum < 1) {
            throw new IllegalArgumentException(
                    "Expected concurrentNum >= 1. Received: concurrentNum=" + concurrentNum + ".");
        }
        this.concurrentNum = concurrentNum;
    }

    /**
     * Reads and compiles a model with {@link #defaultConfig(int)}.
     *
     * @param modelPath an ONNX file ({@code .onnx}) or an OpenVINO IR {@code .xml} whose
     *     {@code .bin} lies beside it
     * @throws InferenceException if OpenVINO cannot read or compile the model
     * @throws OpenVinoNotFoundException if OpenVINO's C library cannot be found
     * @throws IllegalStateException if this handle already holds a model or is closed
     */
    public void load(String modelPath) {
        load(modelPath, defaultConfig(concurrentNum));
    }

    /**
     * Reads and compiles a model with the given OpenVINO properties.
     *
     * @param modelPath an ONNX file or an OpenVINO IR {@code .xml} with its {@code .bin}
     * @param config OpenVINO CPU properties, e.g. {@code {"PERFORMANCE_HINT": "THROUGHPUT"}};
     *     they replace {@link #defaultConfig(int)} (start from it to keep fp32)
     * @throws InferenceException if OpenVINO cannot read or compile the model
     * @throws IllegalArgumentException if a model output has an element type other than f32,
     *     i32 or i64
     */
    public void load(String modelPath, Map<String, String> config) {
        load(modelPath, null, config);
    }

    /**
     * Reads and compiles an OpenVINO IR whose weights file lies anywhere, with the given properties.
     *
     * @param modelPath an OpenVINO IR {@code .xml} (or an ONNX file, with {@code weightPath} null)
     * @param weightPath the IR's {@code .bin}; null: the {@code .bin} beside {@code modelPath}
     * @param config OpenVINO CPU properties, as for {@link #load(String, Map)}
     * @throws InferenceException if OpenVINO cannot read or compile the model
     */
    public void load(String modelPath, String weightPath, Map<String, String> config) {
        if (modelPath == null) {
            throw new IllegalArgumentException("Expected a model path (.onnx or .xml). Received: null.");
        }
        Objects.requireNonNull(config, "config");
        lock.lock();
        try {
            ensureOpen("Cannot load a model:");
            if (loaded) {
                throw new IllegalStateException("This InferenceModel already holds " + this.modelPath
                        + "; create another InferenceModel to load " + modelPath + ".");
            }
            OpenVinoLibrary.load();
            try {
                compile(modelPath, weightPath, config);
                this.modelPath = modelPath;
                loaded = true;
            } catch (RuntimeException e) {
                release();
                inputs = List.of();
                outputs = List.of();
                throw e;
            }
        } finally {
            lock.unlock();
        }
    }

    private void compile(String path, String weightPath, Map<String, String> config) {
        Memory scratch = new Memory(64);
        long out = Pointer.nativeValue(scratch);
        OpenVinoC.check(OpenVinoC.ov_core_create(out), "Could not create an OpenVINO core.");
        core = scratch.getLong(0);
        int status = OpenVinoC.ov_core_read_model(core, path, weightPath, out);
        OpenVinoC.check(status, "Could not read the model '" + path + "'" + (weightPath == null ? "" : " with weights '"
                + weightPath + "'") + ". Expected an ONNX file (.onnx) or an OpenVINO IR (.xml with its .bin beside it,"
                + " or given as the weight path), e.g. one written by zoo.inference.export.");
        long model = scratch.getLong(0);
        try {
            List<Object> keyValues = new ArrayList<>();
            for (Map.Entry<String, String> e : new LinkedHashMap<>(config).entrySet()) {
                keyValues.add(e.getKey());
                keyValues.add(e.getValue());
            }
            status = OpenVinoC.variadic().ov_core_compile_model(new Pointer(core), new Pointer(model), DEFAULT_DEVICE,
                    keyValues.size(), scratch, keyValues.toArray());
            OpenVinoC.check(status, "Could not compile the model '" + path + "' for " + DEFAULT_DEVICE
                    + " with config " + config + ".");
            compiled = scratch.getLong(0);
        } finally {
            OpenVinoC.ov_model_free(model);
        }
        inputs = Collections.unmodifiableList(ports(scratch, true));
        outputs = Collections.unmodifiableList(ports(scratch, false));
        JTensor.DataType[] outputTypes = new JTensor.DataType[outputs.size()];
        for (int j = 0; j < outputTypes.length; j++) {
            outputTypes[j] = dataType(outputs.get(j));
        }
        for (int i = 0; i < concurrentNum; i++) {
            OpenVinoC.check(OpenVinoC.ov_compiled_model_create_infer_request(compiled, out),
                    "Could not create infer request " + i + " of " + concurrentNum + ".");
            RequestSlot slot = new RequestSlot(scratch.getLong(0), inputs, outputTypes);
            slots.add(slot);
            free.add(slot);
        }
    }

    private List<TensorInfo> ports(Memory scratch, boolean isInput) {
        long out = Pointer.nativeValue(scratch);
        OpenVinoC.check(isInput ? OpenVinoC.ov_compiled_model_inputs_size(compiled, out)
                : OpenVinoC.ov_compiled_model_outputs_size(compiled, out), "Could not count the model's ports.");
        int count = (int) scratch.getLong(0);
        List<TensorInfo> list = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            OpenVinoC.check(isInput ? OpenVinoC.ov_compiled_model_input_by_index(compiled, i, out)
                    : OpenVinoC.ov_compiled_model_output_by_index(compiled, i, out), "Could not get port " + i + ".");
            long port = scratch.getLong(0);
            try {
                list.add(describe(port, (isInput ? "input" : "output") + i, scratch));
            } finally {
                OpenVinoC.ov_output_const_port_free(port);
            }
        }
        return list;
    }

    private static TensorInfo describe(long port, String fallbackName, Memory scratch) {
        long out = Pointer.nativeValue(scratch);
        String name = fallbackName;
        if (OpenVinoC.ov_port_get_any_name(port, out) == 0) {
            long p = scratch.getLong(0);
            name = new Pointer(p).getString(0, "UTF-8");
            OpenVinoC.ov_free(p);
        } else {
            OpenVinoC.lastErrorMessage(); // an unnamed port: not an error, drop OpenVINO's message
        }
        OpenVinoC.check(OpenVinoC.ov_port_get_element_type(port, out), "Could not read the element type of " + name + ".");
        String type = OpenVinoLibrary.elementTypeName(scratch.getInt(0));
        // ov_partial_shape_t: {ov_rank_t rank {int64 min, max}; ov_dimension_t* dims {int64 min, max}[rank]}
        OpenVinoC.check(OpenVinoC.ov_port_get_partial_shape(port, out), "Could not read the shape of " + name + ".");
        long[] shape = null;
        try {
            long rankMin = scratch.getLong(0);
            long rankMax = scratch.getLong(8);
            Pointer dims = scratch.getPointer(16);
            if (rankMin == rankMax && rankMin >= 0) {
                shape = new long[(int) rankMin];
                for (int k = 0; k < shape.length; k++) {
                    long min = dims.getLong(16L * k);
                    long max = dims.getLong(16L * k + 8);
                    shape[k] = min == max ? min : -1;
                }
            }
        } finally {
            OpenVinoC.ov_partial_shape_free(out);
        }
        return new TensorInfo(name, type, shape);
    }

    private static JTensor.DataType dataType(TensorInfo output) {
        switch (output.getElementType()) {
            case "f32":
                return JTensor.DataType.FLOAT32;
            case "i32":
                return JTensor.DataType.INT32;
            case "i64":
                return JTensor.DataType.INT64;
            default:
                throw new IllegalArgumentException("Output '" + output.getName() + "' has element type "
                        + output.getElementType() + "; the Java handle returns f32, i32 or i64 tensors."
                        + " Cast the output in the model before exporting it (e.g. .float()).");
        }
    }

    /**
     * Predicts with a model of one input and one output.
     *
     * @param input the input tensor, batch first (e.g. shape {@code [batch, features]})
     * @return the output tensor
     * @throws IllegalArgumentException if the model does not have exactly one input and output
     * @throws InferenceException if OpenVINO rejects the input (shape or element type) or fails
     * @throws IllegalStateException if no model is loaded or the handle is closed
     */
    public JTensor predict(JTensor input) {
        if (input == null) {
            throw new IllegalArgumentException("Expected a JTensor input. Received: null.");
        }
        return run(List.of(input), true).get(0);
    }

    /**
     * Predicts with a model of any number of inputs and outputs.
     *
     * @param inputs one tensor per model input, in the model's input order
     * @return one tensor per model output, in the model's output order
     * @throws IllegalArgumentException if the number of inputs is wrong or one is null
     * @throws InferenceException if OpenVINO rejects an input (shape or element type) or fails
     * @throws IllegalStateException if no model is loaded or the handle is closed
     */
    public List<JTensor> predict(List<JTensor> inputs) {
        if (inputs == null) {
            throw new IllegalArgumentException("Expected a List<JTensor> of inputs. Received: null.");
        }
        return run(inputs, false);
    }

    private List<JTensor> run(List<JTensor> tensors, boolean singleOutput) {
        RequestSlot slot = acquire();
        try {
            List<TensorInfo> expected = inputs;
            if (singleOutput && outputs.size() != 1) {
                throw new IllegalArgumentException("This model has " + outputs.size() + " outputs " + outputs
                        + "; call predict(List<JTensor>) to get all of them.");
            }
            if (tensors.size() != expected.size()) {
                throw new IllegalArgumentException("Expected " + expected.size() + " input tensor(s) " + expected
                        + ". Received: " + tensors.size() + ".");
            }
            for (int i = 0; i < tensors.size(); i++) {
                if (tensors.get(i) == null) {
                    throw new IllegalArgumentException("Input " + i + " is null; expected a JTensor for "
                            + expected.get(i) + ".");
                }
            }
            return slot.run(tensors);
        } finally {
            releaseSlot(slot);
        }
    }

    private RequestSlot acquire() {
        lock.lock();
        try {
            while (true) {
                ensureOpen("Cannot predict:");
                if (!loaded) {
                    throw new IllegalStateException("No model is loaded; call load(modelPath) first.");
                }
                RequestSlot slot = free.pollFirst();
                if (slot != null) {
                    inFlight++;
                    peakInFlight = Math.max(peakInFlight, inFlight);
                    return slot;
                }
                try {
                    available.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("Interrupted while waiting for a free infer request.", e);
                }
            }
        } finally {
            lock.unlock();
        }
    }

    private void releaseSlot(RequestSlot slot) {
        lock.lock();
        try {
            inFlight--;
            free.addFirst(slot);
            if (closed) {
                available.signalAll();
            } else {
                available.signal();
            }
        } finally {
            lock.unlock();
        }
    }

    private void ensureOpen(String context) {
        if (closed) {
            throw new ModelClosedException(context);
        }
    }

    /** @return the model's inputs (name, element type, shape with -1 for dynamic dims); empty before load */
    public List<TensorInfo> getInputs() {
        return inputs;
    }

    /** @return the model's outputs (name, element type, shape with -1 for dynamic dims); empty before load */
    public List<TensorInfo> getOutputs() {
        return outputs;
    }

    /** @return the number of infer requests in the pool */
    public int getConcurrentNum() {
        return concurrentNum;
    }

    /** @return the most predictions that ran at the same time so far (never above concurrentNum) */
    public int getPeakConcurrency() {
        lock.lock();
        try {
            return peakInFlight;
        } finally {
            lock.unlock();
        }
    }

    /** @return whether {@link #close()} has been called */
    public boolean isClosed() {
        lock.lock();
        try {
            return closed;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Waits for running predictions to finish, then frees the infer requests, the compiled model
     * and the OpenVINO core. Threads waiting for a request get {@link ModelClosedException}.
     * Calling it again does nothing.
     */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            available.signalAll();
            while (free.size() < slots.size()) {
                available.awaitUninterruptibly();
            }
            release();
        } finally {
            lock.unlock();
        }
    }

    /** Frees whatever native resources exist; the lock is held. */
    private void release() {
        for (RequestSlot slot : slots) {
            slot.free();
        }
        slots.clear();
        free.clear();
        if (compiled != 0) {
            OpenVinoC.ov_compiled_model_free(compiled);
            compiled = 0;
        }
        if (core != 0) {
            OpenVinoC.ov_core_free(core);
            core = 0;
        }
    }

    @Override
    public String toString() {
        return "InferenceModel(" + (modelPath == null ? "not loaded" : modelPath) + ", concurrentNum="
                + concurrentNum + (closed ? ", closed" : "") + ")";
    }
}
