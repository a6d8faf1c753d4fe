package zoo.flink;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.functions.AsyncPredictFunction;
import org.apache.flink.table.functions.PredictFunction;
import org.apache.flink.table.ml.AsyncPredictRuntimeProvider;
import org.apache.flink.table.ml.ModelProvider;
import org.apache.flink.table.ml.PredictRuntimeProvider;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeRoot;
import zoo.inference.InferenceModel;
import zoo.inference.TensorInfo;

/**
 * Runs a Zoo model for {@code ML_PREDICT}: one row per call ({@link ZooPredictFunction}), or, when
 * the query asks for asynchronous prediction, rows batched into one call
 * ({@link ZooAsyncPredictFunction}). Built by {@link ZooModelProviderFactory}, which has checked
 * the model's declared INPUT and OUTPUT against the model file.
 */
public class ZooModelProvider implements PredictRuntimeProvider, AsyncPredictRuntimeProvider {

    /** The options of one {@code CREATE MODEL ... WITH ('provider' = 'zoo', ...)}. */
    public static final class Settings implements Serializable {
        private static final long serialVersionUID = 1L;
        final String path;
        final int batchSize;
        final int maxWaitMs;
        final int concurrentNum;
        final Integer threads;

        Settings(String path, int batchSize, int maxWaitMs, int concurrentNum, Integer threads) {
            if (batchSize < 1 || maxWaitMs < 0 || concurrentNum < 1 || (threads != null && threads < 1)) {
                throw new ValidationException("Expected 'batch-size' >= 1, 'max-wait-ms' >= 0, 'concurrent-num' >= 1"
                        + " and 'threads' >= 1 (or unset: all cores) for the zoo model provider. Received batch-size="
                        + batchSize + ", max-wait-ms=" + maxWaitMs + ", concurrent-num=" + concurrentNum
                        + ", threads=" + threads + ".");
            }
            this.path = path;
            this.batchSize = batchSize;
            this.maxWaitMs = maxWaitMs;
            this.concurrentNum = concurrentNum;
            this.threads = threads;
        }

        /** OpenVINO properties of each task's model: Zoo's defaults, with {@code threads} when set. */
        Map<String, String> openVinoConfig() {
            Map<String, String> config = InferenceModel.defaultConfig(concurrentNum);
            if (threads != null) {
                config.put("INFERENCE_NUM_THREADS", Integer.toString(threads));
            }
            return config;
        }
    }

    private final Settings settings;
    private final List<LogicalType> inputTypes;
    private final List<LogicalType> outputTypes;

    ZooModelProvider(Settings settings, ResolvedSchema input, ResolvedSchema output) {
        this(settings, logical(input), logical(output));
        check(settings.path, input, output);
    }

    private ZooModelProvider(Settings settings, List<LogicalType> inputTypes, List<LogicalType> outputTypes) {
        this.settings = settings;
        this.inputTypes = inputTypes;
        this.outputTypes = outputTypes;
    }

    private static List<LogicalType> logical(ResolvedSchema schema) {
        List<LogicalType> types = new ArrayList<>();
        for (DataType type : schema.getColumnDataTypes()) {
            types.add(type.getLogicalType());
        }
        return types;
    }

    /** Loads the model once on the client and checks the declared schema against its signature. */
    private static void check(String path, ResolvedSchema input, ResolvedSchema output) {
        try (InferenceModel model = new InferenceModel()) {
            try {
                model.load(path);
            } catch (RuntimeException e) {
                throw new ValidationException("The zoo model provider cannot read the model '" + path + "': "
                        + e.getMessage() + " Give an ONNX file or OpenVINO IR (.xml) that every TaskManager can read"
                        + " at this path, e.g. one written by zoo.inference.export.", e);
            }
            String signature = model.getInputs() + " -> " + model.getOutputs();
            String fix = " Declare one INPUT column per model input (a number for a rank-1 input, an ARRAY of"
                    + " numbers holding a flattened sample otherwise) and one OUTPUT column per model output;"
                    + " zoo.flink.create_model writes them from the model file.";
            if (input.getColumnCount() != model.getInputs().size()) {
                throw new ValidationException("The model '" + path + "' has " + model.getInputs().size()
                        + " input(s) " + signature + ", but the model's INPUT declares " + input.getColumnCount()
                        + ": " + input + "." + fix);
            }
            if (output.getColumnCount() != model.getOutputs().size()) {
                throw new ValidationException("The model '" + path + "' has " + model.getOutputs().size()
                        + " output(s) " + signature + ", but the model's OUTPUT declares " + output.getColumnCount()
                        + ": " + output + "." + fix);
            }
            for (int i = 0; i < model.getInputs().size(); i++) {
                TensorInfo info = model.getInputs().get(i);
                LogicalType type = input.getColumnDataTypes().get(i).getLogicalType();
                boolean rankOne = info.getShape() != null && info.getShape().length == 1;
                boolean array = type.getTypeRoot() == LogicalTypeRoot.ARRAY;
                if (rankOne == array) {
                    throw new ValidationException("INPUT column '" + input.getColumnNames().get(i) + "' is " + type
                            + ", but model input " + info + " takes " + (rankOne ? "one number" : "an ARRAY (a flattened"
                            + " sample)") + " per row. Model signature: " + signature + "." + fix);
                }
            }
        }
    }

    @Override
    public PredictFunction createPredictFunction(ModelProvider.Context context) {
        return new ZooPredictFunction(settings, inputTypes, outputTypes);
    }

    @Override
    public AsyncPredictFunction createAsyncPredictFunction(ModelProvider.Context context) {
        return new ZooAsyncPredictFunction(settings, inputTypes, outputTypes);
    }

    @Override
    public ModelProvider copy() {
        return new ZooModelProvider(settings, inputTypes, outputTypes);
    }
}
