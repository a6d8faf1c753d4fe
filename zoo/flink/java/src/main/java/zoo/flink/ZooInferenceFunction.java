package zoo.flink;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;
import zoo.inference.InferenceModel;
import zoo.inference.JTensor;
import zoo.inference.TensorInfo;

/**
 * A Flink ScalarFunction over Zoo's Java inference handle, for Java and Scala Flink jobs and SQL:
 *
 * <pre>{@code
 * t_env.create_java_temporary_function("zoo_predict", "zoo.flink.ZooInferenceFunction")
 * SELECT id, zoo_predict('/models/mlp.xml', features) AS scores FROM events
 * }</pre>
 *
 * <p>The first argument is the model (an ONNX file or an OpenVINO IR {@code .xml}, readable on
 * every TaskManager); the others are one ARRAY (a flattened sample) or number per model input.
 * It returns the model's first output for the row as {@code ARRAY<FLOAT>}. Each task loads a model
 * once, at its first row, and frees it in {@link #close()}; rows are predicted one at a time (use
 * the Python vectorized function or {@code ML_PREDICT} with the {@code zoo} provider for batches).
 */
public class ZooInferenceFunction extends ScalarFunction {

    private static final long serialVersionUID = 1L;

    private transient Map<String, InferenceModel> models;

    @Override
    public void open(FunctionContext context) {
        models = new HashMap<>();
    }

    /**
     * @param modelPath the model file, as every TaskManager sees it
     * @param inputs one flattened sample per model input
     * @return the model's first output for this sample, flattened
     */
    public Float[] eval(String modelPath, Double[]... inputs) {
        InferenceModel model = model(modelPath);
        List<TensorInfo> infos = model.getInputs();
        if (inputs.length != infos.size()) {
            throw new IllegalArgumentException("The model " + modelPath + " takes " + infos.size() + " input(s) "
                    + infos + "; the call passed " + inputs.length + ". Pass one ARRAY column per model input, in order.");
        }
        List<JTensor> tensors = new ArrayList<>(inputs.length);
        for (int i = 0; i < inputs.length; i++) {
            double[] sample = new double[inputs[i].length];
            for (int j = 0; j < sample.length; j++) {
                if (inputs[i][j] == null) {
                    throw new IllegalArgumentException("Input " + i + " of " + modelPath + " holds a NULL element;"
                            + " a Zoo model needs numbers only.");
                }
                sample[j] = inputs[i][j];
            }
            tensors.add(Tensors.batch(infos.get(i), List.of(Tensors.typed(infos.get(i), sample))));
        }
        return Tensors.firstSample(model.predict(tensors).get(0));
    }

    private InferenceModel model(String path) {
        if (models == null) {
            models = new HashMap<>();
        }
        InferenceModel model = models.get(path);
        if (model == null) {
            model = new InferenceModel();
            try {
                model.load(path);
            } catch (RuntimeException e) {
                model.close();
                throw new IllegalArgumentException("Cannot load the model '" + path + "' in this TaskManager: "
                        + e.getMessage() + " Give a path every TaskManager can read (a shared file system, or the"
                        + " same path on each node) of an ONNX file or an OpenVINO IR exported by zoo.inference.export.", e);
            }
            models.put(path, model);
        }
        return model;
    }

    @Override
    public void close() {
        if (models != null) {
            for (InferenceModel model : models.values()) {
                model.close();
            }
            models.clear();
        }
    }
}
