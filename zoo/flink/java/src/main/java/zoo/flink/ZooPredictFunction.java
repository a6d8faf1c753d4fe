package zoo.flink;

import java.util.Collection;
import java.util.List;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.PredictFunction;
import org.apache.flink.table.types.logical.LogicalType;

/** Synchronous ML_PREDICT with a Zoo model: one row per predict call. */
public class ZooPredictFunction extends PredictFunction {

    private static final long serialVersionUID = 1L;

    private final Predictor predictor;

    ZooPredictFunction(ZooModelProvider.Settings settings, List<LogicalType> inputTypes, List<LogicalType> outputTypes) {
        this.predictor = new Predictor(settings, inputTypes, outputTypes);
    }

    @Override
    public void open(FunctionContext context) {
        predictor.open();
    }

    @Override
    public Collection<RowData> predict(RowData input) {
        return predictor.predict(List.of(input));
    }

    @Override
    public void close() {
        predictor.close();
    }
}
