package zoo.inference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** libopenvino_c is found from a property, an environment variable or the project's Python. */
class OpenVinoLibraryTest {

    private static final String PYTHON = System.getProperty(OpenVinoLibrary.PROPERTY_PYTHON);

    @Test
    void loadsFromTheProjectsPythonAndReportsItsVersion() {
        Path lib = OpenVinoLibrary.load();
        assertTrue(lib.getFileName().toString().startsWith("libopenvino_c"), lib.toString());
        assertTrue(OpenVinoLibrary.version().matches("\\d{4}\\.\\d+.*"), OpenVinoLibrary.version());
    }

    @Test
    void pythonDiscoveryFindsTheWheelsLibrary() {
        List<String> attempts = new ArrayList<>();
        List<Path> found = OpenVinoLibrary.candidates(Map.of(OpenVinoLibrary.PROPERTY_PYTHON, PYTHON)::get,
                Map.<String, String>of()::get, attempts);
        assertFalse(found.isEmpty(), "attempts: " + attempts);
        assertTrue(found.get(0).toString().contains("openvino"), found.toString());
    }

    @Test
    void explicitPropertyWinsAndAcceptsAFolder(@TempDir Path tmp) {
        Path wheelLib = OpenVinoLibrary.load();
        List<String> attempts = new ArrayList<>();
        List<Path> found = OpenVinoLibrary.candidates(
                Map.of(OpenVinoLibrary.PROPERTY_LIBRARY, wheelLib.getParent().toString())::get,
                Map.of(OpenVinoLibrary.ENV_LIBRARY, tmp.toString())::get, attempts);
        assertEquals(wheelLib, found.get(0), "the property's folder comes first");
        assertTrue(String.join("\n", attempts).contains("environment variable " + OpenVinoLibrary.ENV_LIBRARY
                + " = " + tmp + ": a folder without libopenvino_c"), attempts.toString());
    }

    @Test
    void notFoundListsEveryPlaceTriedAndWhy(@TempDir Path tmp) throws Exception {
        Path fakePython = tmp.resolve("python-without-openvino");
        Files.writeString(fakePython, "#!/bin/sh\necho\n");
        assertTrue(fakePython.toFile().setExecutable(true));
        Map<String, String> props = Map.of(
                OpenVinoLibrary.PROPERTY_LIBRARY, tmp.resolve("missing.so").toString(),
                OpenVinoLibrary.PROPERTY_PYTHON, fakePython.toString());
        Map<String, String> env = Map.of(OpenVinoLibrary.ENV_PYTHON, tmp.resolve("no-such-python").toString());
        List<String> attempts = new ArrayList<>();
        OpenVinoLibrary.candidates(props::get, env::get, attempts);
        String text = new OpenVinoNotFoundException(attempts).getMessage();
        assertTrue(text.contains("missing.so: no such file or folder"), text);
        assertTrue(text.contains("environment variable ZOO_OPENVINO_LIBRARY: not set"), text);
        assertTrue(text.contains(fakePython + "): runs, but has no 'openvino' package installed"), text);
        assertTrue(text.contains("no-such-python): could not run it"), text);
        assertTrue(text.contains("$VIRTUAL_ENV/bin/python: not set"), text);
        assertTrue(text.contains("Fix: install the wheel"), text);
    }
}
