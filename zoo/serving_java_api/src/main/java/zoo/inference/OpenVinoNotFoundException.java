package zoo.inference;

import java.util.List;

/**
 * OpenVINO's C library ({@code libopenvino_c}) could not be found or loaded. The message lists
 * every place that was tried and why each failed, and how to point Zoo at the library.
 */
public class OpenVinoNotFoundException extends IllegalStateException {

    private static final long serialVersionUID = 1L;

    private final List<String> attempts;

    /**
     * @param attempts one line per place tried: what it was and why it failed
     */
    public OpenVinoNotFoundException(List<String> attempts) {
        super("Could not load OpenVINO's C library (libopenvino_c). Tried, in order:\n  - "
                + String.join("\n  - ", attempts)
                + "\nFix: install the wheel (pip install openvino) in the project's Python, or set -D"
                + OpenVinoLibrary.PROPERTY_LIBRARY + "=/path/to/libopenvino_c.so (or the env var "
                + OpenVinoLibrary.ENV_LIBRARY + "), or point -D" + OpenVinoLibrary.PROPERTY_PYTHON
                + " / " + OpenVinoLibrary.ENV_PYTHON + " at the Python that has openvino installed.");
        this.attempts = List.copyOf(attempts);
    }

    /** @return the places tried, one line each, in order */
    public List<String> getAttempts() {
        return attempts;
    }
}
