package zoo.flink;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CompletableFuture;
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
 * least {@code batch-size} (twice that lets the next batch fill while one is predicted).
 */
public class ZooAsyncPredictFunction extends AsyncPredictFunction {

    private static final long serialVersionUID = 1L;

    private final Predictor predictor;
    private final int batchSize;
    private final long maxWaitNanos;
    private transient Object lock;
    private transient List<Pending> filling;
    private transient long fillingSince;
    private transient ArrayDeque<List<Pending>> full;
    private transient Thread batcher;
    private transient volatile boolean running;

    private static final class Pending {
        final Object[] sample;
        final CompletableFuture<Collection<RowData>> future;

        Pending(Object[] sample, CompletableFuture<Collection<RowData>> future) {
            this.sample = sample;
            this.future = future;
        }
    }

    ZooAsyncPredictFunction(ZooModelProvider.Settings settings, List<LogicalType> inputTypes,
                            List<LogicalType> outputTypes) {
        this.predictor = new Predictor(settings, inputTypes, outputTypes);
        this.batchSize = settings.batchSize;
        this.maxWaitNanos = TimeUnit.MILLISECONDS.toNanos(settings.maxWaitMs);
    }

    @Override
    public void open(FunctionContext context) {
        predictor.open();
        lock = new Object();
        filling = new ArrayList<>(batchSize);
        full = new ArrayDeque<>();
        running = true;
        batcher = new Thread(this::loop, "zoo-ml-predict-batcher");
        batcher.setDaemon(true);
        batcher.start();
    }

    @Override
    public CompletableFuture<Collection<RowData>> asyncPredict(RowData input) {
        CompletableFuture<Collection<RowData>> future = new CompletableFuture<>();
        Object[] sample;
        try {
            // Read on the caller's thread: Flink may reuse the row once this call returns, and the
            // batch thread is left the prediction alone.
            sample = predictor.read(input);
        } catch (RuntimeException e) {
            future.completeExceptionally(e);
            return future;
        }
        // Rows join the filling batch without waking the batch thread; it is woken once per batch
        // (full, or its first row), not once per row.
        synchronized (lock) {
            filling.add(new Pending(sample, future));
            if (filling.size() >= batchSize) {
                full.add(filling);
                filling = new ArrayList<>(batchSize);
                lock.notifyAll();
            } else if (filling.size() == 1) {
                fillingSince = System.nanoTime();
                lock.notifyAll();
            }
        }
        return future;
    }

    /** The next batch to predict: a full one, or the filling one once it waited max-wait-ms. */
    private List<Pending> next() throws InterruptedException {
        synchronized (lock) {
            while (running) {
                if (!full.isEmpty()) {
                    return full.poll();
                }
                if (filling.isEmpty()) {
                    lock.wait(100);
                    continue;
                }
                long left = fillingSince + maxWaitNanos - System.nanoTime();
                if (left <= 0) {
                    List<Pending> batch = filling;
                    filling = new ArrayList<>(batchSize);
                    return batch;
                }
                TimeUnit.NANOSECONDS.timedWait(lock, left);
            }
            return null;
        }
    }

    private void loop() {
        try {
            for (List<Pending> batch = next(); batch != null; batch = next()) {
                run(batch);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void run(List<Pending> batch) {
        List<Object[]> samples = new ArrayList<>(batch.size());
        for (Pending p : batch) {
            samples.add(p.sample);
        }
        try {
            List<RowData> results = predictor.predictSamples(samples);
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
