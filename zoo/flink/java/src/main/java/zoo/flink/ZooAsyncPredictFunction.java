package zoo.flink;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.functions.AsyncPredictFunction;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.types.logical.LogicalType;

/**
 * Asynchronous ML_PREDICT with a Zoo model: rows that arrive while a batch fills (up to
 * {@code batch-size} rows, waiting {@code max-wait-ms} after the first) are predicted in one call by
 * one background thread per task. Flink keeps at most
 * {@code table.exec.async-ml-predict.max-concurrent-operations} rows in flight, so set it to at
 * least {@code batch-size} for full batches.
 */
public class ZooAsyncPredictFunction extends AsyncPredictFunction {

    private static final long serialVersionUID = 1L;

    private final Predictor predictor;
    private final int batchSize;
    private final int maxWaitMs;
    private transient LinkedBlockingQueue<Pending> queue;
    private transient Thread batcher;
    private transient volatile boolean running;

    private static final class Pending {
        final RowData row;
        final CompletableFuture<Collection<RowData>> future = new CompletableFuture<>();

        Pending(RowData row) {
            this.row = row;
        }
    }

    ZooAsyncPredictFunction(ZooModelProvider.Settings settings, List<LogicalType> inputTypes,
                            List<LogicalType> outputTypes) {
        this.predictor = new Predictor(settings, inputTypes, outputTypes);
        this.batchSize = settings.batchSize;
        this.maxWaitMs = settings.maxWaitMs;
    }

    @Override
    public void open(FunctionContext context) {
        predictor.open();
        queue = new LinkedBlockingQueue<>();
        running = true;
        batcher = new Thread(this::loop, "zoo-ml-predict-batcher");
        batcher.setDaemon(true);
        batcher.start();
    }

    @Override
    public CompletableFuture<Collection<RowData>> asyncPredict(RowData input) {
        Pending pending = new Pending(input);
        queue.add(pending);
        return pending.future;
    }

    private void loop() {
        List<Pending> batch = new ArrayList<>(batchSize);
        while (running) {
            try {
                Pending first = queue.poll(100, TimeUnit.MILLISECONDS);
                if (first == null) {
                    continue;
                }
                batch.add(first);
                long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(maxWaitMs);
                while (batch.size() < batchSize) {
                    long left = deadline - System.nanoTime();
                    Pending next = left > 0 ? queue.poll(left, TimeUnit.NANOSECONDS) : queue.poll();
                    if (next == null) {
                        break;
                    }
                    batch.add(next);
                }
                run(batch);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            } finally {
                batch.clear();
            }
        }
    }

    private void run(List<Pending> batch) {
        List<RowData> rows = new ArrayList<>(batch.size());
        for (Pending p : batch) {
            rows.add(p.row);
        }
        try {
            List<RowData> results = predictor.predict(rows);
            for (int i = 0; i < batch.size(); i++) {
                batch.get(i).future.complete(List.of(results.get(i)));
            }
        } catch (RuntimeException e) {
            for (Pending p : batch) {
                p.future.completeExceptionally(e);
            }
        }
    }

    @Override
    public void close() throws InterruptedException {
        running = false;
        if (batcher != null) {
            batcher.interrupt();
            batcher.join(10_000);
        }
        predictor.close();
    }
}
