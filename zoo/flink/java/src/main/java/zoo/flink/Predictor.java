package zoo.flink;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.LogicalType;
import zoo.inference.InferenceModel;
import zoo.inference.JTensor;

/** One task's model for ML_PREDICT: rows in, one prediction row per input row out, as one batch. */
final class Predictor implements Serializable {

    private static final long serialVersionUID = 1L;

    private final ZooModelProvider.Settings settings;
    private final List<LogicalType> inputTypes;
    private final List<LogicalType> outputTypes;
    private transient InferenceModel model;

    Predictor(ZooModelProvider.Settings settings, List<LogicalType> inputTypes, List<LogicalType> outputTypes) {
        this.settings = settings;
        this.inputTypes = inputTypes;
        this.outputTypes = outputTypes;
    }

    /** Loads the model (once per task). */
    void open() {
        model = new InferenceModel(settings.concurrentNum);
        model.load(settings.path, settings.openVinoConfig());
    }

    /** The model's inputs of {@code row}: one flattened sample per input column (see {@link Tensors#sample}). */
    Object[] read(RowData row) {
        Object[] sample = new Object[inputTypes.size()];
        for (int c = 0; c < sample.length; c++) {
            sample[c] = Tensors.sample(row, c, inputTypes.get(c), model.getInputs().get(c));
        }
        return sample;
    }

    /** Predicts {@code rows} in one call; result {@code i} answers row {@code i}. */
    List<RowData> predict(List<RowData> rows) {
        List<Object[]> samples = new ArrayList<>(rows.size());
        for (RowData row : rows) {
            samples.add(read(row));
        }
        return predictSamples(samples);
    }

    /** Predicts samples {@link #read} made, in one call; result {@code i} answers sample {@code i}. */
    List<RowData> predictSamples(List<Object[]> rows) {
        List<JTensor> inputs = new ArrayList<>(inputTypes.size());
        for (int c = 0; c < inputTypes.size(); c++) {
            List<Object> column = new ArrayList<>(rows.size());
            for (Object[] row : rows) {
                column.add(row[c]);
            }
            inputs.add(Tensors.batch(model.getInputs().get(c), column));
        }
        List<JTensor> outputs = model.predict(inputs);
        List<RowData> results = new ArrayList<>(rows.size());
        for (int s = 0; s < rows.size(); s++) {
            GenericRowData out = new GenericRowData(outputTypes.size());
            for (int o = 0; o < outputTypes.size(); o++) {
                out.setField(o, Tensors.value(outputs.get(o), s, outputTypes.get(o)));
            }
            results.add(out);
        }
        return results;
    }

    /** Frees the model. */
    void close() {
        if (model != null) {
            model.close();
            model = null;
        }
    }
}
