package zoo.inference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Many threads share one handle: results stay right, at most concurrentNum run at once. */
class ConcurrencyTest {

    private static final int THREADS = 8;

    private static int hammer(InferenceModel m, String model, int callsPerThread) throws Exception {
        List<Fixtures.Case> cases = Fixtures.of(model);
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        CountDownLatch start = new CountDownLatch(1);
        List<Future<Integer>> futures = new ArrayList<>();
        try {
            for (int t = 0; t < THREADS; t++) {
                final int seed = t;
                futures.add(pool.submit(() -> {
                    start.await();
                    int checked = 0;
                    for (int i = 0; i < callsPerThread; i++) {
                        Fixtures.Case c = cases.get((seed + i) % cases.size());
                        List<JTensor> out = m.predict(c.inputs);
                        for (int j = 0; j < out.size(); j++) {
                            Fixtures.assertClose(c.expected.get(j), out.get(j), InferenceModelTest.TOLERANCE,
                                    "thread " + seed + " call " + i + " " + c.name);
                        }
                        checked++;
                    }
                    return checked;
                }));
            }
            start.countDown();
            int total = 0;
            for (Future<Integer> f : futures) {
                total += f.get(60, TimeUnit.SECONDS);
            }
            return total;
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void manyThreadsOnOneHandleGetTheirOwnResults() throws Exception {
        try (InferenceModel m = new InferenceModel(3)) {
            m.load(Fixtures.model("mlp", "xml"));
            assertEquals(THREADS * 200, hammer(m, "mlp", 200));
            assertTrue(m.getPeakConcurrency() <= 3, "peak " + m.getPeakConcurrency() + " > concurrentNum 3");
            assertTrue(m.getPeakConcurrency() >= 2, "8 threads should have overlapped: peak " + m.getPeakConcurrency());
        }
        try (InferenceModel m = new InferenceModel(2)) {
            m.load(Fixtures.model("two_input", "onnx"));
            assertEquals(THREADS * 100, hammer(m, "two_input", 100));
        }
    }

    @Test
    void callersWaitWhenAllRequestsAreBusy() throws Exception {
        try (InferenceModel m = new InferenceModel(1)) {
            m.load(Fixtures.model("cnn", "onnx"));
            assertEquals(THREADS * 30, hammer(m, "cnn", 30));
            assertEquals(1, m.getPeakConcurrency(), "one infer request: one prediction at a time");
        }
    }

    @Test
    void closeWaitsForRunningPredictionsAndLaterCallsFailCleanly() throws Exception {
        InferenceModel m = new InferenceModel(2);
        m.load(Fixtures.model("cnn", "xml"));
        Fixtures.Case c = Fixtures.of("cnn").get(0);
        AtomicInteger done = new AtomicInteger();
        AtomicInteger refused = new AtomicInteger();
        List<Throwable> unexpected = new java.util.concurrent.CopyOnWriteArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        CountDownLatch running = new CountDownLatch(THREADS);
        for (int t = 0; t < THREADS; t++) {
            pool.submit(() -> {
                running.countDown();
                while (true) {
                    try {
                        List<JTensor> out = m.predict(c.inputs);
                        Fixtures.assertClose(c.expected.get(0), out.get(0), InferenceModelTest.TOLERANCE, c.name);
                        done.incrementAndGet();
                    } catch (ModelClosedException e) {
                        refused.incrementAndGet();
                        return;
                    } catch (Throwable e) {
                        unexpected.add(e);
                        return;
                    }
                }
            });
        }
        running.await();
        Thread.sleep(200);
        m.close();
        pool.shutdown();
        assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS), "all callers returned after close");
        assertTrue(unexpected.isEmpty(), "unexpected failures: " + unexpected);
        assertEquals(THREADS, refused.get(), "every caller ends with ModelClosedException after close");
        assertTrue(done.get() > 0, "predictions ran before close");
    }
}
