package zoo.inference;

import java.util.ArrayList;
import java.util.List;

/**
 * Analytics Zoo's Java base class for serving models, on top of {@link InferenceModel}: extend it
 * (or use it directly through a subclass) as AZ Java users did.
 *
 * <pre>{@code
 * public class TextClassifier extends AbstractInferenceModel {
 *     public TextClassifier(int concurrentNum) { super(concurrentNum); }
 * }
 *
 * TextClassifier model = new TextClassifier(4);
 * model.loadOpenVINO("/models/net.xml", "/models/net.bin");
 * List<List<JTensor>> outputs = model.predict(samples);  // one list of inputs per sample
 * model.release();
 * }</pre>
 *
 * <p>{@link #predict(List)} takes one {@code List<JTensor>} per sample (one tensor per model
 * input, in model order) and answers one {@code List<JTensor>} per sample (one per output). A
 * sample's tensor either carries its own leading batch dimension (the model input's rank; its rows
 * are answered with the same number of rows) or leaves it out (one rank less; it is answered without
 * one). The samples run together as one batch, or in chunks of {@code batchSize} samples when
 * {@link #loadOpenVINO(String, String, int)} was given one.
 */
public abstract class AbstractInferenceModel implements AutoCloseable {

    private final InferenceModel model;
    private volatile int batchSize;

    /** A handle with {@link InferenceModel#DEFAULT_CONCURRENT_NUM} concurrent predictions. */
    protected AbstractInferenceModel() {
        this(InferenceModel.DEFAULT_CONCURRENT_NUM);
    }

    /**
     * A handle on which up to {@code concurrentNum} predictions run at once.
     *
     * @param concurrentNum the number of OpenVINO infer requests (AZ's supportedConcurrentNum)
     */
    protected AbstractInferenceModel(int concurrentNum) {
        this.model = new InferenceModel(concurrentNum);
    }

    /**
     * Loads an ONNX file or an OpenVINO IR {@code .xml} whose {@code .bin} lies beside it.
     *
     * @param modelPath the model file
     */
    public void load(String modelPath) {
        model.load(modelPath);
    }

    /**
     * Loads an OpenVINO IR; its samples run as one batch.
     *
     * @param modelFilePath the IR {@code .xml}
     * @param weightFilePath the IR {@code .bin}; null: the one beside the {@code .xml}
     */
    public void loadOpenVINO(String modelFilePath, String weightFilePath) {
        doLoadOpenVINO(modelFilePath, weightFilePath, 0);
    }

    /**
     * Loads an OpenVINO IR whose samples run in chunks of {@code batchSize}.
     *
     * @param modelFilePath the IR {@code .xml}
     * @param weightFilePath the IR {@code .bin}; null: the one beside the {@code .xml}
     * @param batchSize samples per inference run; 0: all the samples of a call at once
     */
    public void loadOpenVINO(String modelFilePath, String weightFilePath, int batchSize) {
        doLoadOpenVINO(modelFilePath, weightFilePath, batchSize);
    }

    /**
     * What {@link #loadOpenVINO(String, String, int)} does (AZ's name, for subclasses to call or extend).
     *
     * @param modelFilePath the IR {@code .xml}
     * @param weightFilePath the IR {@code .bin}; null: the one beside the {@code .xml}
     * @param batchSize samples per inference run; 0: all at once
     * @throws IllegalArgumentException if {@code batchSize} is negative
     */
    public void doLoadOpenVINO(String modelFilePath, String weightFilePath, int batchSize) {
        if (batchSize < 0) {
            throw new IllegalArgumentException("Expected batchSize >= 0 (0: all samples of a call at once). Received: "
                    + "batchSize=" + batchSize + ".");
        }
        model.load(modelFilePath, weightFilePath, InferenceModel.defaultConfig(model.getConcurrentNum()));
        this.batchSize = batchSize;
    }

    /**
     * Predicts a list of samples (see the class comment).
     *
     * @param inputs one list of input tensors per sample
     * @return one list of output tensors per sample, in the same order
     */
    public List<List<JTensor>> predict(List<List<JTensor>> inputs) {
        return doPredict(inputs);
    }

    /**
     * What {@link #predict(List)} does (AZ's name, for subclasses to call or extend).
     *
     * @param inputs one list of input tensors per sample
     * @return one list of output tensors per sample
     * @throws IllegalArgumentException if there are no samples, or a sample does not fit the model
     */
    public List<List<JTensor>> doPredict(List<List<JTensor>> inputs) {
        if (inputs == null || inputs.isEmpty()) {
            throw new IllegalArgumentException("Expected at least one sample (a List<JTensor> per sample). Received: "
                    + (inputs == null ? "null" : "an empty list") + ".");
        }
        List<TensorInfo> ports = model.getInputs();
        int chunk = batchSize > 0 ? batchSize : inputs.size();
        List<List<JTensor>> outputs = new ArrayList<>(inputs.size());
        for (int start = 0; start < inputs.size(); start += chunk) {
            List<List<JTensor>> samples = inputs.subList(start, Math.min(start + chunk, inputs.size()));
            SampleBatch batch = SampleBatch.of(samples, ports, start);
            outputs.addAll(batch.split(model.predict(batch.tensors())));
        }
        return outputs;
    }

    /** Frees the model (AZ's name); the same as {@link #close()}. */
    public void release() {
        doRelease();
    }

    /** What {@link #release()} does (AZ's name, for subclasses to call or extend). */
    public void doRelease() {
        model.close();
    }

    /** Frees the model; idempotent. */
    @Override
    public void close() {
        release();
    }

    /** @return the handle underneath, for {@link InferenceModel#getInputs()} and the like */
    public InferenceModel getInferenceModel() {
        return model;
    }
}
