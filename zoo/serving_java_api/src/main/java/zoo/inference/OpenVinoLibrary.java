package zoo.inference;

import com.sun.jna.Memory;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * Finds and loads OpenVINO's C library ({@code libopenvino_c}) once per JVM.
 *
 * <p>Places tried, in order (the first library that loads wins):
 * <ol>
 *   <li>the system property {@value #PROPERTY_LIBRARY}: the library file, or a folder holding it;
 *   <li>the environment variable {@value #ENV_LIBRARY}: the same;
 *   <li>the {@code openvino} Python package, found by asking Python where it is installed
 *       ({@code importlib.util.find_spec("openvino")}); the Pythons asked are, in order, the
 *       system property {@value #PROPERTY_PYTHON}, the environment variable {@value #ENV_PYTHON},
 *       {@code $VIRTUAL_ENV/bin/python}, {@code ./.venv/bin/python} and {@code python3} on the
 *       {@code PATH}. The wheel keeps the library in {@code openvino/libs/}.
 * </ol>
 * If none works, {@link OpenVinoNotFoundException} lists every attempt and why it failed.
 */
public final class OpenVinoLibrary {

    /** System property naming the library file (or its folder). */
    public static final String PROPERTY_LIBRARY = "zoo.openvino.library";
    /** Environment variable naming the library file (or its folder). */
    public static final String ENV_LIBRARY = "ZOO_OPENVINO_LIBRARY";
    /** System property naming the Python interpreter that has the openvino wheel. */
    public static final String PROPERTY_PYTHON = "zoo.python";
    /** Environment variable naming the Python interpreter that has the openvino wheel. */
    public static final String ENV_PYTHON = "ZOO_PYTHON";
    /** Seconds to wait for Python to say where openvino is installed. */
    public static final long DEFAULT_PYTHON_TIMEOUT_SECONDS = 60;

    private static final String PYTHON_QUERY =
            "import importlib.util, os; s = importlib.util.find_spec('openvino'); "
                    + "print(os.path.dirname(s.origin) if s and s.origin else '')";

    private static Path loadedPath;
    private static String version;
    private static int elementTypeOffset;
    private static OpenVinoNotFoundException failure;

    private OpenVinoLibrary() {
    }

    /**
     * Loads the library if not yet loaded.
     *
     * @return the path of the loaded {@code libopenvino_c}
     * @throws OpenVinoNotFoundException if no candidate could be loaded (every later call throws
     *     the same exception)
     */
    public static synchronized Path load() {
        if (loadedPath != null) {
            return loadedPath;
        }
        if (failure != null) {
            throw failure;
        }
        List<String> attempts = new ArrayList<>();
        for (Path candidate : candidates(System::getProperty, System::getenv, attempts)) {
            try {
                NativeLibrary library = NativeLibrary.getInstance(candidate.toString());
                OpenVinoC.bind(library);
                elementTypeOffset = probeElementTypeOffset();
                version = readVersion();
                loadedPath = candidate;
                return loadedPath;
            } catch (UnsatisfiedLinkError | RuntimeException e) {
                attempts.add(candidate + ": found but could not be loaded (" + e + ")");
            }
        }
        failure = new OpenVinoNotFoundException(attempts);
        throw failure;
    }

    /** @return the OpenVINO version string, e.g. {@code "2026.4.1-22982-..."} (loads the library) */
    public static String version() {
        load();
        return version;
    }

    /**
     * The library files to try, in order, given a property and an environment lookup.
     *
     * @param property system property lookup (e.g. {@code System::getProperty})
     * @param env environment lookup (e.g. {@code System::getenv})
     * @param attempts receives one line for each place that gave no candidate, and why
     * @return existing library files, best first, without duplicates
     */
    static List<Path> candidates(Function<String, String> property, Function<String, String> env,
            List<String> attempts) {
        Set<Path> found = new LinkedHashSet<>();
        addExplicit("system property " + PROPERTY_LIBRARY, property.apply(PROPERTY_LIBRARY), found, attempts);
        addExplicit("environment variable " + ENV_LIBRARY, env.apply(ENV_LIBRARY), found, attempts);
        for (String[] python : pythons(property, env)) {
            String where = python[0];
            String interpreter = python[1];
            if (interpreter == null || interpreter.isBlank()) {
                attempts.add(where + ": not set");
                continue;
            }
            String packageDir;
            try {
                packageDir = askPython(interpreter);
            } catch (IOException e) {
                attempts.add(where + " (" + interpreter + "): could not run it (" + e.getMessage() + ")");
                continue;
            }
            if (packageDir.isEmpty()) {
                attempts.add(where + " (" + interpreter + "): runs, but has no 'openvino' package installed");
                continue;
            }
            List<Path> libs = libraryFiles(Paths.get(packageDir));
            if (libs.isEmpty()) {
                attempts.add(where + " (" + interpreter + "): openvino is at " + packageDir
                        + " but neither it nor its libs/ folder holds libopenvino_c");
            }
            found.addAll(libs);
        }
        return new ArrayList<>(found);
    }

    private static void addExplicit(String where, String value, Set<Path> found, List<String> attempts) {
        if (value == null || value.isBlank()) {
            attempts.add(where + ": not set");
            return;
        }
        Path path = Paths.get(value);
        if (Files.isRegularFile(path)) {
            found.add(path.toAbsolutePath());
        } else if (Files.isDirectory(path)) {
            List<Path> libs = libraryFiles(path);
            if (libs.isEmpty()) {
                attempts.add(where + " = " + value + ": a folder without libopenvino_c in it or its libs/");
            }
            found.addAll(libs);
        } else {
            attempts.add(where + " = " + value + ": no such file or folder");
        }
    }

    /** The Pythons to ask, as {@code {description, interpreter-or-null}} pairs. */
    private static List<String[]> pythons(Function<String, String> property, Function<String, String> env) {
        List<String[]> list = new ArrayList<>();
        list.add(new String[] {"system property " + PROPERTY_PYTHON, property.apply(PROPERTY_PYTHON)});
        list.add(new String[] {"environment variable " + ENV_PYTHON, env.apply(ENV_PYTHON)});
        String venv = env.apply("VIRTUAL_ENV");
        list.add(new String[] {"$VIRTUAL_ENV/bin/python",
            venv == null || venv.isBlank() ? null : Paths.get(venv, "bin", "python").toString()});
        Path local = Paths.get(".venv", "bin", "python").toAbsolutePath();
        list.add(new String[] {"./.venv/bin/python", Files.isExecutable(local) ? local.toString() : null});
        list.add(new String[] {"python3 on the PATH", "python3"});
        return list;
    }

    /** Runs {@code python -c PYTHON_QUERY}; returns the openvino package folder or "". */
    private static String askPython(String interpreter) throws IOException {
        Process process = new ProcessBuilder(interpreter, "-c", PYTHON_QUERY)
                .redirectError(ProcessBuilder.Redirect.DISCARD)
                .start();
        try (InputStream out = process.getInputStream()) {
            String text = new String(out.readAllBytes(), StandardCharsets.UTF_8).strip();
            if (!process.waitFor(DEFAULT_PYTHON_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new IOException("no answer within " + DEFAULT_PYTHON_TIMEOUT_SECONDS + " s");
            }
            if (process.exitValue() != 0) {
                throw new IOException("exited with status " + process.exitValue());
            }
            return text;
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting for it");
        }
    }

    /** libopenvino_c files directly in {@code dir} or in {@code dir/libs}, plain name first. */
    static List<Path> libraryFiles(Path dir) {
        List<Path> result = new ArrayList<>();
        for (Path folder : new Path[] {dir.resolve("libs"), dir}) {
            if (!Files.isDirectory(folder)) {
                continue;
            }
            List<Path> versioned = new ArrayList<>();
            try (DirectoryStream<Path> stream = Files.newDirectoryStream(folder)) {
                for (Path p : stream) {
                    String name = p.getFileName().toString();
                    if (name.equals("libopenvino_c.so") || name.equals("libopenvino_c.dylib")
                            || name.equals("openvino_c.dll")) {
                        result.add(p.toAbsolutePath());
                    } else if (name.startsWith("libopenvino_c.so.")
                            || (name.startsWith("libopenvino_c.") && name.endsWith(".dylib"))) {
                        versioned.add(p.toAbsolutePath());
                    }
                }
            } catch (IOException e) {
                continue;
            }
            versioned.sort(null);
            result.addAll(versioned);
        }
        return result;
    }

    /**
     * The element-type enum gained and lost an {@code UNDEFINED = 0} entry across releases; find
     * which layout this library uses by asking for a tensor of code 1 (BOOLEAN, 1 byte, in the
     * current layout; DYNAMIC, which cannot be allocated, in the older one).
     */
    private static int probeElementTypeOffset() {
        Memory scratch = new Memory(16);
        int status = OpenVinoC.ov_tensor_create(1, new OpenVinoC.ShapeByValue(new int[] {1}), Pointer.nativeValue(scratch));
        if (status != 0) {
            OpenVinoC.lastErrorMessage();
            return 1;
        }
        long tensor = scratch.getLong(0);
        try {
            OpenVinoC.check(OpenVinoC.ov_tensor_get_byte_size(tensor, Pointer.nativeValue(scratch) + 8),
                    "Probing OpenVINO's element types failed.");
            return scratch.getLong(8) == 1 ? 0 : 1;
        } finally {
            OpenVinoC.ov_tensor_free(tensor);
        }
    }

    private static String readVersion() {
        Memory v = new Memory(16);
        OpenVinoC.check(OpenVinoC.ov_get_openvino_version(Pointer.nativeValue(v)), "Reading OpenVINO's version failed.");
        try {
            Pointer build = v.getPointer(0);
            return build == null ? "unknown" : build.getString(0, "UTF-8");
        } finally {
            OpenVinoC.ov_version_free(Pointer.nativeValue(v));
        }
    }

    /** {@code ov_element_type_e} code of F32 in the loaded library. */
    static int codeF32() {
        return 4 + elementTypeOffset;
    }

    /** {@code ov_element_type_e} code of I32 in the loaded library. */
    static int codeI32() {
        return 9 + elementTypeOffset;
    }

    /** {@code ov_element_type_e} code of I64 in the loaded library. */
    static int codeI64() {
        return 10 + elementTypeOffset;
    }

    /** @return OpenVINO's name for an element-type code of the loaded library (e.g. "f16") */
    static String elementTypeName(int code) {
        String[] names = {"dynamic", "boolean", "bf16", "f16", "f32", "f64", "i4", "i8", "i16", "i32",
            "i64", "u1", "u2", "u3", "u4", "u6", "u8", "u16", "u32", "u64", "nf4", "f8e4m3", "f8e5m2",
            "string", "f4e2m1", "f8e8m0"};
        int index = code - elementTypeOffset;
        return index >= 0 && index < names.length ? names[index] : "type#" + code;
    }

    /** @return the code of a {@link JTensor.DataType} */
    static int code(JTensor.DataType type) {
        switch (type) {
            case FLOAT32:
                return codeF32();
            case INT32:
                return codeI32();
            default:
                return codeI64();
        }
    }
}
