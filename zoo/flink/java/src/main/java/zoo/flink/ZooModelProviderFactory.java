package zoo.flink;

import java.util.Set;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.factories.ModelProviderFactory;
import org.apache.flink.table.ml.ModelProvider;

/**
 * The {@code zoo} model provider of Flink's model SPI: Zoo models in plain Flink SQL.
 *
 * <pre>{@code
 * CREATE TEMPORARY MODEL mlp INPUT (features ARRAY<DOUBLE>) OUTPUT (scores ARRAY<FLOAT>)
 *   WITH ('provider' = 'zoo', 'path' = '/models/mlp.xml');
 * SELECT * FROM ML_PREDICT(TABLE events, MODEL mlp, DESCRIPTOR(features));
 * }</pre>
 *
 * <p>The INPUT and OUTPUT clauses are checked against the model file when the statement is
 * planned; {@code zoo.flink.create_model} writes them from the file. Listed in
 * {@code META-INF/services/org.apache.flink.table.factories.Factory}.
 */
public class ZooModelProviderFactory implements ModelProviderFactory {

    /** The value of {@code 'provider'} that selects this factory. */
    public static final String IDENTIFIER = "zoo";

    /** The model file (ONNX or OpenVINO IR), readable at this path on every TaskManager. */
    public static final ConfigOption<String> PATH = ConfigOptions.key("path").stringType().noDefaultValue()
            .withDescription("Model file: ONNX (.onnx) or OpenVINO IR (.xml with its .bin).");
    /** Rows per predict call at most, when ML_PREDICT runs asynchronously. */
    public static final ConfigOption<Integer> BATCH_SIZE = ConfigOptions.key("batch-size").intType().defaultValue(32)
            .withDescription("Rows per predict call at most (asynchronous ML_PREDICT).");
    /** Milliseconds a batch waits to fill after its first row, when ML_PREDICT runs asynchronously. */
    public static final ConfigOption<Integer> MAX_WAIT_MS = ConfigOptions.key("max-wait-ms").intType().defaultValue(5)
            .withDescription("Milliseconds a batch waits to fill after its first row.");
    /** Infer requests of each task's model (predictions running at once). */
    public static final ConfigOption<Integer> CONCURRENT_NUM = ConfigOptions.key("concurrent-num").intType()
            .defaultValue(1).withDescription("Infer requests of each task's model.");

    /** CPU threads of each task's model; unset, OpenVINO uses every core. */
    public static final ConfigOption<Integer> THREADS = ConfigOptions.key("threads").intType().noDefaultValue()
            .withDescription("CPU threads of each task's model (OpenVINO INFERENCE_NUM_THREADS); unset: all cores."
                    + " With several tasks per machine, give each (cores / tasks).");

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of(PATH);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Set.of(BATCH_SIZE, MAX_WAIT_MS, CONCURRENT_NUM, THREADS);
    }

    @Override
    public ModelProvider createModelProvider(Context context) {
        FactoryUtil.ModelProviderFactoryHelper helper = FactoryUtil.createModelProviderFactoryHelper(this, context);
        helper.validate();
        ZooModelProvider.Settings settings = new ZooModelProvider.Settings(
                helper.getOptions().get(PATH), helper.getOptions().get(BATCH_SIZE),
                helper.getOptions().get(MAX_WAIT_MS), helper.getOptions().get(CONCURRENT_NUM),
                helper.getOptions().getOptional(THREADS).orElse(null));
        return new ZooModelProvider(settings, context.getCatalogModel().getResolvedInputSchema(),
                context.getCatalogModel().getResolvedOutputSchema());
    }
}
